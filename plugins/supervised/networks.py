"""supervised's modules: the same policy network an RL plugin would train (logits for a
Discrete action, a mean for a Box action), without a value head."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlcore.networks.blocks import CategoricalPolicy, NatureCNN, is_image, mlp
from rlcore.networks.export import actor_critic_spec
from rlcore.types import ActionOut


class Predictor(nn.Module):
    """obs -> logits [B, n_actions] (discrete) or prediction [B, *action_shape] (box)."""

    def __init__(self, spaces, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.discrete = spaces.action_kind == "discrete"
        self.action_shape = tuple(spaces.action_shape)
        out = spaces.num_actions if self.discrete else int(np.prod(self.action_shape))
        if is_image(spaces):
            self.torso = NatureCNN(spaces.obs_shape[0])
            self.pi = mlp([self.torso.out_dim, out], activation, out_gain=0.01)
        else:
            self.torso = nn.Flatten() if len(spaces.obs_shape) > 1 else nn.Identity()
            self.pi = mlp([int(np.prod(spaces.obs_shape)), *hidden, out], activation, out_gain=0.01)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(self.torso(obs))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.logits(obs)
        return out if self.discrete else out.reshape(len(out), *self.action_shape)


class PredictionPolicy:
    """Box actions: the prediction itself (maximum likelihood has nothing to explore), the env
    stepped with it clipped to the action bounds (an early, untrained prediction may lie
    outside them; the fragment keeps the prediction)."""

    def __init__(self, net: Predictor, spaces):
        self.net = net
        self.low, self.high = spaces.action_bounds()

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        with torch.inference_mode():
            a = self.net(torch.as_tensor(obs)).numpy()
        return ActionOut(a, env_action=np.clip(a, self.low, self.high).astype(np.float32))


def make_modules(cfg, spaces) -> dict:
    return {"model": Predictor(spaces, tuple(cfg.hidden_sizes), cfg.activation)}


def make_policy(modules: dict, cfg, spaces, explore: bool):
    net = modules["model"]
    return CategoricalPolicy(net, explore) if net.discrete else PredictionPolicy(net, spaces)


def numpy_policy(modules: dict, cfg, spaces):
    """Discrete predictions: the categorical policy in numpy; Box ones stay in torch."""
    net = modules["model"]
    return actor_critic_spec(net, "model") if net.discrete else None
