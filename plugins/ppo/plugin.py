"""ppo: proximal policy optimization, clipped or adaptive-KL surrogate."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.ppo.config import PPOConfig
from rlcore.plugins.ppo.loss import after_update, init_state, loss, prepare_batch
from rlcore.plugins.ppo.networks import make_modules, make_policy, numpy_policy

PLUGIN = AlgorithmPlugin(
    name="ppo",
    description="PPO: clipped or adaptive-KL surrogate, GAE, minibatch epochs",
    config_cls=PPOConfig,
    data_spec=DataSpec(regime="trajectory"),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete", "box"),
    init_state=init_state,
    after_update=after_update,
)
