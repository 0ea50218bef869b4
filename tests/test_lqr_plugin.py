"""The lqr plugin: random steps, a least-squares identification of CartPole's constants from
replay, the LQR gain on the actors; from the first evaluation after the fit, every episode
lasts the full 500 steps."""

import pytest

from rlcore.run.lifecycle import train_experiment

pytestmark = pytest.mark.timeout(300)


def test_lqr_from_the_identified_model_balances_cartpole_from_the_first_fit(tmp_path):
    summary, run = train_experiment("experiments/lqr_cartpole.yaml", tmp_path / "run",
                                    ["logging.progress_every_s=0"])
    evals = {e["env_steps"]: e for e in summary["evals"]}
    assert evals[2000]["mean"] < 100  # random actions before the first fit
    after = [e for steps, e in evals.items() if steps >= 3000]
    assert after and all(e["mean"] == 500 and e["std"] == 0 for e in after), summary["evals"]
    constants = run.learner.modules["controller"].constants.tolist()
    assert constants == pytest.approx([9.8, 1.0, 0.1, 0.5, 10.0], rel=1e-6)


def test_lqr_refuses_an_env_whose_model_form_it_does_not_know(tmp_path, capsys):
    from rlcore.cli import main

    code = main(["run", "experiments/lqr_cartpole.yaml", "--set", "env.id=Acrobot-v1",
                 "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert ("lqr knows only CartPole-v1's model form (4 state variables, 2 actions); this env "
            "has observations of shape (6,) and 3 actions") in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
