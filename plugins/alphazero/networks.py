"""f(s) = (p, v): a residual CNN with batch norm (Kaplan's notes §8.6), policy logits over all
actions and a value in [-1, 1] from the view of the player to move."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class AlphaZeroNet(nn.Module):
    def __init__(self, obs_shape: tuple[int, int, int], num_actions: int, channels: int = 32,
                 blocks: int = 2, value_hidden: int = 32):
        super().__init__()
        c_in, h, w = obs_shape
        self.stem = nn.Sequential(nn.Conv2d(c_in, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.trunk = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.policy_head = nn.Sequential(nn.Conv2d(channels, 2, 1, bias=False), nn.BatchNorm2d(2),
                                         nn.ReLU(), nn.Flatten(), nn.Linear(2 * h * w, num_actions))
        self.value_head = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=False), nn.BatchNorm2d(1),
                                        nn.ReLU(), nn.Flatten(), nn.Linear(h * w, value_hidden),
                                        nn.ReLU(), nn.Linear(value_hidden, 1), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(self.stem(obs))
        return self.policy_head(x), self.value_head(x).squeeze(-1)


def make_modules(cfg, spaces) -> dict:
    if len(spaces.obs_shape) != 3:
        from rlcore.errors import IncompatibleEnvError

        raise IncompatibleEnvError(f"alphazero needs board observations [C, H, W]; the env has "
                                   f"shape {spaces.obs_shape}")
    return {"net": AlphaZeroNet(tuple(spaces.obs_shape), spaces.num_actions, cfg.channels,
                                cfg.blocks, cfg.value_hidden)}


def masked_log_softmax(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.masked_fill(~legal, -1e9), dim=-1)


class NetworkEvaluator:
    """The search's ``evaluate(obs, legal) -> (priors, values)`` for a network in eval mode, with
    a cache of recent positions (keyed by the observation bytes; cleared on new weights)."""

    def __init__(self, net: nn.Module, cache_size: int = 0):
        self.net, self.cache_size = net.eval(), cache_size
        self.cache: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def clear(self) -> None:
        self.cache.clear()

    @torch.no_grad()
    def _forward(self, obs: np.ndarray, legal: np.ndarray):
        logits, value = self.net(torch.from_numpy(obs))
        priors = torch.softmax(logits.masked_fill(~torch.from_numpy(legal), -1e9), dim=-1)
        return priors.numpy(), value.numpy()

    def __call__(self, obs: np.ndarray, legal: np.ndarray):
        obs = np.ascontiguousarray(obs, np.float32)
        if not self.cache_size:
            return self._forward(obs, legal)
        keys = [o.tobytes() for o in obs]
        priors = np.zeros(legal.shape, np.float32)
        values = np.zeros(len(obs), np.float32)
        todo = []
        for i, k in enumerate(keys):
            hit = self.cache.get(k)
            if hit is None:
                todo.append(i)
            else:
                priors[i], values[i] = hit
        self.hits += len(obs) - len(todo)
        self.misses += len(todo)
        if todo:
            p, v = self._forward(obs[todo], legal[todo])
            priors[todo], values[todo] = p, v
            for j, i in enumerate(todo):
                self.cache[keys[i]] = (p[j], v[j])
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return priors, values


class GreedyPolicy:
    """The raw policy network as an rlcore ``Policy`` (no search), for ``rlcore eval`` on the
    single-agent game envs: the most likely legal move (or a sample when exploring). Legal moves
    are read off the observation for the native games."""

    def __init__(self, net: nn.Module, explore: bool):
        self.net, self.explore = net.eval(), explore

    @torch.no_grad()
    def act(self, obs: np.ndarray, rng: np.random.Generator):
        from rlcore.types import ActionOut

        from rlcore.envs.games import legal_from_observation

        obs = np.asarray(obs, np.float32)
        logits, _ = self.net(torch.as_tensor(obs))
        legal = legal_from_observation(obs)
        if legal is not None:
            logits = logits.masked_fill(~torch.as_tensor(legal), -1e9)
        if self.explore:
            p = torch.softmax(logits, -1).numpy().astype(np.float64)
            action = np.array([rng.choice(len(row), p=row / row.sum()) for row in p])
        else:
            action = logits.argmax(-1).numpy()
        return ActionOut(action=action.astype(np.int64))


def make_policy(modules: dict, cfg, spaces, explore: bool):
    return GreedyPolicy(modules["net"], explore)
