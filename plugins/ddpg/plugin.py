"""ddpg and td3: deterministic policy gradients with replay, Q critics and Polyak targets."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.ddpg.config import DDPGConfig, TD3Config
from rlcore.plugins.ddpg.loss import (after_update, init_state, loss, optimizer_groups,
                                      prepare_batch, targets)
from rlcore.plugins.ddpg.networks import make_modules, make_policy, numpy_policy

_DEFAULTS = {"lr": 1e-3, "max_grad_norm": None, "num_epochs": 1, "minibatch_size": 0}

DDPG = AlgorithmPlugin(
    name="ddpg",
    description="DDPG: deterministic actor, Q critic, Gaussian exploration noise, Polyak targets",
    config_cls=DDPGConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("box",),
    init_state=init_state,
    after_update=after_update,
    learner_defaults=_DEFAULTS,
    optimizer_groups=optimizer_groups,
    targets=targets,
)

TD3 = AlgorithmPlugin(
    name="td3",
    description="TD3: DDPG with twin critics, target policy smoothing, delayed actor updates",
    config_cls=TD3Config,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("box",),
    init_state=init_state,
    after_update=after_update,
    learner_defaults=_DEFAULTS,
    optimizer_groups=optimizer_groups,
    targets=targets,
)
