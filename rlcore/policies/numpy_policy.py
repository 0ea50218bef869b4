"""Torch-free inference policies: what a rollout actor builds from a plugin's
``NumpyPolicySpec`` instead of the plugin's torch modules (``AlgorithmPlugin.numpy_policy``).

The spec is plain data written on the driver (``rlcore.networks.export`` for the built-in
networks): a factory named by ``"module:attr"``, the numpy nets over the published weights, and
options. The actor imports the factory's module (which must not import torch), calls
``factory(spec, cfg, spaces, explore)`` and loads every weights version it receives with
``load_weights``. The factories below cover the built-in policies; each samples with the class
the torch policy samples with (``rlcore.policies.sampling``), so both draw the same numbers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from rlcore.errors import PluginError
from rlcore.policies.numpy_nets import NetSpec, NumpyNet, NumpyParam, log_softmax
from rlcore.policies.sampling import (BoltzmannPolicy, Categorical, DiagonalGaussian,
                                      EpsilonGreedyPolicy, NoisyDeterministicPolicy,
                                      SquashedGaussianPolicy)


@dataclass(frozen=True)
class NumpyPolicySpec:
    """A plugin's inference policy as data an actor can build without torch."""

    factory: str  # "module:attr" of factory(spec, cfg, spaces, explore) -> NumpyPolicy
    nets: dict[str, NetSpec]
    options: dict = field(default_factory=dict)


class NumpyPolicy:
    """A sampling policy (``act``, and ``set_schedule`` when it has one) over numpy nets, and
    the loader of their weights."""

    def __init__(self, sampler, parts: list):
        self.sampler, self.parts = sampler, parts
        self.loaded = False

    def load_weights(self, weights: dict) -> None:
        """Bind the nets to a published ``{module: {param: array}}`` (no copies)."""
        for part in self.parts:
            part.load(weights)
        self.loaded = True

    def act(self, obs: np.ndarray, rng: np.random.Generator):
        return self.sampler.act(obs, rng)

    def __getattr__(self, name: str):  # set_schedule, epsilon, ...: the sampler's
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


def build(spec: NumpyPolicySpec, cfg, spaces, explore: bool) -> NumpyPolicy:
    """The policy ``spec`` describes (its weights still to be loaded)."""
    module, _, attr = spec.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"numpy policy factory '{spec.factory}' cannot be imported ({exc}); "
                          "name it as 'module:attr' of a module the actors can import") from None
    policy = factory(spec, cfg, spaces, explore)
    if not hasattr(policy, "load_weights") or not hasattr(policy, "act"):
        raise PluginError(f"numpy policy factory '{spec.factory}' returned {type(policy).__name__}"
                          ", which lacks act(obs, rng) or load_weights(weights); wrap the "
                          "sampler in rlcore.policies.numpy_policy.NumpyPolicy")
    return policy


def actor_critic(spec: NumpyPolicySpec, cfg, spaces, explore: bool) -> NumpyPolicy:
    """pg/ppo/trpo: categorical over the logits of net ``pi``, or (option ``log_std``: the
    (module, parameter) of the state-independent log std) a diagonal Gaussian around its
    output, squashed by tanh with option ``squash``."""
    pi = NumpyNet(spec.nets["pi"])
    if spec.options.get("log_std") is None:
        return NumpyPolicy(Categorical(lambda obs: log_softmax(pi(obs)), explore), [pi])
    log_std = NumpyParam(*spec.options["log_std"])
    low, high = spaces.action_bounds()
    sampler = DiagonalGaussian(pi, lambda: log_std.value, spaces.action_shape, low, high,
                               bool(spec.options.get("squash", False)), explore)
    return NumpyPolicy(sampler, [pi, log_std])


class QValues:
    """Q(s, .) [N, A, K] from nets ``torso`` and ``head`` (and ``value``: dueling, V + A -
    mean_a A), reduced to [N, A] by option ``values``: ``first`` (DQN), ``mean`` (QR-DQN's
    quantiles) or ``expectation`` (C51: softmax over the atoms of option ``support``)."""

    def __init__(self, spec: NumpyPolicySpec):
        self.torso, self.head = NumpyNet(spec.nets["torso"]), NumpyNet(spec.nets["head"])
        self.value = NumpyNet(spec.nets["value"]) if "value" in spec.nets else None
        self.num_actions, self.num_outputs = spec.options["num_actions"], spec.options["num_outputs"]
        self.reduce = spec.options.get("values", "first")
        if self.reduce not in ("first", "mean", "expectation"):
            raise PluginError(f"numpy Q policy: option values={self.reduce!r}; use first, mean "
                              "or expectation")
        self.support = np.asarray(spec.options.get("support", ()), np.float32)
        self.parts = [n for n in (self.torso, self.head, self.value) if n is not None]

    def q(self, obs: np.ndarray) -> np.ndarray:
        h = self.torso(obs)
        q = self.head(h).reshape(len(obs), self.num_actions, self.num_outputs)
        if self.value is not None:
            q = self.value(h)[:, None, :] + q - q.mean(axis=1, keepdims=True)
        return q

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        q = self.q(obs)
        if self.reduce == "first":
            return q[..., 0]
        if self.reduce == "mean":
            return q.mean(-1)
        p = np.exp(q - q.max(-1, keepdims=True))
        return (p * self.support).sum(-1) / p.sum(-1)


def q_values(spec: NumpyPolicySpec, cfg, spaces, explore: bool) -> NumpyPolicy:
    """dqn/c51/qrdqn: epsilon-greedy on ``QValues``, or (option ``boltzmann``) dqn's Boltzmann
    exploration with ``cfg.soft_beta``."""
    values = QValues(spec)
    cls = BoltzmannPolicy if spec.options.get("boltzmann") else EpsilonGreedyPolicy
    return NumpyPolicy(cls(values, values.num_actions, cfg, explore), values.parts)


def deterministic(spec: NumpyPolicySpec, cfg, spaces, explore: bool) -> NumpyPolicy:
    """ddpg/td3: mu(s) = tanh(net ``mu``) with Gaussian exploration noise."""
    mu_net, shape = NumpyNet(spec.nets["mu"]), tuple(spec.options["action_shape"])

    def mu(obs: np.ndarray) -> np.ndarray:
        return np.tanh(mu_net(obs)).reshape(len(obs), *shape)

    return NumpyPolicy(NoisyDeterministicPolicy(mu, shape, cfg, spaces, explore), [mu_net])


def squashed_gaussian(spec: NumpyPolicySpec, cfg, spaces, explore: bool) -> NumpyPolicy:
    """sac: net ``net`` gives (mean, log std) as the two halves of its output, the log std
    clamped to options ``log_std_min`` / ``log_std_max``; a = tanh(mean + std * noise)."""
    net = NumpyNet(spec.nets["net"])
    lo, hi = spec.options["log_std_min"], spec.options["log_std_max"]

    def mean_log_std(obs: np.ndarray):
        mean, log_std = np.split(net(obs), 2, axis=-1)
        return mean, np.clip(log_std, lo, hi)

    sampler = SquashedGaussianPolicy(mean_log_std, spec.options["action_shape"], cfg, spaces,
                                     explore)
    return NumpyPolicy(sampler, [net])
