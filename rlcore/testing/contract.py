"""The plugin contract as a runnable check (``rlcore check-plugin NAME``), for built-in and
third-party algorithms alike. Each check runs the real core (``Run``, its regime, the inline
actor layer, the learner) on a tiny env that fits the plugin, and says in words what broke:

1. it builds from a YAML experiment and two updates move its parameters, with finite losses;
2. save -> restore from disk -> the next update is identical (torch's global generator is
   reseeded differently between the two, so a loss that draws from it is caught: use ``rng``);
   the saved state passes the checks ``rlcore resume`` makes (``rlcore.run.fit``);
3. the same seed gives the same initial weights, the same actions and the same update; another
   seed gives other weights and other actions;
4. a module named ``target*`` that the core does not keep (``targets``) must change while its
   online counterpart trains, or it is a target nobody updates;
5. a plugin's numpy policy (``numpy_policy``, what its actors run) acts as ``make_policy``;
6. (``ray=True``, ``rlcore check-plugin NAME --ray``) the first round's data from one Ray actor
   equals the inline worker's, record for record: the policy, its weights and its randomness
   survive the trip to an actor process.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

GAME_ENV = "rlcore/TicTacToe-v0"


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def env_for(plugin, action_kind: str | None = None) -> tuple[str, str, dict]:
    """(env id, action kind, env kwargs) of a tiny env the plugin can run on: a two-player
    game for the game regime, a gridworld with state indices for plugins that take Discrete
    observations (``DataSpec.obs_kind``), else the fake envs (with ``info['label']``)."""
    from rlcore.testing.fake_env import register

    if plugin.data_spec.regime == "game":
        return GAME_ENV, "discrete", {}
    if plugin.contract_env is not None:
        env_id, kwargs = plugin.contract_env
        return env_id, action_kind or plugin.action_spaces[0], dict(kwargs)
    kind = action_kind or plugin.action_spaces[0]
    if plugin.data_spec.obs_kind == "discrete":
        return "rlcore/GridWorld-v0", kind, {"obs_mode": "index"}
    return register(kind), kind, {}


def experiment(name: str, seed: int, action_kind: str | None = None, num_actors: int = 0):
    """A small experiment of the plugin on its tiny env (inline, a few steps per update)."""
    from rlcore import registry
    from rlcore.config import load_experiment

    plugin = registry.get_algorithm(name)
    env_id, _, kwargs = env_for(plugin, action_kind)
    if num_actors and env_id.startswith("rlcore-test/"):  # actors import the module that has it
        env_id = f"rlcore.testing.fake_env:{env_id}"
    regime = plugin.data_spec.regime
    data = {"algorithm": name, "seed": seed,
            "env": {"id": env_id, "num_envs": 3, "kwargs": kwargs},
            "rollout": {"num_actors": num_actors, "fragment_length": 8,
                        "num_cpus_per_actor": 0.5},
            "learner": {"torch_threads": 1}, "logging": {"progress_every_s": 0},
            "stop": {"num_env_steps": 10_000}, "algo": {}}
    if regime == "trajectory":
        data["learner"].update(num_epochs=2, minibatch_size=8, gns_microbatches=2)
    elif regime == "transition":
        data["algo"].update(batch_size=8, learning_starts=0, buffer_size=500)
    else:
        data["env"] = {"id": env_id}
        data["algo"].update(games_per_round=2, batch_size=8, min_positions=8,
                            updates_per_round=1)
    config_fields = plugin.config_cls.model_fields if hasattr(plugin.config_cls, "model_fields") else {}
    small = {"hidden_sizes": [16], "channels": 4, "blocks": 1, "value_hidden": 4,
             "num_simulations": 4, "parallel_games": 2, "eval_simulations": 2, "hidden": 8}
    data["algo"].update({k: v for k, v in small.items() if k in config_fields})
    return load_experiment(data=data)


def params(learner) -> dict:
    return {f"{k}.{n}": p.detach().clone() for k, m in learner.modules.items()
            for n, p in m.state_dict().items()}


def update_data(run):
    """Data for one learner update, as the run's regime would hand it over."""
    regime = run.regime
    if regime.name == "trajectory":
        run.publish()
        return run.pool.round([None])
    if regime.name == "transition":
        return regime.buffer.sample(run.exp.algo.batch_size)
    return [regime.store.sample(run.exp.algo.batch_size, np.random.default_rng(0))]


def updated_run(exp, run_dir: Path, updates: int = 2):
    """A run of ``exp`` driven round by round until the learner made ``updates`` updates."""
    from rlcore.run.lifecycle import Run

    run = Run(exp, run_dir)
    run.t_run, run.steps_at_start = run.clock(), 0
    drive(run, updates)
    return run


def drive(run, updates: int, max_rounds: int = 200) -> None:
    """The run's regime rounds until the learner made ``updates`` updates (or ``max_rounds``)."""
    for _ in range(max_rounds):
        if run.learner.updates >= updates:
            break
        run.regime.round()


def _check_updates(run, before: dict) -> Check:
    name = "two updates move the parameters"
    if run.learner.updates < 2:
        return Check(name, False, f"only {run.learner.updates} update(s) in 200 rounds: does "
                                  "prepare_batch/loss see the data the regime hands over?")
    moved = [k for k, v in params(run.learner).items() if not torch.equal(before[k], v)]
    if not moved:
        return Check(name, False, "no parameter changed: do the losses depend on the modules?")
    return Check(name, True, f"{run.learner.updates} updates, {len(moved)} tensors moved")


def _check_restore(exp, run) -> Check:
    from rlcore.learner.core import Learner
    from rlcore.run import checkpoint
    from rlcore.run.fit import RunFit

    name = "save -> restore -> identical next update"
    path = run.save_checkpoint()
    # with the checks `rlcore resume` makes: the saved state must fit a fresh learner's
    _, meta, tensors = checkpoint.load_latest(run.run_dir, exp.plugin.name,
                                              run.spaces.to_json(), torch.device("cpu"),
                                              RunFit(exp, run.spaces, regime=run.regime))
    restored = Learner(exp, run.spaces, torch.device("cpu"), run.regime.one_step)
    restored.load_state_tensors(tensors)
    restored.load_meta(meta["learner"])
    data = update_data(run)
    torch.manual_seed(1)  # a loss drawing from torch's global generator sees other numbers
    run.learner.update(data, 0.3)
    torch.manual_seed(2)
    restored.update(data, 0.3)
    p1, p2 = params(run.learner), params(restored)
    differ = [k for k in p1 if not torch.equal(p1[k], p2[k])]
    if differ:
        return Check(name, False, f"after restoring {path.name}, the same update gave other "
                                  f"parameters ({', '.join(differ[:3])}): draw every random "
                                  "number of prepare_batch and loss from their rng argument, "
                                  "not torch's global generator, and keep all other state in "
                                  "the modules or the plugin state")
    return Check(name, True)


def _check_seeds(name_: str, action_kind, tmp: Path) -> Check:
    name = "same seed -> same run; other seed -> other run"
    runs = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        exp = experiment(name_, seed, action_kind)
        run = updated_run(exp, tmp / f"seed-{label}", updates=1)
        runs[label] = (params(run.learner), run)
    pa, pb, pc = runs["a"][0], runs["b"][0], runs["c"][0]
    try:
        if any(not torch.equal(pa[k], pb[k]) for k in pa):
            return Check(name, False, "seed 0 twice gave different parameters after one "
                                      "update: something draws from an unseeded generator")
        if all(torch.equal(pa[k], pc[k]) for k in pa):
            return Check(name, False, "seeds 0 and 1 gave the same parameters: the seed does "
                                      "not reach the initial weights (build modules in "
                                      "make_modules, with torch's default initializers)")
    finally:
        for _, run in runs.values():
            run.pool.close()
            run.watchdog.close()
    return Check(name, True)


def _check_targets(run) -> Check:
    name = "every target network is updated"
    kept = set(run.learner.targets)
    own = [k for k in run.learner.modules if k.startswith("target") and k not in kept]
    if not own:
        return Check(name, True, f"kept by the core: {', '.join(sorted(kept)) or 'none'}")
    start = params(run.learner)
    for _ in range(50):
        run.learner.update(update_data(run), 0.5)
    now = params(run.learner)
    frozen = [k for k in own if all(torch.equal(start[p], now[p]) for p in start
                                    if p.startswith(f"{k}."))]
    if frozen:
        return Check(name, False, f"{', '.join(frozen)} did not change in 50 updates while the "
                                  "plugin trained: declare targets={'" + frozen[0] + "': "
                                  "'<online module>'} so the core keeps it updated")
    return Check(name, True)


def _check_numpy_policy(exp, run) -> Check:
    """The plugin's numpy policy (``numpy_policy``, what its actors run) acts as ``make_policy``
    does on the learner's weights: same actions (within 1e-5 for Box actions) and log-probs,
    for the same observations and generator state, exploring and greedy."""
    from rlcore.actors.envs import make_vec_env
    from rlcore.policies.numpy_policy import build

    name = "the numpy policy acts as make_policy"
    plugin, modules, spaces = exp.plugin, run.learner.modules, run.spaces
    spec = plugin.numpy_policy(modules, exp.algo, spaces) if plugin.numpy_policy else None
    if spec is None:
        return Check(name, True, "no numpy policy: actors run torch")
    envs = make_vec_env(exp.config.env.id, 4, exp.config.env.kwargs)
    try:
        obs, _ = envs.reset(seed=0)
    finally:
        envs.close()
    for explore in (True, False):
        torch_policy = plugin.make_policy(modules, exp.algo, spaces, explore)
        numpy_policy = build(spec, exp.algo, spaces, explore)
        numpy_policy.load_weights(run.learner.weights(for_actors=True))
        a = torch_policy.act(obs, np.random.default_rng(0))
        b = numpy_policy.act(obs, np.random.default_rng(0))
        for field in ("action", "log_prob", "env_action"):
            x, y = getattr(a, field), getattr(b, field)
            same = (x is None) == (y is None) and (x is None or np.allclose(
                np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-5, atol=1e-5))
            if not same:
                return Check(name, False, f"{'exploring' if explore else 'greedy'}, the numpy "
                                          f"policy's {field} differs from make_policy's: "
                                          "numpy_policy must describe the very policy "
                                          "make_policy builds (same nets, same sampling)")
    return Check(name, True)


def _first_round_data(run) -> list:
    """What the pool hands the run's regime in its first round (the regime's own request)."""
    seen = []
    for method in ("round", "stream"):
        real = getattr(run.pool, method)

        def record(*args, real=real, **kwargs):
            out = real(*args, **kwargs)
            seen.append(out)
            return out

        setattr(run.pool, method, record)
    for _ in range(50):  # a streaming pool may answer a first request with nothing yet
        run.regime.round()
        if any(len(out) for out in seen):
            break
    return [item for out in seen for item in out]


def _differences(a, b, where: str = "") -> list[str]:
    """Where two records differ (dataclass fields, dicts, sequences, arrays, numbers)."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return [d for f in dataclasses.fields(a)
                for d in _differences(getattr(a, f.name), getattr(b, f.name),
                                      f"{where}.{f.name}")]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}[{k!r}]")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, (np.ndarray, torch.Tensor)) or isinstance(b, (np.ndarray, torch.Tensor)):
        x, y = np.asarray(a), np.asarray(b)
        same = x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        return [] if same else [f"{where}: arrays differ"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _check_ray(name_: str, action_kind, tmp: Path) -> Check:
    from rlcore.run.lifecycle import Run

    name = "one Ray actor gives the inline worker's data"
    data = {}
    for n in (0, 1):
        run = Run(experiment(name_, 0, action_kind, num_actors=n), tmp / f"ray-{n}")
        run.t_run, run.steps_at_start = run.clock(), 0
        try:
            data[n] = _first_round_data(run)
        finally:
            run.pool.close()
            run.watchdog.close()
    if not data[0]:
        return Check(name, False, "the inline worker gave no data in 50 rounds")
    diffs = _differences(data[0], data[1], "round")
    if diffs:
        return Check(name, False, f"the Ray actor's first round differs from the inline "
                                  f"worker's ({'; '.join(diffs[:3])}): keep everything the policy "
                                  "needs in its modules' state_dicts, and draw its random numbers "
                                  "from the rng the worker passes to act()")
    return Check(name, True, f"{len(data[0])} record(s) identical")


def check_plugin(name: str, action_kind: str | None = None, ray: bool = False) -> list[Check]:
    """Run every check on the plugin ``name`` (with ``ray``, also the Ray equivalence check,
    which starts a local Ray); a check that raises fails with the error."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = None
        try:
            exp = experiment(name, 0, action_kind)
            env_id, kind, _ = env_for(exp.plugin, action_kind)
            run = updated_run(exp, tmp / "run", updates=0)
            before = params(run.learner)
            out.append(Check("builds from a YAML experiment", True, f"on {env_id} ({kind})"))
            drive(run, 2)
            out.append(_check_updates(run, before))
            out.append(_guarded(lambda: _check_restore(exp, run),
                                "save -> restore -> identical next update"))
            out.append(_guarded(lambda: _check_seeds(name, action_kind, tmp),
                                "same seed -> same run; other seed -> other run"))
            out.append(_guarded(lambda: _check_targets(run), "every target network is updated"))
            out.append(_guarded(lambda: _check_numpy_policy(exp, run),
                                "the numpy policy acts as make_policy"))
            if ray:
                out.append(_guarded(lambda: _check_ray(name, action_kind, tmp),
                                    "one Ray actor gives the inline worker's data"))
        except Exception as exc:  # noqa: BLE001 - the checker reports, it does not crash
            out.append(Check("builds and runs", False, f"{type(exc).__name__}: {exc}"))
        finally:
            if run is not None:
                run.pool.close()
                run.watchdog.close()
    return out


def _guarded(fn, name: str) -> Check:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"{type(exc).__name__}: {exc}")
