"""The one environment loop, used inline in the driver and inside Ray actors."""

from __future__ import annotations

import sys

import numpy as np

from rlcore import seeding
# the env helpers lived here before rlcore.actors.envs; imported from here still
from rlcore.actors.envs import (MISSING_PACKAGE_FIX, float32_observations,  # noqa: F401
                                make_vec_env, probe_spaces)
from rlcore.errors import EnvRuntimeError, NonFiniteEnvError
from rlcore.ops.normalize import NormSettings, RunNormalizer, WorkerNormalizer
from rlcore.plugin import PluginRef
from rlcore.types import Fragment, SpaceSpec


def _load(plugin):
    """The ``AlgorithmPlugin`` of a target or ``PluginRef`` (imports the plugin's modules)."""
    from rlcore.registry import get_algorithm

    if isinstance(plugin, PluginRef):
        return get_algorithm(plugin.target)
    return get_algorithm(plugin) if isinstance(plugin, str) else plugin


class RolloutWorker:
    """Steps ``num_envs`` sub-environments with an inference copy of the policy and folds the
    steps into ``Fragment`` records of numpy arrays."""

    def __init__(self, plugin, algo_cfg, spaces: SpaceSpec, env_id: str, num_envs: int,
                 env_kwargs: dict, fragment_length: int, seed: int, actor_id: int,
                 clip_rewards: bool = False, norm: NormSettings = NormSettings(),
                 nonfinite: str = "stop", max_nonfinite_drops: int = 10, numpy_policy=None,
                 overlap: bool = False):
        """``plugin``: the ``AlgorithmPlugin``, its target or a ``PluginRef`` (an actor then
        imports the plugin only to run torch). ``numpy_policy``: the plugin's
        ``NumpyPolicySpec``; the worker then acts with that policy and builds no torch modules
        (torch is imported only if it must act before any weights arrive: see ``sample``).
        ``overlap`` (``rollout.overlap``): the sub-envs in two halves, each its own native vector
        env that steps outside this thread; the policy acts for one half while the other steps
        (see ``_steps_overlapped``)."""
        from threadpoolctl import threadpool_limits

        # Policy inference multiplies small matrices ([num_envs, 256] @ [256, 256]): a second
        # BLAS thread only waits on the first (measured on 2 cores with one busy: 8-env PPO
        # HalfCheetah inference 10 ms per step with 2 OpenBLAS threads, well under 1 ms with 1)
        threadpool_limits(1, user_api="blas")
        if isinstance(plugin, str) or (numpy_policy is None and isinstance(plugin, PluginRef)):
            plugin = _load(plugin)  # Ray: by target
        self.plugin, self.algo_cfg, self.spaces, self.env_id = plugin, algo_cfg, spaces, env_id
        self.nonfinite, self.max_nonfinite_drops, self.dropped = nonfinite, max_nonfinite_drops, 0
        # read by the watchdog's thread: the step in progress and its action
        self.fragments, self.step_in_fragment, self.last_action, self._dones = 0, -1, None, None
        self.actor_id, self.fragment_length, self.clip_rewards = actor_id, fragment_length, clip_rewards
        self.init_seed = seeding.derive(seed, seeding.INIT_STREAM, actor_id)
        self.loaded = False  # weights: with a numpy policy, none until the first set_weights
        if numpy_policy is not None:
            from rlcore.policies.numpy_policy import build

            self.modules, self.policy = None, build(numpy_policy, algo_cfg, spaces, explore=True)
        else:
            with seeding.seeded_torch(self.init_seed):
                self.modules = plugin.make_modules(algo_cfg, spaces)  # weights come from the learner
            for m in self.modules.values():
                m.eval()
            self.policy, self.loaded = plugin.make_policy(self.modules, algo_cfg, spaces, explore=True), True
        self.policy_version = -1
        self.rng = np.random.default_rng(seeding.derive(seed, seeding.POLICY_STREAM, actor_id))
        self.num_envs = num_envs
        if overlap:
            self.halves = [(make_vec_env(env_id, hi - lo, env_kwargs), slice(lo, hi))
                           for lo, hi in ((0, num_envs // 2), (num_envs // 2, num_envs))]
            self.envs = None
        else:
            self.halves, self.envs = None, make_vec_env(env_id, num_envs, env_kwargs)
        self.obs = self._reset(seeding.derive(seed, seeding.ENV_STREAM, actor_id))
        self.ep_return = np.zeros(num_envs)
        self.ep_length = np.zeros(num_envs, np.int64)
        self.total_steps = 0
        self.info_keys = tuple(plugin.data_spec.info_keys)
        self.norm = WorkerNormalizer(norm, spaces.obs_shape, num_envs) if norm.active else None
        self.obs_dtype = np.float32 if norm.obs else self.obs.dtype

    def set_weights(self, weights: dict, version: int) -> None:
        """Load a numpy state dict ``{module: {param: array}}`` published as ``version`` (the
        modules it holds: the learner keeps target networks to itself)."""
        if version == self.policy_version:
            return
        if self.modules is None:
            self.policy.load_weights(weights)
        else:
            from rlcore.learner.core import load_numpy_weights

            load_numpy_weights(self.modules, weights, partial=True)
        if self.norm is not None:
            self.norm.load(weights[RunNormalizer.KEY])
        self.policy_version, self.loaded = version, True

    def _initial_weights(self) -> None:
        """A numpy policy asked to act before any weights came: the weights a torch worker
        starts from (the plugin's modules built from the same seed). Runs never get here (each
        pool sends the weights with a worker's first request); a worker driven by hand does."""
        from rlcore.learner.core import to_numpy_weights

        plugin = _load(self.plugin)
        with seeding.seeded_torch(self.init_seed):
            modules = plugin.make_modules(self.algo_cfg, self.spaces)
        self.policy.load_weights(to_numpy_weights(modules))
        self.loaded = True

    def work(self, request: dict | None = None) -> Fragment:
        """One fragment under the ``rollout.nonfinite`` policy. ``request`` may carry the
        exploration schedule's inputs (``env_steps``, ``num_actors``), set on the policy first
        when it has ``set_schedule``.

        ``stop``: a NaN/inf observation or reward raises the located ``EnvRuntimeError``.
        ``drop``: the fragment is dropped (counted in ``dropped``), the sub-envs are reset (the
        episodes in progress are lost) and it samples again; ``max_nonfinite_drops`` drops in a
        row stop the run."""
        set_schedule = getattr(self.policy, "set_schedule", None)
        if request and set_schedule is not None:
            set_schedule(request["env_steps"], self.actor_id, request["num_actors"])
        drops = 0
        while True:
            try:
                return self.sample()
            except NonFiniteEnvError as exc:
                if self.nonfinite != "drop":
                    raise EnvRuntimeError(f"env '{self.env_id}': {exc} (rollout.nonfinite=stop; set "
                                          "it to drop to drop such fragments and go on)") from None
                drops += 1
                self.dropped += 1
                if drops >= self.max_nonfinite_drops:
                    raise EnvRuntimeError(
                        f"env '{self.env_id}': {drops} fragments in a row dropped for non-finite "
                        f"values (rollout.max_nonfinite_drops={self.max_nonfinite_drops}); the "
                        f"last: {exc}") from None
                print(f"rlcore: dropped a fragment: env '{self.env_id}': {exc}", file=sys.stderr,
                      flush=True)
                self.reset_envs()

    def progress(self) -> tuple[int, int]:
        """Changes at every env step (the watchdog's thread reads it)."""
        return self.fragments, self.step_in_fragment

    def describe(self) -> str:
        """Where the worker is stepping now, for the watchdog's message."""
        from rlcore.actors.watchdog import hung_call, vector_env_position

        call, n, t = hung_call(), vector_env_position(), self.step_in_fragment
        where = f"{call} of env '{self.env_id}' (actor {self.actor_id}"
        if n is None or self._dones is None or t < 0:
            return where + ")"
        done = self._dones[0][:t, n] | self._dones[1][:t, n]
        ended = np.flatnonzero(done)
        episode_step = t - ended[-1] - 1 if len(ended) else int(self.ep_length[n]) + t
        action = repr(np.asarray(self.last_action[n]).tolist())
        return f"{where}, sub-env {n}, episode step {episode_step}, last action {action})"

    def sample(self) -> Fragment:
        if not self.loaded:
            self._initial_weights()
        T, N = self.fragment_length, self.num_envs
        norm = self.norm
        before = norm.snapshot() if norm is not None else None
        obs_buf = np.empty((T, N, *self.obs.shape[1:]), self.obs_dtype)
        reward = np.empty((T, N), np.float32)
        raw_reward = np.empty((T, N), np.float32) if norm is not None else reward
        terminated = np.empty((T, N), bool)
        truncated = np.empty((T, N), bool)
        log_prob = np.empty((T, N), np.float32)
        actions, final_obs, final_idx = [], [], []
        infos: dict[str, np.ndarray] = {}
        self.fragments, self._dones = self.fragments + 1, (terminated, truncated)
        bufs = (obs_buf, reward, raw_reward, terminated, truncated, log_prob, actions, final_obs,
                final_idx, infos)
        if self.halves is None:
            self._steps(*bufs)
        else:
            self._steps_overlapped(*bufs)
        ep_returns, ep_lengths = self._finished_episodes(raw_reward, terminated | truncated)
        self.total_steps += T * N
        frag = Fragment(
            obs=obs_buf, action=np.stack(actions), reward=reward, terminated=terminated,
            truncated=truncated & ~terminated,
            bootstrap_obs=self.obs.copy() if norm is None else norm.normalize(self.obs),
            final_obs=(np.stack(final_obs) if final_obs
                       else np.empty((0, *self.obs.shape[1:]), self.obs_dtype)),
            final_idx=np.asarray(final_idx, np.int64).reshape(-1, 2),
            log_prob=log_prob if self.plugin.data_spec.needs_log_prob else None,
            policy_version=self.policy_version, actor_id=self.actor_id,
            episode_returns=np.asarray(ep_returns, np.float64),
            episode_lengths=np.asarray(ep_lengths, np.int64), info=infos,
            norm_delta=None if norm is None else norm.take_delta())
        try:
            self._check_finite(frag)
        except NonFiniteEnvError:
            if norm is not None:  # what this fragment saw stays out of the statistics
                norm.restore(before)
            raise
        if self.clip_rewards:
            np.sign(frag.reward, out=frag.reward)
        return frag

    def _steps(self, obs_buf, reward, raw_reward, terminated, truncated, log_prob, actions,
               final_obs, final_idx, infos) -> None:
        """The fragment's steps, all sub-envs at once: act, then step."""
        norm = self.norm
        for t in range(self.fragment_length):
            obs = self.obs if norm is None else norm.observe(self.obs)
            out = self.policy.act(obs, self.rng)
            obs_buf[t] = obs
            self.step_in_fragment, self.last_action = t, out.for_env()
            next_obs, r, term, trunc, info = self.envs.step(self.last_action)
            actions.append(out.action)
            if out.log_prob is not None:
                log_prob[t] = out.log_prob
            raw_reward[t], terminated[t], truncated[t] = r, term, trunc
            if norm is not None:
                reward[t] = norm.reward(raw_reward[t], term | trunc)
            if self.info_keys:  # skipped entirely when the plugin declares none
                self._record_info(infos, info, term | trunc, t)
            if trunc.any():  # keep the true last observation: the env has already reset
                for i in np.flatnonzero(trunc & ~term):
                    last = info["final_obs"][i]
                    final_obs.append(last if norm is None else norm.normalize(last[None])[0])
                    final_idx.append((t, i))
            self.obs = next_obs

    def _steps_overlapped(self, obs_buf, reward, raw_reward, terminated, truncated, log_prob,
                          actions, final_obs, final_idx, infos) -> None:
        """The fragment's steps with the sub-envs in two halves (``rollout.overlap``): half 0's
        step t runs (in the vector env's own threads) while the policy acts for half 1, and
        half 1's while it acts for half 0's step t + 1. Each sub-env sees the same seed and, for a
        greedy policy, the same actions as without the overlap (tested); sampled actions draw
        from the policy's generator half by half, so they differ from the unsplit run's. No
        normalization or step infos here (refused by the config check)."""
        T = self.fragment_length
        outs: list[list] = [[], []]
        last = [None, None]

        def act(h: int, t: int) -> None:
            envs, rows = self.halves[h]
            obs_buf[t, rows] = self.obs[rows]
            out = self.policy.act(obs_buf[t, rows], self.rng)
            outs[h].append(out)
            last[h] = out.for_env()
            self.step_in_fragment = t
            envs.send(last[h])

        def finish(h: int, t: int) -> None:
            envs, rows = self.halves[h]
            next_obs, r, term, trunc, info = envs.recv()
            raw_reward[t, rows], terminated[t, rows], truncated[t, rows] = r, term, trunc
            for i in np.flatnonzero(trunc & ~term):
                final_obs.append(np.array(info["final_obs"][i]))
                final_idx.append((t, rows.start + i))
            self.obs[rows] = next_obs  # the env's own buffer: copied, it is reused next step

        act(0, 0)
        act(1, 0)
        for t in range(T):
            for h in (0, 1):
                finish(h, t)
                if t + 1 < T:
                    act(h, t + 1)
        # finish() ran step by step, half 0 before half 1: final_idx is in (step, sub-env)
        # order, as the unsplit loop lists it
        self.last_action = np.concatenate(last)
        for t in range(T):
            a, b = outs[0][t], outs[1][t]
            actions.append(np.concatenate([a.action, b.action]))
            if a.log_prob is not None:
                log_prob[t] = np.concatenate([a.log_prob, b.log_prob])

    def _record_info(self, out: dict, info: dict, done: np.ndarray, t: int) -> None:
        """Copy the declared info keys of step ``t`` into ``out[key][t]``. With same-step
        autoreset a finished sub-env's step info is in ``info['final_info']`` (the top level
        then holds its reset info), so done sub-envs read from there and the others from the
        top level; a declared key missing from a step is an error, not a silent zero."""
        final = info.get("final_info", {})
        for key in self.info_keys:
            have = np.zeros(self.num_envs, bool)
            for source, rows in ((info, ~done), (final, done)):
                if key not in source:
                    continue
                mask = source.get("_" + key, np.ones(self.num_envs, bool)) & rows
                values = np.asarray(source[key])
                if key not in out:
                    out[key] = np.zeros((self.fragment_length, *values.shape), values.dtype)
                out[key][t][mask] = values[mask]
                have |= mask
            if not have.all():
                n = int(np.flatnonzero(~have)[0])
                raise EnvRuntimeError(
                    f"the {self.plugin.name} plugin needs info['{key}'] at every step, but "
                    f"sub-env {n} of actor {self.actor_id} did not return it at fragment step "
                    f"{t}{' (a final step: looked in final_info)' if done[n] else ''}; use an env "
                    "that reports it (e.g. a rlcore/ dataset env) or another algorithm")

    def _finished_episodes(self, reward: np.ndarray, done: np.ndarray):
        """Returns and lengths of the episodes that ended in this fragment (raw, unscaled rewards),
        carrying unfinished episodes over to the next fragment. Done once per fragment, not
        per step: the per-step loop is the rollout's hot path."""
        T = reward.shape[0]
        csum = np.cumsum(reward, axis=0, dtype=np.float64)
        returns, lengths = [], []
        for n in np.flatnonzero(done.any(axis=0)):
            prev_sum, prev_t = 0.0, -1
            for t in np.flatnonzero(done[:, n]):
                returns.append(self.ep_return[n] + csum[t, n] - prev_sum)
                lengths.append(self.ep_length[n] + t - prev_t)
                self.ep_return[n], self.ep_length[n] = 0.0, 0
                prev_sum, prev_t = csum[t, n], t
            self.ep_return[n] -= prev_sum
            self.ep_length[n] -= prev_t + 1
        self.ep_return += csum[-1]
        self.ep_length += T
        return returns, lengths

    def _check_finite(self, frag: Fragment) -> None:
        for name in ("reward", "obs"):
            arr = getattr(frag, name)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                t, n = np.argwhere(~np.isfinite(arr.reshape(arr.shape[0], arr.shape[1], -1)).any(-1))[0]
                if name == "obs":  # obs[t] came from the step before (t = 0: the previous fragment)
                    t -= 1
                last = repr(np.asarray(frag.action[t, n]).tolist()) if t >= 0 else "in the previous fragment"
                raise NonFiniteEnvError(
                    f"non-finite {name} from actor {self.actor_id}, sub-env {n}, returned by the step "
                    f"at fragment step {t} (actor step {self.total_steps - frag.num_steps + t * self.num_envs + n}), "
                    f"last action {last}; fix the environment or wrap it to sanitize its outputs")
        final = frag.final_obs
        if len(final) and final.dtype.kind == "f" and not np.isfinite(final).all():
            i = int(np.flatnonzero(~np.isfinite(final.reshape(len(final), -1)).all(-1))[0])
            t, n = (int(x) for x in frag.final_idx[i])
            last = repr(np.asarray(frag.action[t, n]).tolist())
            raise NonFiniteEnvError(
                f"non-finite final observation of a truncated episode from actor "
                f"{self.actor_id}, sub-env {n}, returned by the step at fragment step {t}, last "
                f"action {last} (the learner bootstraps from it); fix the environment or wrap it "
                "to sanitize its outputs")

    def _reset(self, seed: int) -> np.ndarray:
        """Reset every sub-env, sub-env i with seed ``seed + i`` (split in halves or not)."""
        if self.halves is None:
            return self.envs.reset(seed=seed)[0]
        return np.concatenate([envs.reset(seed=seed + rows.start)[0]
                               for envs, rows in self.halves])

    def reset_envs(self) -> None:
        """Start new episodes in every sub-env (after a dropped fragment); seeds from the policy
        stream, so a run stays reproducible."""
        self.obs = self._reset(int(self.rng.integers(2**31 - 1)))
        self.ep_return[:] = 0.0
        self.ep_length[:] = 0

    def close(self) -> None:
        for envs in ([self.envs] if self.halves is None else [e for e, _ in self.halves]):
            envs.close()


def rollout_worker_spec(exp, spaces) -> "WorkerSpec":  # noqa: F821 (imported inside)
    """``RolloutWorker``s over the experiment's env: sub-envs split over the slots; a
    replacement worker (incarnation > 0) gets fresh seeds, so it does not replay the episodes its
    predecessor delivered."""
    from rlcore.actors.slots import WorkerSpec, incarnation_seed, split

    from rlcore.networks.export import numpy_policy_of

    cfg = exp.config
    envs = split(cfg.env.num_envs, max(1, cfg.rollout.num_actors))
    norm = NormSettings.of(exp)
    numpy = cfg.rollout.inference == "numpy"
    numpy_policy = numpy_policy_of(exp.plugin, exp.algo, spaces) if numpy else None
    ref = PluginRef(exp.plugin.name, exp.plugin_target, exp.plugin.data_spec)

    def kwargs(slot: int, incarnation: int, in_ray: bool) -> dict:
        seed = incarnation_seed(cfg.seed, slot, incarnation)
        return dict(plugin=ref if in_ray else exp.plugin, algo_cfg=exp.algo,
                    spaces=spaces, env_id=cfg.env.id, num_envs=envs[slot],
                    env_kwargs=cfg.env.kwargs, fragment_length=cfg.rollout.fragment_length,
                    seed=seed, actor_id=slot, clip_rewards=cfg.env.clip_rewards, norm=norm,
                    nonfinite=cfg.rollout.nonfinite,
                    max_nonfinite_drops=cfg.rollout.max_nonfinite_drops,
                    numpy_policy=numpy_policy, overlap=cfg.rollout.overlap)

    return WorkerSpec("rlcore.actors.worker:RolloutWorker", kwargs)
