"""A PettingZoo tic-tac-toe whose observations carry no action mask (bad-input tests)."""

from pettingzoo.classic import tictactoe_v3
from pettingzoo.utils import BaseWrapper


class NoMask(BaseWrapper):
    def observe(self, agent):
        return super().observe(agent)["observation"]


def env(**kwargs):
    return NoMask(tictactoe_v3.env(**kwargs))
