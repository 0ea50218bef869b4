"""Replay for the transition regime: uniform or prioritized, n-step, frame-deduplicating.

Transitions arrive as consecutive steps of *streams* (one stream per sub-environment of each
actor) and each stream is a ring of *slots*, one per observation: a slot holds the newest frame
of its observation and, once the step is done, its action, reward and ``terminated`` /
``truncated``. The next observation of a step is the next slot of the same stream, so every
observation is stored once, not once as ``obs`` and again as ``next_obs``; the last observation
of an episode gets a slot of its own that starts no transition.

With ``frame_stack = K > 1`` (observations [K, *frame] made by stacking the last K frames, as
Atari's 4 x 84 x 84) a slot keeps only the newest frame, and a stacked observation is rebuilt
from the K slots ending at it. Before the episode's first slot the stack is padded the way the
env pads it: with the first frame (Gymnasium's ``FrameStackObservation``) or with zeros
(ale-py's ``AtariVectorEnv``); the padding is read from the first episode start and every
later one is checked against it. 1M Atari transitions then take 1M x 84 x 84 bytes = 7.1 GB of
frames instead of 56 GB for separate 4-frame obs and next_obs.

n-step returns are computed when sampling (the learner's side, with the current gamma and n):
see ``rlcore.ops.nstep``. A truncated episode bootstraps from its true final observation (its
own slot); a terminated one does not bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlcore.buffers.sum_tree import SumTree
from rlcore.errors import EnvRuntimeError
from rlcore.ops.nstep import nstep_returns


@dataclass
class ReplaySample:
    """A sampled batch of n-step transitions (numpy): target = reward + discount * V(next_obs)."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray  # n-step discounted return, float32 [B]
    discount: np.ndarray  # gamma^m, or 0 when the window ended in a termination, float32 [B]
    next_obs: np.ndarray
    weight: np.ndarray  # importance weights (all 1 for uniform replay), float32 [B]
    index: np.ndarray  # slot ids, for ``update_priorities``
    steps: np.ndarray  # m, the steps in each window

    def __len__(self) -> int:
        return len(self.reward)


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple, obs_dtype, action_shape: tuple,
                 action_dtype, num_streams: int, frame_stack: int = 1, n_step: int = 1,
                 gamma: float = 0.99, prioritized: bool = False, alpha: float = 0.6,
                 priority_eps: float = 1e-6, seed: int = 0):
        self.S = int(num_streams)
        self.K = int(frame_stack)
        self.C = max(-(-int(capacity) // self.S), self.K + n_step + 2)  # slots per stream
        self.n_step, self.gamma = int(n_step), float(gamma)
        self.obs_shape = tuple(obs_shape)
        if self.K > 1 and self.obs_shape[0] != self.K:
            raise ValueError(f"frame_stack {self.K} but observations have shape {self.obs_shape}")
        frame_shape = self.obs_shape[1:] if self.K > 1 else self.obs_shape
        self.frames = np.zeros((self.S, self.C, *frame_shape), obs_dtype)
        self.action = np.zeros((self.S, self.C, *action_shape), action_dtype)
        self.reward = np.zeros((self.S, self.C), np.float32)
        self.terminated = np.zeros((self.S, self.C), bool)
        self.truncated = np.zeros((self.S, self.C), bool)
        self.complete = np.zeros((self.S, self.C), bool)  # the slot starts a recorded step
        self.ep_start = np.zeros((self.S, self.C), np.int64)  # absolute slot of episode start
        self.count = np.zeros(self.S, np.int64)  # slots written per stream (absolute head)
        self.pending = np.full(self.S, -1, np.int64)  # slot of the obs awaiting its step
        self.padding: str | None = None if self.K > 1 else "none"
        self.num_complete = 0
        self.prioritized, self.alpha, self.priority_eps = prioritized, float(alpha), priority_eps
        self.tree = SumTree(self.S * self.C) if prioritized else None
        self.max_priority = 1.0
        self.rng = np.random.default_rng(seed)
        self.added = 0  # transitions ever added
        self._tree_updates: dict[int, float] = {}

    # ------------------------------------------------------------------ sizes

    def __len__(self) -> int:
        return self.num_complete

    @property
    def capacity(self) -> int:
        return self.S * self.C

    def nbytes(self) -> int:
        arrays = [self.frames, self.action, self.reward, self.terminated, self.truncated,
                  self.complete, self.ep_start]
        return sum(a.nbytes for a in arrays) + (self.tree.tree.nbytes if self.tree else 0)

    # ------------------------------------------------------------------ writing

    def _newest(self, obs: np.ndarray) -> np.ndarray:
        return obs[-1] if self.K > 1 else obs

    def _set_complete(self, s: int, p: int, value: bool) -> None:
        if self.complete[s, p] == value:
            return
        self.num_complete += 1 if value else -1
        self.complete[s, p] = value
        if self.tree is not None:  # applied once per ``add`` call (one vectorized tree update)
            self._tree_updates[s * self.C + p] = self.max_priority ** self.alpha if value else 0.0

    def _write_frame(self, s: int, frame: np.ndarray, ep_start: int) -> int:
        a = int(self.count[s])
        p = a % self.C
        # the overwritten slot, and the oldest K-1 slots whose stacks reached back into it
        for q in range(self.K):
            self._set_complete(s, (p + q) % self.C, False)
        self.frames[s, p] = frame
        self.ep_start[s, p] = ep_start
        self.terminated[s, p] = self.truncated[s, p] = False
        self.count[s] = a + 1
        return a

    def _check_padding(self, obs: np.ndarray) -> None:
        """The first observation of an episode must be padded as the buffer rebuilds it."""
        newest = obs[-1]
        fits = {"first": all(np.array_equal(f, newest) for f in obs[:-1]),
                "zero": not np.any(obs[:-1])}
        if self.padding is None:
            self.padding = "first" if fits["first"] else "zero" if fits["zero"] else None
        if self.padding is None or not fits[self.padding]:
            raise EnvRuntimeError(
                f"the first observation of an episode is a frame stack padded neither with its "
                f"first frame nor with zeros{'' if self.padding is None else f' (the buffer reads {self.padding!r} padding from earlier episodes)'}; "
                "the frame-deduplicating replay cannot rebuild it. Set algo.frame_dedup: false")

    def add(self, stream: np.ndarray, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, next_obs: np.ndarray) -> None:
        """Add one step of several streams (row i belongs to stream ``stream[i]``). Steps of a
        stream must arrive in order; ``next_obs`` of a terminated step may be anything (it is
        never bootstrapped from), of a truncated step it must be the true final observation."""
        self._tree_updates: dict[int, float] = {}
        for i, s in enumerate(np.asarray(stream, np.int64).tolist()):
            a = int(self.pending[s])
            if a < 0:  # a new episode: its first observation gets a slot
                if self.K > 1:
                    self._check_padding(obs[i])
                a = self._write_frame(s, self._newest(obs[i]), int(self.count[s]))
            p = a % self.C
            self.action[s, p] = action[i]
            self.reward[s, p] = reward[i]
            done = bool(terminated[i] or truncated[i])
            self.terminated[s, p] = bool(terminated[i])
            self.truncated[s, p] = bool(truncated[i]) and not bool(terminated[i])
            b = self._write_frame(s, self._newest(next_obs[i]), int(self.ep_start[s, p]))
            self._set_complete(s, p, True)
            self.pending[s] = -1 if done else b
            self.added += 1
        if self._tree_updates:
            self.tree.set(list(self._tree_updates), list(self._tree_updates.values()))

    # ------------------------------------------------------------------ reading

    def stacked(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Observations at absolute slots ``a`` of streams ``s`` (rebuilt stacks for K > 1)."""
        if self.K == 1:
            return self.frames[s, a % self.C]
        start = self.ep_start[s, a % self.C]
        out = np.empty((len(a), *self.obs_shape), self.frames.dtype)
        for k in range(self.K):
            j = a - (self.K - 1 - k)
            before = j < start
            out[:, k] = self.frames[s, np.maximum(j, start) % self.C]
            if self.padding == "zero" and before.any():
                out[before, k] = 0
        return out

    def _absolute(self, s: np.ndarray, p: np.ndarray) -> np.ndarray:
        head = self.count[s]
        return head - 1 - ((head - 1 - p) % self.C)

    def _draw_uniform(self, batch_size: int) -> np.ndarray:
        filled = np.minimum(self.count, self.C)
        cum = np.cumsum(filled)
        out = np.empty(0, np.int64)
        while len(out) < batch_size:
            flat = self.rng.integers(0, cum[-1], size=2 * batch_size)
            s = np.searchsorted(cum, flat, side="right")
            p = flat - (cum[s] - filled[s])
            ok = self.complete[s, p]
            out = np.concatenate([out, (s * self.C + p)[ok]])
        return out[:batch_size]

    def sample(self, batch_size: int, beta: float = 0.4) -> ReplaySample:
        if self.num_complete == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.tree is not None:
            index = self.tree.sample(batch_size, self.rng)
            prob = self.tree.get(index) / self.tree.total
            weight = (self.num_complete * prob) ** (-beta)
            weight = (weight / weight.max()).astype(np.float32)
        else:
            index = self._draw_uniform(batch_size)
            weight = np.ones(batch_size, np.float32)
        s, p = np.divmod(index, self.C)
        a = self._absolute(s, p)
        n = self.n_step
        window = a[:, None] + np.arange(n)[None, :]
        pw = window % self.C
        sw = np.broadcast_to(s[:, None], window.shape)
        available = (window < self.count[s][:, None]) & self.complete[sw, pw]
        ret, discount, steps = nstep_returns(self.reward[sw, pw], self.terminated[sw, pw],
                                             self.truncated[sw, pw], available, self.gamma)
        return ReplaySample(obs=self.stacked(s, a), action=self.action[s, p], reward=ret,
                            discount=discount, next_obs=self.stacked(s, a + steps),
                            weight=weight, index=index, steps=steps)

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray) -> None:
        if self.tree is None:
            return
        priority = np.abs(np.asarray(td_abs, np.float64)) + self.priority_eps
        s, p = np.divmod(np.asarray(index, np.int64), self.C)
        keep = self.complete[s, p]  # a slot overwritten since it was sampled keeps its new value
        self.max_priority = max(self.max_priority, float(priority.max(initial=0.0)))
        self.tree.set(index[keep], priority[keep] ** self.alpha)

    # ------------------------------------------------------------------ checkpoint

    _ARRAYS = ("frames", "action", "reward", "terminated", "truncated", "complete", "ep_start",
               "count", "pending")

    def save(self, path) -> None:
        """Everything as one uncompressed ``.npz`` (no pickle)."""
        extra = {"scalars": np.array([self.num_complete, self.added, self.max_priority]),
                 "padding": np.array(self.padding or "")}
        if self.tree is not None:
            extra["tree"] = self.tree.tree
        np.savez(path, **{k: getattr(self, k) for k in self._ARRAYS}, **extra)

    def check_file(self, path) -> list[str]:
        """What keeps ``load`` from taking ``save``'s file ``path`` into this buffer, from the
        file's headers alone: missing arrays, other shapes (another ``buffer_size``,
        ``env.num_envs`` or observation), object arrays. Empty when it fits."""
        from rlcore.buffers.npzfile import npz_layout

        try:
            found = npz_layout(path)
        except ValueError as exc:
            return [str(exc)]
        expected = {k: getattr(self, k).shape for k in self._ARRAYS}
        expected.update(scalars=(3,), padding=())
        if self.tree is not None:
            expected["tree"] = self.tree.tree.shape
        problems = []
        for k, shape in expected.items():
            if k not in found:
                problems.append(f"array '{k}': missing")
            elif found[k][1].hasobject:
                problems.append(f"array '{k}': expected numbers, found Python objects")
            elif k != "padding" and found[k][0] != tuple(shape):
                problems.append(f"'{k}' has shape {found[k][0]}, this buffer {tuple(shape)}")
        return problems

    def load(self, path) -> None:
        with np.load(path, allow_pickle=False) as data:
            for k in self._ARRAYS:
                if data[k].shape != getattr(self, k).shape:
                    raise ValueError(f"replay file {path}: '{k}' has shape {data[k].shape}, "
                                     f"this buffer {getattr(self, k).shape}")
                getattr(self, k)[...] = data[k]
            num_complete, added, max_priority = data["scalars"].tolist()
            self.num_complete, self.added = int(num_complete), int(added)
            self.max_priority = float(max_priority)
            self.padding = str(data["padding"]) or None
            if self.tree is not None:
                self.tree.tree[...] = data["tree"]
