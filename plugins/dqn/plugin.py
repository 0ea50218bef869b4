"""dqn: deep Q-learning with replay, target network, Huber loss; double Q, dueling, n-step
and prioritized replay as options."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.dqn.config import DQNConfig
from rlcore.plugins.dqn.loss import loss, prepare_batch
from rlcore.plugins.dqn.networks import make_modules, make_policy, numpy_policy

PLUGIN = AlgorithmPlugin(
    name="dqn",
    description="DQN: replay, target network, Huber loss; double Q, dueling, n-step, prioritized",
    config_cls=DQNConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    targets={"target_q": "q"},  # the core copies q every algo.target_update_period updates
    learner_defaults={"lr": 1e-4, "max_grad_norm": 10.0, "num_epochs": 1, "minibatch_size": 0},
)
