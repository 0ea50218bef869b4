"""Numpy policy specs written from torch modules, on the driver (where torch is): the ops of
each network, in the order its ``forward`` runs them, over the names of its ``state_dict``
(``rlcore.policies.numpy_nets``). Rollout actors evaluate them without importing torch.

``numpy_policy_of`` asks a plugin for its spec (``AlgorithmPlugin.numpy_policy``); the
functions below write the specs of the built-in networks, and third-party plugins may reuse
them (or ``net_spec``) for their own.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from rlcore import seeding
from rlcore.errors import PluginError
from rlcore.networks.blocks import ActorCritic, GaussianActorCritic, NatureCNN
from rlcore.networks.value import DeterministicActor, QNetwork
from rlcore.policies.numpy_nets import NetSpec
from rlcore.policies.numpy_policy import NumpyPolicySpec

FACTORIES = "rlcore.policies.numpy_policy"

# Image policies run numpy too: the Nature CNN on 4 Atari frames [4, 4, 84, 84] (one half of
# an overlapped 8-env worker) takes 1.11 ms in numpy (im2col convolutions channels-last, the
# dense layer in column blocks) against 1.18 ms in torch on one thread, 2.17 against 1.93 ms
# on 8 frames (2 vCPU AMD EPYC, quiet). An overlapped 8-env Pong worker collects within 5 % of
# torch's rate and saves torch's start-up and memory. ``rollout.inference: torch`` keeps torch
# in the actors.


def ops_of(module: nn.Module, path: str = "") -> list[tuple]:
    """The ops of ``module`` (parameter names prefixed by ``path``, e.g. ``"pi."``); a
    ``PluginError`` names any layer without a numpy counterpart."""
    if isinstance(module, NatureCNN):  # forward: net(x.float() / 255)
        return [("float32",), ("div", 255.0), *ops_of(module.net, f"{path}net.")]
    if isinstance(module, nn.Sequential):
        return [op for i, layer in enumerate(module) for op in ops_of(layer, f"{path}{i}.")]
    name = path[:-1]
    if isinstance(module, nn.Linear):
        return [("linear", name)]
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size, module.stride
        plain = (module.padding in ((0, 0), "valid") and module.dilation == (1, 1)
                 and module.groups == 1 and k[0] == k[1] and s[0] == s[1])
        if plain:
            return [("conv2d", name, s[0])]
    if isinstance(module, (nn.ReLU, nn.Tanh)):
        return [("relu",) if isinstance(module, nn.ReLU) else ("tanh",)]
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return [("flatten",)]
    if isinstance(module, nn.Identity):
        return []
    raise PluginError(f"layer '{name or type(module).__name__}' ({module}) has no numpy op; "
                      "numpy nets take Linear, square unpadded Conv2d, ReLU, Tanh, Flatten and "
                      "the Nature CNN (or leave numpy_policy unset: actors then run torch)")


def net_spec(module_name: str, *parts: tuple[nn.Module, str], cast: bool = False) -> NetSpec:
    """The ``NetSpec`` of (module, path) parts run one after the other, within the published
    module ``module_name``; ``cast``: the torch forward starts with ``obs.float()``."""
    ops = [("float32",)] if cast else []
    for module, path in parts:
        ops += ops_of(module, path)
    return NetSpec(module_name, tuple(ops))


def numpy_policy_of(plugin, cfg, spaces) -> NumpyPolicySpec | None:
    """The plugin's numpy policy spec (None: it has none, its actors run torch), written from
    modules built here for their structure only (torch's global generator is left as it was)."""
    if plugin.numpy_policy is None:
        return None
    with seeding.seeded_torch(0):
        modules = plugin.make_modules(cfg, spaces)
    return plugin.numpy_policy(modules, cfg, spaces)


def actor_critic_spec(net: ActorCritic, module: str = "ac") -> NumpyPolicySpec:
    """pg/ppo/trpo (and any ``ActorCritic``): logits, or a Gaussian's mean, from the torso and
    the policy MLP."""
    pi = net_spec(module, (net.torso, "torso."), (net.pi, "pi."))
    options = {}
    if isinstance(net, GaussianActorCritic):
        options = {"log_std": (module, "log_std"), "squash": bool(net.squash)}
    return NumpyPolicySpec(f"{FACTORIES}:actor_critic", {"pi": pi}, options)


def q_network_spec(net: QNetwork, module: str = "q", values: str = "first",
                   support: np.ndarray | None = None,
                   boltzmann: bool = False) -> NumpyPolicySpec:
    """dqn/c51/qrdqn: the Q-network's torso, head and dueling value stream (``values``: how
    the outputs per action reduce to one value, see ``rlcore.policies.numpy_policy.QValues``)."""
    nets = {"torso": net_spec(module, (net.torso, "torso."), cast=True),
            "head": net_spec(module, (net.head, "head."))}
    if net.value is not None:
        nets["value"] = net_spec(module, (net.value, "value."))
    options = {"num_actions": net.num_actions, "num_outputs": net.num_outputs, "values": values,
               "boltzmann": boltzmann}
    if support is not None:
        options["support"] = [float(z) for z in support]
    return NumpyPolicySpec(f"{FACTORIES}:q_values", nets, options)


def deterministic_actor_spec(actor: DeterministicActor, module: str = "actor") -> NumpyPolicySpec:
    """ddpg/td3: tanh of the actor's network."""
    return NumpyPolicySpec(f"{FACTORIES}:deterministic",
                           {"mu": net_spec(module, (actor.net, "net."), cast=True)},
                           {"action_shape": tuple(actor.action_shape)})
