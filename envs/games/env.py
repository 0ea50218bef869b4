"""A two-player game as a single-agent Gymnasium env: the agent plays one seat against a
uniformly random opponent. Used to probe spaces and for ``rlcore eval``; self-play trains on the
``Game`` itself.

Observations are the canonical planes of the player to move ([C, H, W] float32, the agent's
own stones first); ``info['action_mask']`` holds the legal moves. An illegal move ends the
episode with reward -1 (``info['illegal_move'] = True``). Rewards: +1 win, -1 loss, 0 draw.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class GameEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, game: str = "tictactoe", seat: int = 0, render_mode: str | None = None):
        from rlcore.envs.games import make_game

        if seat not in (0, 1) or isinstance(seat, bool):
            from rlcore.errors import IncompatibleEnvError

            raise IncompatibleEnvError(f"env.kwargs.seat must be 0 (the agent moves first) or 1, "
                                       f"got {seat!r}")
        self.game_name, self.seat, self.render_mode = game, seat, render_mode
        self.game = make_game(game)
        self.observation_space = gym.spaces.Box(0.0, 1.0, self.game.obs_shape, np.float32)
        self.action_space = gym.spaces.Discrete(self.game.num_actions)

    def _opponent_moves(self) -> None:
        while not self.game.is_terminal() and self.game.current_player() != self.seat:
            self.game.apply(int(self.np_random.choice(self.game.legal_actions())))

    def _info(self) -> dict:
        return {"action_mask": self.game.legal_mask()}

    def reset(self, *, seed=None, options=None):
        from rlcore.envs.games import make_game

        super().reset(seed=seed)
        self.game = make_game(self.game_name)
        self._opponent_moves()
        return self.game.observation(), self._info()

    def step(self, action):
        a = int(action)
        if not self.game.legal_mask()[a]:
            return self.game.observation(), -1.0, True, False, {**self._info(), "illegal_move": True}
        self.game.apply(a)
        self._opponent_moves()
        done = self.game.is_terminal()
        reward = self.game.terminal_value(self.seat) if done else 0.0
        return self.game.observation(), float(reward), done, False, self._info()

    def render(self):
        return self.game.render()
