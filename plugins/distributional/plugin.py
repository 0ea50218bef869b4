"""c51 and qrdqn: distributional deep Q-learning on replay (categorical and quantile)."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.distributional.config import C51Config, QRDQNConfig
from rlcore.plugins.distributional.loss import c51_loss, prepare_batch, qr_loss
from rlcore.plugins.distributional.networks import (c51_numpy_policy, make_c51_modules,
                                                    make_c51_policy, make_qr_modules,
                                                    make_qr_policy, qr_numpy_policy)

_DEFAULTS = {"lr": 1e-4, "adam_eps": 3.125e-4, "max_grad_norm": 10.0, "num_epochs": 1,
             "minibatch_size": 0}

C51 = AlgorithmPlugin(
    name="c51",
    description="C51: categorical return distribution on fixed atoms, projected Bellman target",
    config_cls=C51Config,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_c51_modules,
    make_policy=make_c51_policy,
    numpy_policy=c51_numpy_policy,
    loss=c51_loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    targets={"target_q": "q"},
    learner_defaults=_DEFAULTS,
)

QRDQN = AlgorithmPlugin(
    name="qrdqn",
    description="QR-DQN: quantile regression of the return distribution, quantile Huber loss",
    config_cls=QRDQNConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_qr_modules,
    make_policy=make_qr_policy,
    numpy_policy=qr_numpy_policy,
    loss=qr_loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    targets={"target_q": "q"},
    learner_defaults=_DEFAULTS,
)
