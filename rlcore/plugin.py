"""The algorithm plugin contract. Read this first.

A plugin is a frozen record of plain functions; the core owns environments, actors, buffers,
optimizers, logging and checkpoints. Signatures:

    make_modules(cfg, spaces) -> dict[str, nn.Module]            # all learnable parts
    make_policy(modules, cfg, spaces, explore: bool) -> Policy   # runs on CPU actors
    prepare_batch(modules, data, cfg, state, rng) -> Batch       # learner: targets (GAE, ...)
    loss(modules, batch, cfg, state, rng) -> (losses, metrics)   # pure; stepped by the core
    after_update(modules, batch, cfg, state, metrics) -> state   # optional: adapt coefficients
    update(learner, batch) -> metrics                            # optional: replaces the core's step

``cfg`` is the plugin's validated ``config_cls`` instance (the YAML ``algo:`` section);
``state`` is a small dict of floats the plugin owns (e.g. an adaptive KL coefficient), saved in
checkpoints as JSON. ``rng`` is the learner's ``torch.Generator`` (on its device, seeded from the
experiment, saved in checkpoints): draw every random number of a loss from it, never from
torch's global generator, so same seed -> same update and save -> restore -> same next update.

Losses are keyed by optimizer group. Without ``optimizer_groups`` there is one group and the
terms are summed; with ``optimizer_groups={"critic": ("q1", "q2"), "actor": ("policy",)}`` the
term named ``critic`` steps only q1 and q2, ``actor`` only the policy
(``rlcore/learner/groups.py``). ``targets={"target_q": "q"}`` hands target networks to the core:
it copies them at the start, updates them every ``target_update_period`` updates with a Polyak
step ``tau`` (read from the plugin's config), checkpoints them and never sends them to actors.
``Policy.act(obs, rng)`` returns an ``ActionOut`` (``rng``: the actor's numpy generator).
``numpy_policy(modules, cfg, spaces) -> NumpyPolicySpec`` (optional) describes the same policy
as numpy nets over the published weights, so that rollout actors run without torch
(``rlcore/policies/``; the built-in networks' specs are written by ``rlcore.networks.export``).
``learner_defaults`` override the core's learner defaults for keys the experiment file does
not set. ``rlcore check-plugin NAME`` checks a plugin against this contract.

The data regime (``DataSpec.regime``) decides what ``prepare_batch`` receives
(``rlcore/regimes/``):

- ``trajectory``: a list of ``Fragment`` records; the learner takes ``num_epochs`` passes of
  ``minibatch_size`` steps over the batch.
- ``transition`` (replay): a ``rlcore.buffers.ReplaySample`` (n-step return, discount,
  importance weights); one optimizer step per sample; ``loss`` may report per-sample |TD
  errors| as the metric ``td_abs`` (a vector) for prioritized replay; modules named
  ``target*`` stay on the learner (actors get the others); the config extends
  ``rlcore.regimes.transition_config.ReplayConfig``; a policy may define
  ``set_schedule(env_steps, actor_id, num_actors)`` for its exploration schedule.
- ``game``: a list holding one sample of positions from the game store (a dict of arrays:
  obs, pi, z, legal); the config extends ``rlcore.regimes.game_config.GameConfig``; the plugin
  declares ``game`` (``GameHooks``): its self-play worker, its evaluation and the player
  ``rlcore play`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import numpy as np

from rlcore.types import ActionOut

Regime = Literal["trajectory", "transition", "game"]


class Policy(Protocol):
    def act(self, obs: np.ndarray, rng: np.random.Generator) -> ActionOut: ...


@dataclass(frozen=True)
class DataSpec:
    """What the plugin needs from rollouts; the core picks the buffer and loop from it."""

    regime: Regime = "trajectory"
    needs_log_prob: bool = True  # actors record the behaviour policy's log-probability
    # env ``info`` keys the actors record per step into ``Fragment.info`` (e.g. ("label",) for
    # the supervised learner on a dataset env); RL plugins leave it empty and never see them
    info_keys: tuple[str, ...] = ()
    # the observations it takes: "box" (vectors, images) or "discrete" (a state index, tabular)
    obs_kind: str = "box"


@dataclass(frozen=True)
class GameHooks:
    """What a game-playing plugin gives the game regime (``rlcore/regimes/game.py``), which
    knows nothing else about it:

    - ``make_worker(plugin, algo_cfg, spaces, make_game, seed, actor_id)``: a self-play worker
      (``set_weights(weights, version)``, ``work(num_games) -> list[GameRecord]``,
      ``policy_version``, ``close()``); it runs inline or in a Ray actor.
    - ``evaluate(modules, algo_cfg, make_game, game_name, episodes, seed)``: results per
      opponent, ``{name: {"win", "draw", "loss", "score", "games"}}``, the last opponent's
      ``score`` being the evaluation return.
    - ``player(modules, algo_cfg, simulations)``: an object with ``act(game) -> move``, the
      opponent a person plays in ``rlcore play``.
    - ``check(exp, game_name) -> list[str]``: problems of the ``algo`` section for this game
      (e.g. an opponent only offered for another game); optional.
    """

    make_worker: Callable[..., Any]
    evaluate: Callable[..., dict]
    player: Callable[..., Any]
    check: Callable[..., list] | None = None


@dataclass(frozen=True)
class AlgorithmPlugin:
    name: str
    description: str
    config_cls: type
    data_spec: DataSpec
    make_modules: Callable[..., dict]
    make_policy: Callable[..., Policy]
    loss: Callable[..., tuple[dict, dict]]
    prepare_batch: Callable[..., Any]
    action_spaces: tuple[str, ...] = ("discrete",)
    init_state: Callable[[Any], dict[str, float]] = field(default=lambda cfg: {})
    after_update: Callable[..., dict[str, float]] | None = None
    update: Callable[..., dict[str, float]] | None = None
    learner_defaults: dict = field(default_factory=dict)  # e.g. {"num_epochs": 1} for vanilla PG
    # named groups of modules, each with its own optimizer, stepped only by the loss term of
    # the same name (rlcore/learner/groups.py); empty: one group, the terms summed
    # (or a function of the plugin's config returning them, when modules depend on it)
    optimizer_groups: dict[str, tuple[str, ...]] | Callable[[Any], dict] = field(
        default_factory=dict)
    # target networks the core keeps: {target module: online module}; copied at the start,
    # never trained nor sent to actors, updated after every ``target_update_period``-th update
    # by a Polyak step with ``tau`` (1 = a hard copy), both read from the plugin's config
    targets: dict[str, str] | Callable[[Any], dict] = field(default_factory=dict)
    game: GameHooks | None = None  # game regime only
    # (env id, kwargs) the contract checks (``rlcore check-plugin``) run on, for a plugin made
    # for one env (a planner knowing one model form); such a plugin is suggested for that env
    # only. None: a tiny fake env that fits the data spec
    contract_env: tuple[str, dict] | None = None
    # transition regime: replay_metrics(modules, buffer, cfg, spaces, rng) -> {name: float},
    # figures the plugin computes from the whole replay (e.g. a model's error on held-out
    # transitions), in the driver on the latest weights, logged with the learner's metrics
    # at every log window (rlcore/regimes/transition.py)
    replay_metrics: Callable[..., dict] | None = None
    # numpy_policy(modules, cfg, spaces) -> rlcore.policies.numpy_policy.NumpyPolicySpec | None:
    # the inference policy as data (nets over the published weights, a torch-free factory),
    # written on the driver from modules built by make_modules. Rollout actors then build that
    # policy instead of the modules and never import torch; None (or a None spec): they run
    # make_policy on torch modules. It must act as make_policy does (rlcore check-plugin
    # compares the two)
    numpy_policy: Callable[..., Any] | None = None


@dataclass(frozen=True)
class PluginRef:
    """What a rollout actor knows of its plugin without importing it (its modules import
    torch): name and data spec, and the target it is loaded from (``rlcore.registry``) when
    the actor needs it."""

    name: str
    target: str  # "module:attr"
    data_spec: DataSpec


@dataclass(frozen=True)
class EnvPlugin:
    """A family of environments registered into Gymnasium under the ``rlcore/`` namespace."""

    name: str
    description: str
    register: Callable[[], None]  # registers its ids with gymnasium.register (idempotent)
    ids: tuple[str, ...] = ()
    requires: str = ""  # the extra to install when its package is missing, e.g. "atari"
    # two-player games (the game regime): the game an env id plays, or None for other envs...
    game_name_for: Callable[[str, dict | None], str | None] | None = None
    # ...and a fresh game (start position) by that name
    make_game: Callable[[str], Any] | None = None
