"""What a run writes to TensorBoard: the tag names are the README's table (a rename fails here),
the console's figure is a tag at the same step, the config is there as text and hyperparameters,
and the diagnostics (explained variance, policy std, evaluation length) are computed right."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlcore.cli import main
from rlcore.learner.batches import Batch
from rlcore.learner.core import value_fit
from rlcore.ops.advantages import explained_variance
from rlcore.run.logging import actor_scalars, flat_hparams, rollout_scalars

pytestmark = pytest.mark.timeout(120)
README = (Path(__file__).parent.parent / "README.md").read_text()

# ------------------------------------------------------------------ the documented tags


def readme_tag_patterns() -> list[str]:
    """Every tag of the README's table as a regex: ``{a,b}`` alternatives expanded,
    ``<opponent>`` any one path component."""
    m = re.search(r"<!-- tensorboard-tags:start -->\n(.*?)<!-- tensorboard-tags:end -->",
                  README, re.S)
    assert m, "README: the TensorBoard tag table is missing"
    patterns = []
    for row in m.group(1).splitlines()[2:]:
        for tag in re.findall(r"`([^`]+)`", row.split("|")[1]):
            head, _, rest = tag.partition("{")
            names = [head + alt + rest.partition("}")[2] for alt in
                     rest.partition("}")[0].split(",")] if rest else [tag]
            patterns += [re.sub(r"<[a-z]+>", "[^/]+", re.escape(n).replace(r"\<", "<")
                                .replace(r"\>", ">")) for n in names]
    return patterns


def documented(tag: str) -> bool:
    return any(re.fullmatch(p, tag) for p in readme_tag_patterns())


def test_the_readme_table_parses_into_the_tags_it_names():
    assert documented("rollout/episode_return_mean100") and documented("learner/kl_coef")
    assert documented("eval/mcts5_win") and documented("actors/healthy")
    assert documented("buffer/size") and documented("buffer/games")
    assert not documented("rollout/episode_return_mean") and not documented("replay/size")


EVAL = {"eval/return_mean", "eval/return_std", "eval/episode_length"}
ROLLOUT = {"rollout/episode_return", "rollout/episode_length", "rollout/episode_return_mean100"}
PPO = {f"learner/{k}" for k in ("loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                                "clip_frac", "grad_norm", "lr", "grad_noise_scale",
                                "skipped_updates", "explained_variance")}
ON_POLICY_TIME = {"time/env_steps_per_s", "time/sample_s", "time/update_s"}
PPO_CARTPOLE = EVAL | ROLLOUT | PPO | ON_POLICY_TIME
PPO_PENDULUM = PPO_CARTPOLE | {"learner/policy_std"}
DQN_CARTPOLE = EVAL | ROLLOUT | {"learner/loss", "learner/q_mean", "learner/grad_norm",
                                 "learner/munchausen_bonus", "learner/target_below_range",
                                 "learner/target_above_range",
                                 "learner/lr", "buffer/updates", "buffer/size",
                                 "time/env_steps_per_s", "time/update_s"}


def events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return acc


def short_run(tmp_path, capsys, experiment: str, *overrides) -> tuple[Path, str]:
    run_dir = tmp_path / "run"
    sets = ["rollout.num_actors=0", "eval.every_env_steps=0", "eval.episodes=1",
            "checkpoint.every_env_steps=0", "logging.progress_every_s=0.000001", *overrides]
    assert main(["run", experiment, "--run-dir", str(run_dir),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    return run_dir, capsys.readouterr().out


def check_run(run_dir: Path, out: str, expected: set) -> None:
    """The run's scalar tags are exactly ``expected`` and in the README's table, ``eval`` sorts
    first, the progress line's ``return(100)`` is ``rollout/episode_return_mean100`` at the same
    step, and the config is there as text and as hyperparameters."""
    from tensorboard.plugins.hparams import metadata

    acc = events(run_dir)
    tags = set(acc.Tags()["scalars"])
    assert tags == expected, (sorted(tags - expected), sorted(expected - tags))
    assert [t for t in tags if not documented(t)] == []
    # first on TensorBoard's screen: first of the groups, or second after a replay run's
    # `buffer` or a Ray run's `actors` (the dashboard opens the first two)
    groups = sorted({t.split("/")[0] for t in tags} - {"actors", "buffer"})
    assert groups[0] == "eval"

    lines = re.findall(r"steps +([\d,]+)/[\d,]+ .*return\(100\) +(-|-?[\d.]+) ", out)
    assert lines, out
    mean100 = {e.step: e.value for e in acc.Scalars("rollout/episode_return_mean100")}
    for step, shown in lines:
        step = int(step.replace(",", ""))
        if shown == "-":  # no episode has ended yet
            assert step not in mean100
        else:
            assert mean100[step] == pytest.approx(float(shown), abs=0.051)

    (text,) = acc.Tensors("config")
    body = text.tensor_proto.string_val[0].decode()
    assert body.startswith("```yaml\n") and body.endswith("```")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert yaml.safe_load(body[len("```yaml\n"):-3]) == config

    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["algo.gamma"].number_value == pytest.approx(config["algo"]["gamma"])
    assert start.hparams["env.id"].string_value == config["env"]["id"]
    assert "logging.root" not in start.hparams and "checkpoint.keep" not in start.hparams
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert [m.name.tag for m in experiment.metric_infos] == ["eval/return_mean"]
    assert metadata.SESSION_END_INFO_TAG in content


def test_ppo_cartpole_inline_writes_the_documented_tags(tmp_path, capsys):
    run_dir, out = short_run(tmp_path, capsys, "experiments/ppo_cartpole.yaml",
                             "env.num_envs=4", "rollout.fragment_length=32",
                             "stop.num_env_steps=256", "learner.num_epochs=1",
                             "learner.minibatch_size=0")
    check_run(run_dir, out, PPO_CARTPOLE)
    assert re.search(r"return\(100\) +[\d.]+", out)
    assert 0 < events(run_dir).Scalars("eval/episode_length")[-1].value <= 500


def test_ppo_pendulum_adds_the_policy_std(tmp_path, capsys):
    run_dir, out = short_run(tmp_path, capsys, "experiments/ppo_pendulum.yaml",
                             "env.num_envs=1", "rollout.fragment_length=128",
                             "stop.num_env_steps=256", "learner.num_epochs=1",
                             "learner.minibatch_size=0", "algo.log_std_init=-0.5")
    check_run(run_dir, out, PPO_PENDULUM)
    acc = events(run_dir)
    std = [e.value for e in acc.Scalars("learner/policy_std")]
    assert std[0] == pytest.approx(np.exp(-0.5), abs=0.01)  # barely moved by one step
    assert acc.Scalars("eval/episode_length")[-1].value == 200  # Pendulum's time limit


def test_dqn_cartpole_inline_writes_the_documented_tags(tmp_path, capsys):
    run_dir, out = short_run(tmp_path, capsys, "experiments/dqn_cartpole.yaml",
                             "stop.num_env_steps=1100", "stop.eval_return=null",
                             "algo.learning_starts=200", "algo.batch_size=32",
                             "algo.hidden_sizes=[16]", "algo.exploration_steps=500")
    check_run(run_dir, out, DQN_CARTPOLE)
    acc = events(run_dir)
    last = acc.Scalars("buffer/size")[-1]
    assert last.value == last.step == 1024  # one env: every step is in replay; logs >= 1,000 apart
    assert acc.Scalars("buffer/updates")[-1].value > 0


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_ppo_cartpole_on_ray_actors_adds_the_actor_tags(tmp_path, capsys):
    import ray

    try:
        run_dir, out = short_run(tmp_path, capsys, "experiments/ppo_cartpole.yaml",
                                 "rollout.num_actors=2", "ray.num_cpus=2", "env.num_envs=4",
                                 "rollout.fragment_length=32", "stop.num_env_steps=256",
                                 "learner.num_epochs=1", "learner.minibatch_size=0")
    finally:
        ray.shutdown()
    actors = {f"actors/{k}" for k in ("num_actors", "healthy", "restarts", "dropped_fragments",
                                      "policy_lag", "guest_slots")}
    tags = set(events(run_dir).Tags()["scalars"])
    assert tags == PPO_CARTPOLE | actors and all(documented(t) for t in tags)
    assert events(run_dir).Scalars("actors/num_actors")[-1].value == 2


# ------------------------------------------------------------------ the sections, pure


def test_inline_runs_write_actor_counters_only_once_something_happened():
    quiet = {"healthy": 1, "restarts": 0, "dropped_fragments": 0}
    assert actor_scalars(quiet, 0, {"policy_lag": 0.0}) == {}
    assert actor_scalars({**quiet, "restarts": 2}, 0, {"policy_lag": 0.0}) == {"restarts": 2}
    assert actor_scalars(quiet, 2, {"policy_lag": 1.5}) == {
        "healthy": 1, "restarts": 0, "dropped_fragments": 0, "num_actors": 2, "policy_lag": 1.5}


def test_rollout_scalars_name_the_window_and_the_recent_episodes():
    assert rollout_scalars([], [], []) == {}
    assert rollout_scalars([], [], [1.0, 3.0]) == {"episode_return_mean100": 2.0}
    assert rollout_scalars([500.0], [500], [100.0, 200.0, 500.0]) == {
        "episode_return": 500.0, "episode_length": 500.0, "episode_return_mean100": 800 / 3}


def test_flat_hparams_joins_keys_and_keeps_scalars():
    resolved = {"algorithm": "ppo", "seed": 0, "env": {"id": "CartPole-v1", "kwargs": {"a": 1}},
                "algo": {"gamma": 0.99, "hidden_sizes": [64, 64], "squash": False,
                         "vf_clip_coef": None},
                "logging": {"root": "runs"}, "checkpoint": {"keep": 3}, "ray": {"num_cpus": 2}}
    assert flat_hparams(resolved) == {
        "algorithm": "ppo", "seed": 0, "env.id": "CartPole-v1", "env.kwargs.a": 1,
        "algo.gamma": 0.99, "algo.hidden_sizes": "[64, 64]", "algo.squash": "false"}


# ------------------------------------------------------------------ explained variance


def test_explained_variance_hand_computed():
    returns = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, Var = (2.25+.25+.25+2.25)/4 = 1.25
    # residual (0, 0, 0, 1): mean .25, Var = (3 * .0625 + .5625) / 4 = .1875; 1 - .1875/1.25
    assert explained_variance([1.0, 2.0, 3.0, 3.0], returns) == pytest.approx(0.85)
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(np.full(4, 2.5), returns) == 0.0  # the mean: explains nothing
    assert explained_variance(returns + 7.0, returns) == 1.0  # an offset is not penalized
    assert explained_variance([4.0, 3.0, 2.0, 1.0], returns) == pytest.approx(-3.0)  # 1 - 5/1.25
    # [T, N] arrays are one batch
    assert explained_variance(np.array([[1.0, 2.0], [3.0, 3.0]]),
                              returns.reshape(2, 2)) == pytest.approx(0.85)


def test_explained_variance_of_constant_targets_is_nan_and_left_out():
    assert np.isnan(explained_variance([0.0, 1.0, 2.0], [3.0, 3.0, 3.0]))
    const = Batch(value=torch.tensor([0.0, 1.0]), returns=torch.tensor([3.0, 3.0]))
    assert value_fit(const) == {}
    batch = Batch(value=torch.tensor([1.0, 2.0, 3.0, 3.0]),
                  returns=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert value_fit(batch) == {"explained_variance": pytest.approx(0.85)}
    assert value_fit(Batch(obs=torch.zeros(2, 3), reward=torch.zeros(2))) == {}  # no values
    assert value_fit(object()) == {}  # a plugin's own batch type (tabular's transitions)
