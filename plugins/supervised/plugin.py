"""supervised: the maximum-likelihood learner on the label in ``info['label']``."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.supervised.config import SupervisedConfig
from rlcore.plugins.supervised.loss import loss, prepare_batch
from rlcore.plugins.supervised.networks import make_modules, make_policy, numpy_policy

PLUGIN = AlgorithmPlugin(
    name="supervised",
    description="maximum likelihood on info['label'] (cross-entropy / squared error), for "
                "comparison with RL on the same dataset env",
    config_cls=SupervisedConfig,
    data_spec=DataSpec(regime="trajectory", needs_log_prob=False, info_keys=("label",)),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete", "box"),
    learner_defaults={"num_epochs": 1, "minibatch_size": 0},
)
