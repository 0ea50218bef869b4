"""alphazero: self-play with PUCT search and a residual policy-value network."""

from rlcore.plugin import AlgorithmPlugin, DataSpec, GameHooks

from rlcore.plugins.alphazero import game_hooks
from rlcore.plugins.alphazero.config import AlphaZeroConfig
from rlcore.plugins.alphazero.loss import loss, prepare_batch
from rlcore.plugins.alphazero.networks import make_modules, make_policy

PLUGIN = AlgorithmPlugin(
    name="alphazero",
    description="AlphaZero: self-play, PUCT search, residual policy-value network (two-player games)",
    config_cls=AlphaZeroConfig,
    data_spec=DataSpec(regime="game", needs_log_prob=False),
    make_modules=make_modules,
    make_policy=make_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete",),
    # one learner step is one small minibatch: on 2 shared cores a second torch thread made it
    # 80x slower (10 ms -> 0.8 s per step), so one thread unless the file says otherwise
    learner_defaults={"num_epochs": 1, "minibatch_size": 0, "lr": 2e-3, "max_grad_norm": 10.0,
                      "gns_every": 10, "torch_threads": 1},
    game=GameHooks(make_worker=game_hooks.make_worker, evaluate=game_hooks.evaluate,
                   player=game_hooks.player, check=game_hooks.check),
)
