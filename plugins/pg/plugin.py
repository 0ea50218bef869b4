"""pg: vanilla policy gradient (REINFORCE, reward-to-go, learned baseline)."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.pg.config import PGConfig
from rlcore.plugins.pg.loss import loss, prepare_batch
from rlcore.plugins.pg.networks import make_modules, make_policy, numpy_policy

PLUGIN = AlgorithmPlugin(
    name="pg",
    description="REINFORCE with reward-to-go and a learned value baseline (one step per batch)",
    config_cls=PGConfig,
    data_spec=DataSpec(regime="trajectory"),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete", "box"),
    learner_defaults={"num_epochs": 1, "minibatch_size": 0},
)
