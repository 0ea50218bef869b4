"""The learner's update step: gradient noise scale from accumulated microbatches, non-finite guard,
device choice."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from rlcore.config import ExperimentConfig
from rlcore.errors import ConfigError, TrainingError
from rlcore.learner.batches import Batch
from rlcore.learner.core import Learner, pick_device
from rlcore.plugin import AlgorithmPlugin, DataSpec


def linear_plugin():
    """loss = mean_i w . x_i: the per-sample gradient is x_i whatever w is, so with
    x ~ N(mu, s^2 I) the true B_simple is d s^2 / |mu|^2 at every step."""

    def loss(modules, batch, cfg, state, rng):
        return {"linear": modules["lin"](batch.x).mean()}, {}

    return AlgorithmPlugin(
        name="linear", description="test", config_cls=dict, data_spec=DataSpec(),
        make_modules=lambda cfg, spaces: {"lin": nn.Linear(8, 1, bias=False)},
        make_policy=None, loss=loss, prepare_batch=lambda modules, frags, cfg, state, rng: frags)


def make_learner(plugin, **learner):
    cfg = ExperimentConfig.model_validate({"algorithm": plugin.name, "env": {"id": "x"},
                                           "learner": learner})
    return Learner(SimpleNamespace(plugin=plugin, algo=None, config=cfg), None,
                   pick_device(cfg.learner.device if cfg.learner.device != "auto" else "cpu"))


def test_noise_scale_from_microbatches_matches_known_variance():
    d, s = 8, 3.0
    mu = torch.full((d,), 0.75)  # |mu|^2 = 4.5, tr(Sigma) = 72 -> B_simple = 16
    learner = make_learner(linear_plugin(), minibatch_size=64, num_epochs=1, gns_microbatches=4,
                           gns_ema=0.99, lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(1500):
        x = mu + s * torch.randn(64, d, generator=g)
        learner.update(Batch(x=x), progress=0.0)
    assert learner.gns.value == pytest.approx(16.0, rel=0.15)


def test_nonfinite_losses_are_skipped_then_stop_the_run():
    learner = make_learner(linear_plugin(), minibatch_size=4, num_epochs=1, gns_microbatches=2,
                           max_nonfinite_steps=3)
    w_before = learner.modules["lin"].weight.detach().clone()
    bad = Batch(x=torch.full((4, 8), float("nan")))
    for _ in range(2):
        metrics = learner.update(bad, 0.0)
        assert metrics["skipped_steps"] == 1.0
    assert torch.equal(learner.modules["lin"].weight, w_before)
    assert learner.skipped_updates == 2
    learner.update(Batch(x=torch.ones(4, 8)), 0.0)  # a finite step resets the count in a row
    assert not torch.equal(learner.modules["lin"].weight, w_before)
    for _ in range(2):
        learner.update(bad, 0.0)
    with pytest.raises(TrainingError, match=r"the loss was non-finite with finite weights: look "
                       r"at its inputs .* in 3 optimizer step\(s\) in a row "
                       r"\(learner.nonfinite=skip, learner.max_nonfinite_steps=3\)"):
        learner.update(bad, 0.0)
    assert learner.skipped_updates == 5


def test_nonfinite_policy_stop_raises_at_the_first_bad_step():
    learner = make_learner(linear_plugin(), minibatch_size=4, num_epochs=1, gns_microbatches=2,
                           nonfinite="stop")
    w_before = learner.modules["lin"].weight.detach().clone()
    with pytest.raises(TrainingError, match=r"the loss was non-finite .* in 1 optimizer "
                       r"step\(s\) in a row \(learner.nonfinite=stop"):
        learner.update(Batch(x=torch.full((4, 8), float("inf"))), 0.0)
    assert torch.equal(learner.modules["lin"].weight, w_before)


def test_linear_lr_schedule_reaches_zero():
    learner = make_learner(linear_plugin(), minibatch_size=4, lr=1e-2, lr_schedule="linear",
                           gns_microbatches=2)
    m = learner.update(Batch(x=torch.ones(4, 8)), progress=0.75)
    assert m["lr"] == pytest.approx(2.5e-3)
    assert learner.opt.param_groups[0]["lr"] == pytest.approx(2.5e-3)


@pytest.mark.parametrize("fused", [False, True])
def test_adam_first_step_by_hand_with_either_kernel(fused):
    """Adam's first step is -lr * g / (|g| + eps) per weight (bias-corrected m = g, v = g^2);
    learner.fused_adam swaps the multi-tensor kernels for torch's fused one, which gives the
    same step and, 50 steps on, weights within 1e-6 of the default's."""
    x = torch.arange(1.0, 33.0).view(4, 8) / 10
    g = x.mean(0)  # the gradient of mean_i w . x_i
    learners = {f: make_learner(linear_plugin(), minibatch_size=4, num_epochs=1, lr=1e-2,
                                adam_eps=1e-5, max_grad_norm=None,
                                gns_every=10**6, fused_adam=f) for f in (False, True)}
    learner = learners[fused]
    assert learner.opt.defaults["fused"] is (True if fused else None)
    assert learner.opt.defaults["foreach"] is (None if fused else True)
    w0 = learner.modules["lin"].weight.detach().clone()
    learner.update(Batch(x=x), progress=0.0)
    step = learner.modules["lin"].weight.detach() - w0
    # the step read back as a difference of float32 weights of size < 0.36: two ulps (6e-8)
    torch.testing.assert_close(step[0], -1e-2 * g / (g.abs() + 1e-5), rtol=0, atol=6e-8)
    other = learners[not fused]
    other.modules["lin"].weight.data.copy_(w0)
    other.update(Batch(x=x), progress=0.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(49):
        batch = Batch(x=torch.randn(4, 8, generator=gen))
        learner.update(batch, progress=0.0)
        other.update(batch, progress=0.0)
    torch.testing.assert_close(learner.modules["lin"].weight, other.modules["lin"].weight,
                               rtol=0, atol=1e-6)


def test_a_resumed_optimizer_keeps_this_runs_adam_kernel():
    """torch's load_state_dict copies every group setting from the checkpoint; the kernel is
    the resuming run's learner.fused_adam."""
    saved = make_learner(linear_plugin(), minibatch_size=4, num_epochs=1, gns_every=10**6)
    saved.update(Batch(x=torch.ones(4, 8)), progress=0.0)
    resumed = make_learner(linear_plugin(), minibatch_size=4, num_epochs=1, gns_every=10**6,
                           fused_adam=True)
    resumed.groups.load_state_dict(saved.groups.state_dict())
    group = resumed.opt.param_groups[0]
    assert (group["fused"], group["foreach"]) == (True, None)
    resumed.update(Batch(x=torch.ones(4, 8)), progress=0.0)  # the fused kernel takes the state
    assert int(resumed.opt.state[resumed.modules["lin"].weight]["step"]) == 2


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is visible; use device: auto or cpu"):
            pick_device("cuda")


def test_batch_indexing_and_unknown_field():
    b = Batch(x=torch.arange(6).reshape(3, 2), y=torch.arange(3))
    assert len(b) == 3 and b[1:].y.tolist() == [1, 2]
    with pytest.raises(AttributeError, match="no field 'z' \\(fields: x, y\\)"):
        b.z


@pytest.mark.gpu
def test_update_on_cuda_matches_cpu():
    plugin = linear_plugin()
    torch.manual_seed(0)
    cpu = make_learner(plugin, minibatch_size=16, gns_microbatches=2)
    torch.manual_seed(0)
    gpu = make_learner(plugin, minibatch_size=16, gns_microbatches=2, device="cuda")
    assert gpu.device.type == "cuda"
    x = torch.randn(16, 8)
    cpu.update(Batch(x=x), 0.0)
    gpu.update(Batch(x=x.cuda()), 0.0)
    torch.testing.assert_close(gpu.modules["lin"].weight.cpu(), cpu.modules["lin"].weight)
