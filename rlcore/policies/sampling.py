"""How the built-in policies turn network outputs into actions, apart from the networks: each
takes numpy forward functions, so the torch policies (``make_policy``) and the numpy ones
(``rlcore.policies.numpy_policy``) run the very same sampling code and draw the very same
random numbers from the worker's numpy generator.

Why numpy generators: actions then depend only on the seed, never on how many other users
share torch's global generator in the process (torch.distributions has no per-call
generator)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from rlcore.ops.actions import boltzmann_sample, rescale_coefficients
from rlcore.regimes.transition_config import EpsilonGreedyConfig, exploration_epsilon
from rlcore.types import ActionOut

LOG_2PI = math.log(2.0 * math.pi)
Forward = Callable[[np.ndarray], np.ndarray]


def tanh_log_det_np(u: np.ndarray) -> np.ndarray:
    """log(1 - tanh(u)^2) computed stably as 2 (log 2 - u - softplus(-2u))."""
    return 2.0 * (math.log(2.0) - u - np.logaddexp(0.0, -2.0 * u))


class Categorical:
    """A categorical policy over ``log_probs(obs)`` [N, A]: Gumbel-max sampling (exact for a
    categorical), argmax without ``explore``."""

    def __init__(self, log_probs: Forward, explore: bool):
        self.log_probs, self.explore = log_probs, explore
        self._rows = np.arange(0)

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        logp = self.log_probs(obs)
        if self.explore:
            action = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
        else:
            action = np.argmax(logp, axis=-1)
        if len(self._rows) != len(action):
            self._rows = np.arange(len(action))
        return ActionOut(action, logp[self._rows, action])


class DiagonalGaussian:
    """A diagonal Gaussian with mean ``mean(obs)`` [N, d] and a state-independent ``log_std()``
    [d]. Samples u = mean + std * noise (the mean without ``explore``); ``ActionOut.action`` is
    u (float32, [N, *action_shape]), its log-density (of tanh(u) with ``squash``) and the env's
    action: u squashed (or clipped), rescaled from [-1, 1] to [low, high]."""

    def __init__(self, mean: Forward, log_std: Callable[[], np.ndarray], action_shape, low, high,
                 squash: bool, explore: bool):
        self.mean, self.log_std, self.explore = mean, log_std, explore
        self.action_shape, self.squash = tuple(action_shape), squash
        self.low = np.asarray(low, np.float32).reshape(self.action_shape)
        self.high = np.asarray(high, np.float32).reshape(self.action_shape)
        # computed once: rescaling is then one multiply-add on the rollout's hot path
        self._scale, self._offset = rescale_coefficients(self.low, self.high)

    def env_action(self, u: np.ndarray) -> np.ndarray:
        """The action the env steps with for stored actions u: squashed or clipped, then rescaled."""
        a = np.tanh(u) if self.squash else u
        return np.clip(a * self._scale + self._offset, self.low, self.high).astype(np.float32)

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        mean = self.mean(obs)
        log_std = self.log_std()
        noise = rng.standard_normal(mean.shape) if self.explore else np.zeros_like(mean)
        u = (mean + np.exp(log_std) * noise).astype(np.float32)
        log_prob = (-0.5 * noise ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)
        if self.squash:
            log_prob -= tanh_log_det_np(u.astype(np.float64)).sum(-1)
        u = u.reshape(len(u), *self.action_shape)
        return ActionOut(u, log_prob.astype(np.float32), self.env_action(u))


def acting_network(modules: dict, cfg, explore: bool):
    """The Q-network a value-based plugin's policy acts on: ``modules["q"]``, or for an
    evaluation policy with ``algo.eval_network: target`` the target copy ``modules["target_q"]``."""
    if not explore and getattr(cfg, "eval_network", "online") == "target":
        return modules["target_q"]
    return modules["q"]


class EpsilonGreedyPolicy:
    """The actors' policy of value-based plugins: argmax of ``values(obs)`` (numpy [N, A]),
    a uniformly random action with probability epsilon. The rollout loop calls
    ``set_schedule(env_steps, actor_id, num_actors)`` before each fragment."""

    def __init__(self, values: Forward, num_actions: int, cfg: EpsilonGreedyConfig, explore: bool):
        self.values, self.num_actions, self.cfg = values, num_actions, cfg
        self.explore = explore
        self.epsilon = cfg.eps_start if explore else cfg.eval_eps

    def set_schedule(self, env_steps: int, actor_id: int, num_actors: int) -> None:
        if self.explore:
            self.epsilon = exploration_epsilon(self.cfg, env_steps, actor_id, num_actors)

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if self.epsilon <= 0:
            return ActionOut(np.argmax(self.values(obs), axis=-1))
        n = len(obs)
        explore = rng.random(n) < self.epsilon
        action = rng.integers(0, self.num_actions, n)
        if not explore.all():  # the network runs only on the rows that act greedily
            rows = np.flatnonzero(~explore)
            action[rows] = np.argmax(self.values(obs[rows]), axis=-1)
        return ActionOut(action)


class BoltzmannPolicy(EpsilonGreedyPolicy):
    """Soft Q-learning's behaviour: a uniformly random action with probability epsilon (the
    same schedule as epsilon-greedy), else a sample of pi(a|s) proportional to exp(beta Q(s, a));
    greedy when evaluating."""

    def __init__(self, values: Forward, num_actions: int, cfg, explore: bool):
        super().__init__(values, num_actions, cfg, explore)
        self.beta = cfg.soft_beta

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if not self.explore:
            return super().act(obs, rng)
        n = len(obs)
        action = rng.integers(0, self.num_actions, n)
        rows = np.flatnonzero(rng.random(n) >= self.epsilon)
        if len(rows):
            action[rows] = boltzmann_sample(self.values(obs[rows]), self.beta, rng)
        return ActionOut(action)


class RandomStartPolicy:
    """What the Box-action behaviours of DDPG/TD3 and SAC share: uniformly random actions in
    [-1, 1] for the first ``cfg.random_steps`` env steps when exploring, then the policy's own;
    the env steps with the action rescaled to its bounds."""

    def __init__(self, forward: Callable, action_shape, cfg, spaces, explore: bool):
        self.forward, self.action_shape = forward, tuple(action_shape)
        self.cfg, self.spaces, self.explore = cfg, spaces, explore
        self.random = explore and cfg.random_steps > 0

    def set_schedule(self, env_steps: int, actor_id: int, num_actors: int) -> None:
        self.random = self.explore and env_steps < self.cfg.random_steps

    def out(self, a: np.ndarray) -> ActionOut:
        return ActionOut(a, env_action=self.spaces.to_env_action(a))


class NoisyDeterministicPolicy(RandomStartPolicy):
    """DDPG/TD3's behaviour: mu(s) (``forward(obs)`` in [-1, 1], [N, *action_shape]) plus
    N(0, exploration_noise^2), clipped to [-1, 1]."""

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        if self.random:
            a = rng.uniform(-1.0, 1.0, (len(obs), *self.action_shape))
        else:
            a = self.forward(obs)
            if self.explore and self.cfg.exploration_noise > 0:
                a = a + self.cfg.exploration_noise * rng.standard_normal(a.shape)
        return self.out(np.clip(a, -1.0, 1.0).astype(np.float32))


class SquashedGaussianPolicy(RandomStartPolicy):
    """SAC's behaviour: a = tanh(mu + sigma eps) from ``forward(obs)`` -> (mu, log sigma), both
    [N, d]; evaluation takes tanh(mu)."""

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut:
        shape = (len(obs), *self.action_shape)
        if self.random:
            a = rng.uniform(-1.0, 1.0, shape)
        else:
            mean, log_std = self.forward(obs)
            std = np.exp(log_std)
            u = mean + std * rng.standard_normal(mean.shape) if self.explore else mean
            a = np.tanh(u).reshape(shape)
        return self.out(np.asarray(a, np.float32))
