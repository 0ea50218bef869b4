"""The contract a third-party algorithm builds on: optimizer groups, core-owned target networks
and the learner's seeded generator, checked on tiny hand-made plugins."""

import io
from types import SimpleNamespace

import pytest
import torch
from pydantic import BaseModel
from torch import nn

from rlcore.config import ExperimentConfig
from rlcore.errors import ConfigError, TrainingError
from rlcore.learner.batches import Batch
from rlcore.learner.core import Learner


class Cfg(BaseModel):
    tau: float = 1.0
    target_update_period: int = 1


def actor_critic_plugin(loss, groups=None, targets=None):
    """A 'critic' q(x) = w_q . x and an 'actor' a(x) = w_a . x, the actor's loss through q."""
    from rlcore.plugin import AlgorithmPlugin, DataSpec

    def make_modules(cfg, spaces):
        torch.manual_seed(0)
        return {"q": nn.Linear(2, 1, bias=False), "actor": nn.Linear(2, 2, bias=False),
                "target_q": nn.Linear(2, 1, bias=False)}

    return AlgorithmPlugin(
        name="toy", description="test", config_cls=Cfg, data_spec=DataSpec(),
        make_modules=make_modules, make_policy=None, loss=loss,
        prepare_batch=lambda modules, data, cfg, state, rng: data,
        optimizer_groups=groups if groups is not None else {"critic": ("q",),
                                                           "actor": ("actor",)},
        targets=targets if targets is not None else {"target_q": "q"})


def learner_for(plugin, algo=None, **learner):
    cfg = ExperimentConfig.model_validate({
        "algorithm": plugin.name, "env": {"id": "x"},
        "learner": {"num_epochs": 1, "minibatch_size": 0, "max_grad_norm": None, **learner}})
    exp = SimpleNamespace(plugin=plugin, algo=algo or Cfg(), config=cfg)
    return Learner(exp, None, torch.device("cpu"), one_step=True)


def actor_loss_only(modules, batch, cfg, state, rng):
    q_of_pi = modules["q"](modules["actor"](batch.x))  # through the critic, not detached
    return {"actor": -q_of_pi.mean()}, {}


def test_a_loss_term_moves_only_its_own_group():
    learner = learner_for(actor_critic_plugin(actor_loss_only))
    q_before = learner.modules["q"].weight.detach().clone()
    a_before = learner.modules["actor"].weight.detach().clone()
    metrics = learner.update(Batch(x=torch.ones(4, 2)), 0.0)
    assert torch.equal(learner.modules["q"].weight, q_before)  # the critic did not move
    assert learner.modules["q"].weight.grad is None
    assert not torch.equal(learner.modules["actor"].weight, a_before)
    assert set(metrics) >= {"actor/loss", "actor/grad_norm", "actor/lr", "critic/lr"}
    assert "critic/loss" not in metrics  # no critic term: the critic's group was not stepped


def test_one_summed_group_would_have_moved_the_critic():
    """The trap the groups close: with a single group the same loss trains q to maximise
    q(pi(x)) as well."""
    learner = learner_for(actor_critic_plugin(
        lambda m, b, c, s, r: ({"all": actor_loss_only(m, b, c, s, r)[0]["actor"]}, {}),
        groups={}))
    q_before = learner.modules["q"].weight.detach().clone()
    learner.update(Batch(x=torch.ones(4, 2)), 0.0)
    assert not torch.equal(learner.modules["q"].weight, q_before)


def test_each_group_gets_its_own_settings_and_a_wrong_term_name_is_an_error():
    def both(modules, batch, cfg, state, rng):
        q = modules["q"](batch.x).mean()
        return {"critic": q.pow(2), "actor": -modules["q"](modules["actor"](batch.x)).mean()}, {}

    learner = learner_for(actor_critic_plugin(both), lr=1e-3,
                          groups={"actor": {"lr": 0.5}})
    metrics = learner.update(Batch(x=torch.ones(4, 2)), 0.0)
    assert metrics["actor/lr"] == 0.5 and metrics["critic/lr"] == 1e-3
    # plain Adam's first step moves each parameter by lr (the sign of its gradient)
    step = learner.groups.opts["actor"].param_groups[0]["lr"]
    assert step == 0.5

    wrong = learner_for(actor_critic_plugin(lambda m, b, c, s, r: ({"policy": m["q"](b.x).sum()},
                                                                   {})))
    with pytest.raises(TrainingError, match=r"loss terms \['policy'\] match no optimizer group "
                                            r"\(groups: critic, actor\)"):
        wrong.update(Batch(x=torch.ones(2, 2)), 0.0)


def test_unknown_group_in_the_experiment_is_a_config_error(tmp_path):
    from rlcore.config import load_experiment

    path = tmp_path / "td3.yaml"
    path.write_text("algorithm: td3\nenv:\n  id: Pendulum-v1\nlearner:\n  groups:\n"
                    "    actr: {lr: 1.0e-4}\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.problems == [f"{path}:6: learner.groups.actr: td3 has no optimizer group "
                                  "'actr' (its groups: critic, actor)"]


def critic_only(modules, batch, cfg, state, rng):
    return {"critic": (modules["q"](batch.x) - 1.0).pow(2).mean()}, {}


def test_targets_are_copied_then_follow_polyak_steps_every_period():
    learner = learner_for(actor_critic_plugin(critic_only), Cfg(tau=0.25, target_update_period=2))
    q, target = learner.modules["q"], learner.modules["target_q"]
    assert torch.equal(target.weight, q.weight) and not target.weight.requires_grad
    expected = target.weight.detach().clone()
    for i in range(1, 5):
        learner.update(Batch(x=torch.ones(3, 2)), 0.0)
        if i % 2 == 0:  # after updates 2 and 4: target <- 0.75 target + 0.25 q
            expected = 0.75 * expected + 0.25 * q.weight.detach()
        torch.testing.assert_close(target.weight.detach(), expected)
    assert "target_q" not in learner.weights(for_actors=True)


def test_hard_target_copy_every_period():
    learner = learner_for(actor_critic_plugin(critic_only), Cfg(tau=1.0, target_update_period=3))
    q, target = learner.modules["q"], learner.modules["target_q"]
    start = target.weight.detach().clone()
    learner.update(Batch(x=torch.ones(3, 2)), 0.0)
    learner.update(Batch(x=torch.ones(3, 2)), 0.0)
    assert torch.equal(target.weight, start) and not torch.equal(q.weight, start)
    learner.update(Batch(x=torch.ones(3, 2)), 0.0)
    assert torch.equal(target.weight, q.weight)


def noisy(modules, batch, cfg, state, rng):
    noise = torch.randn(batch.x.shape, generator=rng)
    return {"critic": (modules["q"](batch.x + noise) - 1.0).pow(2).mean()}, {}


def test_the_losss_generator_is_seeded_and_round_trips_through_a_checkpoint():
    a, b = (learner_for(actor_critic_plugin(noisy)) for _ in range(2))
    batch = Batch(x=torch.ones(3, 2))
    a.update(batch, 0.0)
    buf = io.BytesIO()  # as a checkpoint does: through torch.save, loaded without pickle
    torch.save(a.state_tensors(), buf)
    buf.seek(0)
    tensors, meta = torch.load(buf, weights_only=True), a.meta()
    b.load_state_tensors(tensors)
    b.load_meta(meta)
    a.update(batch, 0.0)
    b.update(batch, 0.0)  # the same draws: identical parameters
    assert torch.equal(a.modules["q"].weight, b.modules["q"].weight)
    fresh = learner_for(actor_critic_plugin(noisy))
    fresh.update(batch, 0.0)
    fresh.update(batch, 0.0)  # the same seed from the start: the same two updates
    assert torch.equal(fresh.modules["q"].weight, a.modules["q"].weight)


def test_the_nonfinite_stop_names_the_loss_term_that_went_nonfinite():
    def bad_term(modules, batch, cfg, state, rng):
        q = modules["q"](batch.x).mean()
        return {"critic": q * float("inf")}, {}

    learner = learner_for(actor_critic_plugin(bad_term), nonfinite="stop")
    with pytest.raises(TrainingError, match=r"the loss term 'critic' was non-finite with finite "
                                            r"weights: look at its inputs"):
        learner.update(Batch(x=torch.ones(2, 2)), 0.0)
