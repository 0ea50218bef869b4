"""Replay: n-step targets, the frame-deduplicating store, the sum tree and prioritized weights."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.buffers import ReplayBuffer, SumTree
from rlcore.errors import EnvRuntimeError
from rlcore.regimes.transition_config import apex_epsilon, linear_epsilon
from rlcore.ops.nstep import nstep_returns
from rlcore.ops.targets import polyak_update, target_update


# ---------------------------------------------------------------- n-step


def test_nstep_returns_by_hand():
    # gamma 0.5, n 3; row 0: three plain steps; row 1: terminated at the 2nd step;
    # row 2: truncated at the 2nd step; row 3: only 1 step recorded so far
    reward = [[1, 2, 4], [1, 2, 4], [1, 2, 4], [8, 0, 0]]
    term = [[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]]
    trunc = [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
    avail = [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 0]]
    ret, disc, steps = nstep_returns(np.array(reward), np.array(term, bool), np.array(trunc, bool),
                                     np.array(avail, bool), 0.5)
    np.testing.assert_allclose(ret, [1 + 1 + 1, 1 + 1, 1 + 1, 8])
    np.testing.assert_allclose(disc, [0.125, 0.0, 0.25, 0.5])
    np.testing.assert_array_equal(steps, [3, 2, 2, 1])


def one_stream_buffer(n_step=3, gamma=0.5):
    """Stream 0: episode A (3 steps, terminated), episode B (2 steps, truncated), then one step
    of episode C; actions number the steps 0..5; observations are 1-D [id]."""
    buf = ReplayBuffer(100, (1,), np.float32, (), np.int64, 1, n_step=n_step, gamma=gamma)
    steps = [  # obs, reward, terminated, truncated, next_obs
        (10, 1, 0, 0, 11), (11, 2, 0, 0, 12), (12, 4, 1, 0, 13),
        (20, 1, 0, 0, 21), (21, 1, 0, 1, 22),
        (30, 8, 0, 0, 31)]
    for t, (o, r, te, tr, no) in enumerate(steps):
        buf.add([0], np.array([[o]], np.float32), np.array([t]), np.array([r], np.float32),
                np.array([te], bool), np.array([tr], bool), np.array([[no]], np.float32))
    return buf


def by_action(sample):
    out = {}
    for i, a in enumerate(sample.action.tolist()):
        out[a] = (float(sample.reward[i]), float(sample.discount[i]), float(sample.next_obs[i, 0]),
                  float(sample.obs[i, 0]))
    return out


def test_replay_nstep_targets_with_a_terminated_and_a_truncated_episode():
    buf = one_stream_buffer()
    got = by_action(buf.sample(400))
    assert sorted(got) == [0, 1, 2, 3, 4, 5]
    # G, discount (0 after a termination), bootstrap obs (a truncation's true final obs), obs
    assert got[0] == (1 + 0.5 * 2 + 0.25 * 4, 0.0, 13, 10)
    assert got[1] == (2 + 0.5 * 4, 0.0, 13, 11)
    assert got[2] == (4, 0.0, 13, 12)
    assert got[3] == (1 + 0.5 * 1, 0.25, 22, 20)
    assert got[4] == (1, 0.5, 22, 21)
    assert got[5] == (8, 0.5, 31, 30)  # only one step recorded yet: a 1-step target for now
    assert len(buf) == 6  # the final observations of A and B start no transition


def test_replay_stores_each_observation_once():
    buf = one_stream_buffer()
    # 6 steps, 3 episodes: 6 + 3 observations (each episode's last one has a slot of its own)
    assert int(buf.count[0]) == 9


# ---------------------------------------------------------------- frame deduplication


def stacked_episodes(rng, num_envs, steps, K=4, padding="first", frame=(5, 6)):
    """Per step: obs, next_obs, terminated, truncated as a frame-stacking env produces them
    (new frame appended, oldest dropped; after a reset the stack is padded)."""
    def fresh():
        f = rng.integers(0, 256, frame, dtype=np.uint8)
        pad = [f] * (K - 1) if padding == "first" else [np.zeros(frame, np.uint8)] * (K - 1)
        return np.stack(pad + [f])

    cur = [fresh() for _ in range(num_envs)]
    out = []
    for _ in range(steps):
        obs = np.stack(cur)
        nxt = np.stack([np.concatenate([c[1:], rng.integers(0, 256, (1, *frame), dtype=np.uint8)])
                        for c in cur])
        term = rng.random(num_envs) < 0.08
        trunc = ~term & (rng.random(num_envs) < 0.05)
        out.append((obs, nxt, term, trunc))
        cur = [fresh() if (term[i] or trunc[i]) else nxt[i] for i in range(num_envs)]
    return out


@pytest.mark.parametrize("padding", ["first", "zero"])
def test_frame_dedup_returns_exactly_the_stacks_it_was_given(padding):
    rng = np.random.default_rng(0)
    steps = stacked_episodes(rng, 3, 150, padding=padding)
    buf = ReplayBuffer(120, (4, 5, 6), np.uint8, (), np.int64, 3, frame_stack=4, seed=1)
    given = {}
    for t, (obs, nxt, term, trunc) in enumerate(steps):
        ids = np.arange(3) + 3 * t
        buf.add(np.arange(3), obs, ids, np.zeros(3, np.float32), term, trunc, nxt)
        for i in range(3):
            given[int(ids[i])] = (obs[i], nxt[i])
    assert buf.frames.shape == (3, 40, 5, 6)  # one frame per slot, not 2 x 4 per transition
    assert buf.padding == padding
    sample = buf.sample(2000)
    assert len(set(sample.action.tolist())) > 80  # the ring wrapped: old ones are gone
    assert sample.action.min() >= 3 * 150 - 130
    for i, a in enumerate(sample.action.tolist()):
        np.testing.assert_array_equal(sample.obs[i], given[a][0])
        np.testing.assert_array_equal(sample.next_obs[i], given[a][1])


def test_frame_dedup_matches_gymnasium_frame_stack_across_episodes():
    from gymnasium.wrappers import FrameStackObservation

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (3, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self.np_random.integers(0, 256, (3, 3), dtype=np.uint8), {}

        def step(self, action):
            self.t += 1
            obs = self.np_random.integers(0, 256, (3, 3), dtype=np.uint8)
            return obs, 0.0, self.t >= 5 and action == 1, self.t >= 7, {}

    env = FrameStackObservation(Frames(), 4)
    buf = ReplayBuffer(1000, (4, 3, 3), np.uint8, (), np.int64, 1, frame_stack=4)
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=0)
    given = {}
    for t in range(60):
        a = int(rng.integers(2))
        nxt, r, term, trunc, _ = env.step(a)
        buf.add([0], obs[None], np.array([t]), np.zeros(1, np.float32), np.array([term]),
                np.array([trunc]), nxt[None])
        given[t] = (obs, nxt)
        obs = env.reset()[0] if term or trunc else nxt
    sample = buf.sample(1000)
    assert sorted(set(sample.action.tolist())) == list(range(60))
    for i, a in enumerate(sample.action.tolist()):
        np.testing.assert_array_equal(sample.obs[i], given[a][0])
        np.testing.assert_array_equal(sample.next_obs[i], given[a][1])


def test_frame_dedup_refuses_a_stack_it_cannot_rebuild():
    buf = ReplayBuffer(100, (4, 2, 2), np.uint8, (), np.int64, 1, frame_stack=4)
    obs = np.arange(16, dtype=np.uint8).reshape(1, 4, 2, 2)  # four different frames at a reset
    with pytest.raises(EnvRuntimeError, match="padded neither with its first frame nor with zeros"):
        buf.add([0], obs, np.array([0]), np.zeros(1, np.float32), np.array([False]),
                np.array([False]), obs)


def test_replay_checkpoint_round_trip(tmp_path):
    buf = one_stream_buffer()
    buf.save(tmp_path / "replay.npz")
    other = ReplayBuffer(100, (1,), np.float32, (), np.int64, 1, n_step=3, gamma=0.5)
    other.load(tmp_path / "replay.npz")
    assert by_action(other.sample(400)) == by_action(buf.sample(400))


# ---------------------------------------------------------------- sum tree, priorities


@pytest.mark.parametrize("stratified", [False, True])
def test_sum_tree_samples_in_proportion_to_priorities(stratified):
    p = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0, 0.5])
    tree = SumTree(len(p))
    tree.set(np.arange(len(p)), p)
    assert tree.total == pytest.approx(p.sum())
    rng = np.random.default_rng(0)
    n = 200_000
    counts = np.bincount(np.concatenate([tree.sample(500, rng, stratified) for _ in range(n // 500)]),
                         minlength=len(p))
    expected = p / p.sum()
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert counts[4] == 0  # zero priority: never drawn
    # within 5 standard errors of the binomial proportion on every leaf
    assert np.all(np.abs(counts / n - expected) <= 5 * sigma + 1e-12), counts / n


def test_sum_tree_updates_propagate():
    tree = SumTree(5)
    tree.set([0, 1, 2, 3, 4], [1, 1, 1, 1, 1])
    tree.set([2], [6])
    assert tree.total == 10
    np.testing.assert_array_equal(tree.find(np.array([0.5, 1.5, 2.0, 7.9, 8.0, 9.9])), [0, 1, 2, 2, 3, 4])


def test_sum_tree_nodes_equal_their_childrens_sums_after_single_and_batch_updates():
    """Every inner node is exactly the sum of its two children after any mix of one-leaf
    updates (the replay's adds), batches with repeated leaves (priority updates) and empty
    ones; with repeats the last value wins."""
    rng = np.random.default_rng(3)
    tree = SumTree(1000)  # 1024 leaves: ten levels of parents
    for _ in range(300):
        n = int(rng.choice([0, 1, 1, 5, 64]))
        tree.set(rng.integers(0, 1000, n), rng.random(n) * 10)
    tree.set([7, 7, 900], [1.0, 2.5, 0.0])
    inner = np.arange(1, tree.leaf0)
    np.testing.assert_array_equal(tree.tree[inner], tree.tree[2 * inner] + tree.tree[2 * inner + 1])
    assert tree.get([7, 900]).tolist() == [2.5, 0.0]
    with pytest.raises(ValueError, match="finite and non-negative"):
        tree.set([3], [-1.0])


def test_prioritized_weights_and_priority_updates():
    buf = ReplayBuffer(10, (1,), np.float32, (), np.int64, 1, prioritized=True, alpha=1.0,
                       priority_eps=1e-9)
    for t in range(4):
        buf.add([0], np.array([[t]], np.float32), np.array([t]), np.zeros(1, np.float32),
                np.array([False]), np.array([False]), np.array([[t + 1]], np.float32))
    slots = np.arange(4)  # one stream: slot t holds step t
    buf.update_priorities(slots, np.array([1.0, 1.0, 2.0, 4.0]))
    s = buf.sample(4000, beta=0.5)
    freq = np.bincount(s.action, minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.125, 0.125, 0.25, 0.5], atol=0.03)
    # w_i = (N P(i))^-beta / max_j w_j with P = p / 8 over N = 4 transitions
    w = {0: (4 * 0.125) ** -0.5, 2: (4 * 0.25) ** -0.5, 3: (4 * 0.5) ** -0.5}
    for a, expected in w.items():
        assert s.weight[s.action == a] == pytest.approx(expected / w[0])


# ---------------------------------------------------------------- exploration, targets


def test_apex_and_linear_epsilons():
    assert apex_epsilon(0, 8) == pytest.approx(0.4)
    assert apex_epsilon(7, 8) == pytest.approx(0.4 ** 8)
    assert apex_epsilon(2, 5) == pytest.approx(0.4 ** (1 + 7 * 2 / 4))
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(500, 1.0, 0.1, 100) == pytest.approx(0.1)


def test_polyak_and_periodic_target_updates():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0), online.bias.fill_(2.0), target.weight.fill_(0.0), target.bias.fill_(0.0)
    polyak_update(target, online, 0.25)
    assert torch.allclose(target.weight, torch.full((1, 2), 0.25))
    assert torch.allclose(target.bias, torch.full((1,), 0.5))
    assert not target_update(target, online, 3, period=4, tau=1.0)
    assert torch.allclose(target.bias, torch.full((1,), 0.5))
    assert target_update(target, online, 8, period=4, tau=1.0)
    assert torch.equal(target.weight, online.weight)
