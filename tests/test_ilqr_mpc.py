"""ilqr_mpc (plugins/mpc, ilqr_planner.py): the ensemble's mean dynamics and disagreement by
hand, the batched derivatives against ilqr's per-step autograd, the warm start, the planner on
the true Pendulum dynamics and the plugin contract (the slow Pendulum learning test is in
test_mpc.py, for both planners)."""


import numpy as np
import pytest
import torch

import rlcore.ops.control as control
from rlcore.cli import main
from rlcore.plugins.mpc.config import ILQRMPCConfig
from rlcore.plugins.mpc.ilqr_planner import ILQRPlanner, ILQRProblem
from rlcore.plugins.mpc.model import GaussianEnsemble
from rlcore.plugins.mpc.rewards import TASKS, Task, pendulum_dynamics, pendulum_reward, task_for

from test_mpc import one_thread, pendulum_spaces  # noqa: F401 (one_thread: an autouse fixture)

pytestmark = pytest.mark.timeout(300)

PENDULUM = TASKS["Pendulum-v1"]
# a reward that reads the state the step reaches (as the MuJoCo tasks' do): iLQR's cost then
# runs through the model, and its Hessian holds the model's second derivatives
REACHING = Task("reaching", (3,), (-2.0,), (2.0,),
                lambda s, a, nxt: -(nxt - 0.3).square().sum(-1) * s[..., 0] - a.square().sum(-1),
                uses_next=True)


def constant_members(*means) -> GaussianEnsemble:
    """One linear layer per member with zero weights: member e predicts the normalized mean
    ``means[e]`` everywhere; identity statistics (mu = 0, sigma = 1)."""
    model = GaussianEnsemble(3, 1, (), len(means))
    with torch.no_grad():
        model.weights[0].zero_()
        model.biases[0].zero_()
        for e, mean in enumerate(means):
            model.biases[0][e, 0, :3] = torch.tensor(mean)
    return model


def test_mean_dynamics_and_disagreement_by_hand():
    model = constant_members([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    dyn = model.mean_dynamics()
    s = torch.tensor([[0.5, -0.5, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    nxt, dis = dyn(s, torch.zeros(2, 1, dtype=torch.float64))
    # mean of the members: (2, 2, 2); variances over members: 1, 0, 1 -> D = 2/3
    np.testing.assert_allclose(nxt.numpy(), s.numpy() + 2.0)
    np.testing.assert_allclose(dis.numpy(), [2 / 3, 2 / 3])
    # statistics: s' = s + mu_y + sigma_y mean, inputs normalized (irrelevant here)
    with torch.no_grad():
        model.y_mean.fill_(1.0)
        model.y_sq.fill_(5.0)  # sigma_y = sqrt(5 - 1) = 2
    nxt, _ = model.mean_dynamics()(s[0], torch.zeros(1, dtype=torch.float64))
    np.testing.assert_allclose(nxt.numpy(), s[0].numpy() + 1.0 + 2.0 * 2.0)


def test_the_disagreement_penalty_enters_the_cost():
    dyn = constant_members([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]).mean_dynamics()  # D = 1/3
    s = torch.tensor([-0.6, 0.8, 2.0], dtype=torch.float64)
    v = torch.tensor([0.3], dtype=torch.float64)
    base = ILQRProblem(dyn, PENDULUM, 0.0).cost(s, v)
    assert float(base) == pytest.approx(-float(pendulum_reward(s, torch.tanh(v))))
    assert float(ILQRProblem(dyn, PENDULUM, 3.0).cost(s, v)) == pytest.approx(
        float(base) + 1.0)


@pytest.mark.parametrize("task,coef", [(PENDULUM, 0.0), (PENDULUM, 2.0), (REACHING, 0.0),
                                       (REACHING, 2.0)])
def test_batched_derivatives_match_per_step_autograd(task, coef):
    torch.manual_seed(0)
    model = GaussianEnsemble(3, 1, (16, 16), 3)
    with torch.no_grad():
        model.y_sq.fill_(0.01)
    problem = ILQRProblem(model.mean_dynamics(), task, coef)
    rng = np.random.default_rng(0)
    U = rng.normal(size=(7, 1))
    X, _, _ = control._rollout(problem.f, problem.cost, problem.terminal,
                               np.array([-0.9, 0.2, 0.5]), U)
    ours = problem.derivatives(X, U)
    reference = control._derivatives(problem.f, problem.cost, problem.terminal, X, U)
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


class TruePendulum:
    """Pendulum-v1's own equations with the ensemble's planning interface."""

    fitted = True

    def mean_dynamics(self):
        return lambda s, a: (pendulum_dynamics(s, a), torch.zeros(s.shape[:-1], dtype=s.dtype))


def record_warm_starts(monkeypatch) -> list:
    """The initial sequences V0 that ILQRProblem.plan is called with, in order."""
    starts = []
    original = ILQRProblem.plan

    def spy(self, obs, V0, *args):
        starts.append(V0.copy())
        return original(self, obs, V0, *args)
    monkeypatch.setattr(ILQRProblem, "plan", spy)
    return starts


def test_the_plan_is_warm_started_from_the_previous_one_shifted(monkeypatch):
    spaces = pendulum_spaces()
    cfg = ILQRMPCConfig(horizon=6, iterations=2, diagnostic_steps=5)
    planner = ILQRPlanner(TruePendulum(), task_for("Pendulum-v1", spaces), cfg, spaces,
                          explore=False)
    starts = record_warm_starts(monkeypatch)
    obs = np.array([[-1.0, 0.05, 0.0]], np.float32)
    rng = np.random.default_rng(0)
    first = planner.act(obs, rng).action
    plan = planner.plans[0].copy()
    planner.act(obs, rng)
    np.testing.assert_array_equal(starts[0], np.zeros((6, 1)))
    bound = np.arctanh(cfg.warm_clip)  # the default keeps the warm start out of saturation
    np.testing.assert_array_equal(starts[1], np.clip(np.concatenate([plan[1:], [[0.0]]]),
                                                     -bound, bound))
    assert np.abs(plan).max() > bound  # here the clip was active
    np.testing.assert_allclose(first[0], np.tanh(plan[0]), rtol=1e-6)
    assert np.abs(plan).max() > 0  # iLQR moved away from the zero sequence


def test_the_planner_swings_up_and_holds_pendulum_on_the_true_dynamics():
    from rlcore.run.evaluation import evaluate

    spaces = pendulum_spaces()
    planner = ILQRPlanner(TruePendulum(), task_for("Pendulum-v1", spaces), ILQRMPCConfig(),
                          spaces, explore=False)
    returns = evaluate(planner, "Pendulum-v1", {}, episodes=2, seed=0)
    assert returns.mean() >= -200, returns


def test_check_plugin_passes():
    assert main(["check-plugin", "ilqr_mpc"]) == 0


def test_restarts_leave_the_local_optimum_of_the_warm_start():
    """Hanging, moving left: a warm start pushing right (a = 0.9, as a previous plan may) is
    a local optimum iLQR keeps (cost 199.7); a restart pushing left finds 158.9. The plan
    taken is the one of lowest cost among all starts, computed one by one here."""
    problem = ILQRProblem(TruePendulum().mean_dynamics(), PENDULUM, 0.0)
    state, warm = np.array([-0.95, -0.3, -1.0]), np.full((25, 1), np.arctanh(0.9))
    runs = {}
    for a in (None, -0.75, 0.75):
        start = warm if a is None else np.full_like(warm, np.arctanh(a))
        _, V, J, _ = control.ilqr(problem.f, problem.cost, state, start,
                                  terminal_cost=problem.terminal, max_iter=5,
                                  derivatives=problem.derivatives)
        runs[a] = (J, V)
    assert runs[None][0] == pytest.approx(199.69, abs=0.01)
    assert np.tanh(runs[None][1]).min() > 0.99  # still pushing right
    assert runs[-0.75][0] == pytest.approx(158.94, abs=0.01)
    np.testing.assert_array_equal(problem.plan(state, warm, 5), runs[None][1])
    np.testing.assert_array_equal(problem.plan(state, warm, 5, restarts=[-0.75, 0.75]),
                                  runs[-0.75][1])


def test_warm_clip_bounds_the_warm_start(monkeypatch):
    spaces = pendulum_spaces()
    cfg = ILQRMPCConfig(horizon=4, iterations=1, diagnostic_steps=4, warm_clip=0.995)
    planner = ILQRPlanner(TruePendulum(), PENDULUM, cfg, spaces, explore=False)
    starts = record_warm_starts(monkeypatch)
    planner.plans = np.array([[[22.0], [-22.0], [0.5], [1.0]]])  # saturated actions
    planner.act(np.array([[-1.0, 0.05, 0.0]], np.float32), np.random.default_rng(0))
    bound = np.arctanh(0.995)
    np.testing.assert_allclose(starts[0], [[-bound], [0.5], [1.0], [0.0]])
