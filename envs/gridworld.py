"""Gridworlds with an exact model, so value iteration gives the ground truth a learner is tested
against (README, "Bandits and gridworlds").

``rlcore/GridWorld-v0`` (deterministic) and ``rlcore/SlipperyGridWorld-v0`` (``slip=2/3``, i.e.
FrozenLake's dynamics: the intended move or either perpendicular one, each with probability 1/3).

Layout (kwarg ``layout``): rows joined by ``/`` or newlines, FrozenLake's letters plus walls:
``S`` start, ``F`` or ``.`` free, ``H`` hole (terminal, ``hole_reward``), ``G`` goal (terminal,
``goal_reward``), ``#`` wall (moving into it or off the grid leaves the agent in place).
Actions are FrozenLake's: 0 left, 1 down, 2 right, 3 up. Every step also pays ``step_reward``
(e.g. -0.01 as a step cost). Episodes are truncated at ``max_episode_steps`` (100).
``goal_rewards`` gives each ``G`` its own reward, in reading order (default: ``goal_reward``
for every one): the same maze with a second goal worth something, or nothing, is a pair of
tasks with the same dynamics and different rewards. ``continuing=True`` makes the task
continuing: entering a hole or goal pays its reward and puts the agent back on ``S`` without
ending the episode (the average-reward setting of the tilted-matrix solution); ``P`` then sends
those moves to the start, no state is terminal, and ``.reachable()`` marks the states the agent
can be in (the recurrent ones an average-reward solver is given).

Observations (kwarg ``obs_mode``): ``onehot`` (default; float32 [num_states], for neural plugins),
``coords`` (float32 [row, col] scaled to [0, 1]) or ``index`` (``Discrete(num_states)``, for the
``tabular`` plugin). The exact model is ``env.unwrapped.P`` [S, A, S'], ``.R`` [S, A] (expected
reward of taking a in s), ``.terminal`` [S] bool and ``.start_state``; terminal states' rows are
self-loops with zero reward.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlcore.plugin import EnvPlugin

FROZEN_LAKE_4X4 = "SFFF/FHFH/FFFH/HFFG"
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up
OBS_MODES = ("onehot", "coords", "index")


def parse_layout(layout: str) -> np.ndarray:
    rows = [r.strip() for r in layout.replace("\n", "/").split("/") if r.strip()]
    grid = np.array([list(r.replace(".", "F")) for r in rows]) if rows else np.zeros((0, 0), str)
    if grid.ndim != 2 or len({len(r) for r in rows}) != 1:
        raise ValueError(f"gridworld layout {layout!r}: rows must be non-empty and of equal length")
    bad = set(grid.ravel()) - set("SFHG#")
    if bad:
        raise ValueError(f"gridworld layout {layout!r}: unknown cells {sorted(bad)}; use S F . H G #")
    if (grid == "S").sum() != 1:
        raise ValueError(f"gridworld layout {layout!r}: needs exactly one start cell 'S'")
    return grid


def cell_rewards(grid: np.ndarray, goal_reward: float, hole_reward: float,
                 goal_rewards=None) -> np.ndarray:
    """The reward of entering each cell (before the step reward): a goal's, a hole's or 0."""
    goals = np.flatnonzero(grid.ravel() == "G")
    if goal_rewards is None:
        goal_rewards = [goal_reward] * len(goals)
    if len(goal_rewards) != len(goals):
        raise ValueError(f"gridworld goal_rewards={list(goal_rewards)}: the layout has "
                         f"{len(goals)} goal cell(s) 'G'; give one reward per goal, in reading "
                         "order")
    reward = np.where(grid.ravel() == "H", hole_reward, 0.0)
    reward[goals] = np.asarray(goal_rewards, np.float64)
    return reward


def grid_model(grid: np.ndarray, slip: float, goal_reward: float, hole_reward: float,
               step_reward: float, goal_rewards=None):
    """(P [S, A, S'], R [S, A], terminal [S]) over all cells (walls are unreachable states)."""
    rows, cols = grid.shape
    S, A = rows * cols, len(MOVES)
    terminal = np.isin(grid.ravel(), ("H", "G"))
    cell_reward = cell_rewards(grid, goal_reward, hole_reward, goal_rewards)
    P = np.zeros((S, A, S))
    for s in range(S):
        if terminal[s] or grid.flat[s] == "#":
            P[s, :, s] = 1.0
            continue
        r, c = divmod(s, cols)
        for a in range(A):
            for move, p in ((a, 1.0 - slip), ((a - 1) % A, slip / 2), ((a + 1) % A, slip / 2)):
                if p == 0.0:
                    continue
                nr, nc = r + MOVES[move][0], c + MOVES[move][1]
                inside = 0 <= nr < rows and 0 <= nc < cols and grid[nr, nc] != "#"
                P[s, a, nr * cols + nc if inside else s] += p
    R = P @ cell_reward + step_reward
    R[terminal] = 0.0
    return P, R, terminal


def continuing_model(grid: np.ndarray, P: np.ndarray, R: np.ndarray, terminal: np.ndarray):
    """The episodic model with every move into a hole or goal landing on the start instead
    (same rewards), and no terminal state."""
    start = int(np.flatnonzero(grid.ravel() == "S")[0])
    P, live = P.copy(), ~terminal
    P[live, :, start] += P[live][:, :, terminal].sum(-1)
    P[np.ix_(live, np.arange(P.shape[1]), np.flatnonzero(terminal))] = 0.0
    return P, R, np.zeros_like(terminal)


class GridWorld(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, layout: str = FROZEN_LAKE_4X4, slip: float = 0.0, goal_reward: float = 1.0,
                 hole_reward: float = 0.0, step_reward: float = 0.0, obs_mode: str = "onehot",
                 render_mode: str | None = None, goal_rewards=None, continuing: bool = False):
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"gridworld slip={slip}: must be a probability in [0, 1]")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"gridworld obs_mode={obs_mode!r}: use one of {', '.join(OBS_MODES)}")
        self.grid = parse_layout(layout)
        self.continuing = bool(continuing)
        episodic = grid_model(self.grid, slip, goal_reward, hole_reward, step_reward,
                              goal_rewards)
        self.P, self.R, self.terminal = (continuing_model(self.grid, *episodic) if continuing
                                         else episodic)
        self.num_states, self.num_actions = self.R.shape
        self.start_state = int(np.flatnonzero(self.grid.ravel() == "S")[0])
        self.obs_mode, self.render_mode = obs_mode, render_mode
        # sampled from the episodic model: a continuing step lands on the hole or goal, is paid
        # for it, then moves to the start
        self._cum = np.cumsum(episodic[0], axis=-1)
        self._ends = episodic[2]  # holes and goals
        self._reward_to = cell_rewards(self.grid, goal_reward, hole_reward,
                                       goal_rewards) + step_reward
        self.action_space = gym.spaces.Discrete(self.num_actions)
        if obs_mode == "index":
            self.observation_space = gym.spaces.Discrete(self.num_states)
        elif obs_mode == "onehot":
            self.observation_space = gym.spaces.Box(0.0, 1.0, (self.num_states,), np.float32)
        else:
            self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.state = self.start_state

    def _obs(self):
        if self.obs_mode == "index":
            return int(self.state)
        if self.obs_mode == "onehot":
            obs = np.zeros(self.num_states, np.float32)
            obs[self.state] = 1.0
            return obs
        rows, cols = self.grid.shape
        r, c = divmod(self.state, cols)
        return np.array([r / max(rows - 1, 1), c / max(cols - 1, 1)], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.start_state
        return self._obs(), {"state": self.state}

    def step(self, action):
        a = int(action)
        nxt = int(np.searchsorted(self._cum[self.state, a], self.np_random.random(), side="right"))
        self.state = min(nxt, self.num_states - 1)
        reward, terminated = float(self._reward_to[self.state]), bool(self._ends[self.state])
        if terminated and self.continuing:
            self.state, terminated = self.start_state, False
        return self._obs(), reward, terminated, False, {"state": self.state}

    def reachable(self) -> np.ndarray:
        """[S] bool: the states reachable from the start under some actions (the start too)."""
        seen = np.zeros(self.num_states, bool)
        seen[self.start_state] = True
        frontier = seen.copy()
        while frontier.any():
            nxt = (self.P[frontier] > 0).any(axis=(0, 1)) & ~seen
            seen |= nxt
            frontier = nxt
        return seen

    def render(self):
        cells = self.grid.copy()
        cells.flat[self.state] = "@"
        return "\n".join("".join(row) for row in cells)


def register() -> None:
    for env_id, slip in (("rlcore/GridWorld-v0", 0.0), ("rlcore/SlipperyGridWorld-v0", 2.0 / 3.0)):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=GridWorld, kwargs={"slip": slip},
                         max_episode_steps=100)


PLUGIN = EnvPlugin(
    name="gridworld",
    description="Deterministic and slippery gridworlds with their exact model (P, R, terminal)",
    register=register,
    ids=("rlcore/GridWorld-v0", "rlcore/SlipperyGridWorld-v0"),
)
