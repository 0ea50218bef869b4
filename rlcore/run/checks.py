"""What a run checks and decides before anything starts: the env against the plugin (and the
regime's own checks), the learner's torch threads, the library versions recorded in a run, and
that a resumed run's folder takes writes."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np

from rlcore.errors import ConfigError, IncompatibleEnvError
from rlcore.types import SpaceSpec


def check_spaces(exp) -> SpaceSpec:
    """Make the env once on the driver and check it against the plugin and its regime, before
    any actor starts (``rlcore validate`` runs this too)."""
    from rlcore.actors.envs import probe_spaces
    from rlcore.regimes import regime_of

    cfg = exp.config
    spaces = probe_spaces(cfg.env.id, cfg.env.kwargs)
    if spaces.action_kind not in exp.plugin.action_spaces:
        fits = algorithms_for(spaces.action_kind, exp.plugin.data_spec.regime, cfg.env.id)
        hint = f"try another algorithm: {' or '.join(fits)}" if fits else "try another algorithm"
        raise IncompatibleEnvError(
            f"{exp.plugin.name} needs a {' or '.join(exp.plugin.action_spaces)} action space; "
            f"'{cfg.env.id}' has {spaces.describe_action()}; {hint} (or pick an env with a "
            f"{'/'.join(exp.plugin.action_spaces)} action space)")
    if cfg.env.normalize_obs and (spaces.num_obs or not spaces.obs_shape):
        raise IncompatibleEnvError(
            f"env.normalize_obs needs a Box observation; '{cfg.env.id}' has "
            f"{'Discrete(' + str(spaces.num_obs) + ')' if spaces.num_obs else 'a scalar'} "
            f"observations ({exp.where('env', 'normalize_obs')}); set env.normalize_obs: false")
    if cfg.eval.video_every_env_steps:
        check_renders(exp)
    if cfg.rollout.overlap:
        check_overlap(exp)
    regime_of(exp).check(exp, spaces)
    return spaces


def check_overlap(exp) -> None:
    """``rollout.overlap`` splits each worker's sub-envs in two halves that step while the policy
    acts: only a vector env that sends actions and receives the results later (``send`` /
    ``recv``: ale-py's, stepping in its own threads) overlaps; a Gymnasium vector env steps in
    the worker's thread, so nothing would. And each half needs a sub-env."""
    from rlcore.actors.envs import make_vec_env
    from rlcore.actors.slots import split

    cfg = exp.config
    where = exp.where("rollout", "overlap")
    envs = make_vec_env(cfg.env.id, 1, cfg.env.kwargs)
    try:
        splits = callable(getattr(envs, "send", None)) and callable(getattr(envs, "recv", None))
    finally:
        envs.close()
    if not splits:
        raise IncompatibleEnvError(
            f"{where}: rollout.overlap needs an env that steps in its own threads (a native "
            f"vector env such as rlcore/PongNative-v5), and '{cfg.env.id}' steps in the "
            "worker's thread; set rollout.overlap: false, or use the game's Native id")
    fewest = min(split(cfg.env.num_envs, max(1, cfg.rollout.num_actors)))
    if fewest < 2:
        raise ConfigError([
            f"{where}: rollout.overlap splits each worker's sub-envs in two halves, and a worker "
            f"has {fewest} (env.num_envs {cfg.env.num_envs} over "
            f"{max(1, cfg.rollout.num_actors)} worker(s)); raise env.num_envs to at least "
            f"{2 * max(1, cfg.rollout.num_actors)} or set rollout.overlap: false"])
    if cfg.env.normalize_obs or cfg.env.normalize_reward or exp.plugin.data_spec.info_keys:
        what = ("env.normalize_obs/normalize_reward" if not exp.plugin.data_spec.info_keys
                else f"the {exp.plugin.name} plugin's step infos")
        raise ConfigError([f"{where}: rollout.overlap does not go with {what}; set "
                           "rollout.overlap: false"])


def check_renders(exp) -> None:
    """``eval.video_every_env_steps`` needs an env that renders ``rgb_array`` frames: refused at
    start-up, not at the first evaluation an hour in."""
    import gymnasium as gym

    cfg = exp.config
    env = gym.make(cfg.env.id, **cfg.eval_env_kwargs)
    try:
        modes = list(env.metadata.get("render_modes") or [])
    finally:
        env.close()
    if "rgb_array" not in modes:
        raise IncompatibleEnvError(
            f"{exp.where('eval', 'video_every_env_steps')}: eval.video_every_env_steps records "
            f"rgb_array frames, and env '{cfg.env.id}' renders only "
            f"{', '.join(modes) if modes else 'nothing'}; set eval.video_every_env_steps: 0 or "
            "use an env that renders rgb_array")


def algorithms_for(action_kind: str, regime: str, env_id: str | None = None) -> list[str]:
    """Installed algorithms that take ``action_kind`` actions, those of ``regime`` only when
    there are any (dqn on Pendulum suggests ddpg or td3, not every policy-gradient method);
    a plugin made for one env (``contract_env``: lqr for CartPole-v1) only for that env."""
    from rlcore import registry
    from rlcore.errors import RegistryError

    fits = []
    for name in registry.algorithm_names():
        try:
            plugin = registry.get_algorithm(name)
        except RegistryError:
            continue
        if plugin.contract_env is not None and plugin.contract_env[0] != env_id:
            continue
        if action_kind in plugin.action_spaces:
            fits.append((plugin.data_spec.regime == regime, name))
    same = [name for same_regime, name in fits if same_regime]
    return same or [name for _, name in fits]


def learner_threads(cfg) -> int:
    """``learner.torch_threads``, or by default the cores the local rollout actors leave free,
    and 1 when that is 2 or fewer.

    Measured on 2 cores: with another busy process on the machine, two intra-op threads made a
    PPO CartPole update 200x slower (6 s instead of 30 ms) and PPO HalfCheetah (256x256 MLP,
    minibatch 64) 27x slower (62 instead of ~1,000 env steps/s) as OpenMP threads waited on each
    other; the second thread buys little on such small models even on an idle machine.
    """
    if cfg.learner.torch_threads:
        return cfg.learner.torch_threads
    cpus = os.cpu_count() or 1
    if cfg.rollout.num_actors and cfg.ray.address is None:
        cpus -= int(cfg.rollout.num_actors * cfg.rollout.num_cpus_per_actor)
    return cpus if cpus > 2 else 1


def versions() -> dict:
    import gymnasium
    import torch

    import rlcore

    out = {"rlcore": rlcore.__version__, "torch": torch.__version__,
           "gymnasium": gymnasium.__version__, "numpy": np.__version__}
    try:
        import ray

        out["ray"] = ray.__version__
    except ImportError:
        pass
    return out



def plugin_info(exp) -> dict:
    """The algorithm plugin a run uses, as checkpoints record it: its name, ``module:attr`` and,
    when its module comes from an installed distribution, that distribution and its version
    (None when unknown: a plugin file that is not installed)."""
    target = exp.plugin_target
    package, version = _distribution(target.partition(":")[0].split(".")[0])
    return {"name": exp.plugin.name, "target": target, "package": package, "version": version}


@functools.lru_cache(maxsize=None)
def _distribution(top_module: str) -> tuple[str | None, str | None]:
    from importlib import metadata

    try:
        names = metadata.packages_distributions().get(top_module) or []
        return (names[0], metadata.version(names[0])) if names else (None, None)
    except Exception:  # broken metadata of an unrelated distribution: the record stays partial
        return None, None


def probe_write(folder: Path) -> None:
    """Create and remove a file in ``folder``; its OSError says why the folder takes no writes.
    Permission bits do not say everything (root; read-only mounts)."""
    fd, probe = tempfile.mkstemp(prefix=".rlcore-write-check-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_writable(run_dir: Path) -> None:
    """Refuse, before anything starts, to resume into a folder that takes no writes: resume
    writes checkpoints, summary.json and TensorBoard events there."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        try:
            probe_write(folder)
        except OSError as exc:
            raise ConfigError([
                f"{folder}: cannot write there ({exc.strerror or exc}); resume writes "
                "checkpoints, summary.json and TensorBoard events into the run folder. Make it "
                f"writable, or resume a copy: cp -r {run_dir} NEW_DIR && rlcore resume NEW_DIR"
            ]) from None
