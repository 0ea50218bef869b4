"""sac: soft actor-critic with twin critics, a tanh-squashed Gaussian actor and an automatic
entropy temperature, written against the public plugin contract only."""

from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.sac.config import SACConfig
from rlcore.plugins.sac.loss import TARGETS, loss, optimizer_groups, prepare_batch
from rlcore.plugins.sac.networks import make_modules, make_policy, numpy_policy

PLUGIN = AlgorithmPlugin(
    name="sac",
    description="SAC: twin soft Q critics, squashed Gaussian actor, automatic entropy temperature",
    config_cls=SACConfig,
    data_spec=DataSpec(regime="transition", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("box",),
    optimizer_groups=optimizer_groups,
    targets=TARGETS,
    learner_defaults={"lr": 3e-4, "max_grad_norm": None, "num_epochs": 1, "minibatch_size": 0},
)
