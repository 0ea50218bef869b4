"""trpo: trust region policy optimization (natural-gradient policy step, Adam value regression)."""

from __future__ import annotations

import torch

from rlcore.networks.blocks import policy_std
from rlcore.ops.schedule import scheduled
from rlcore.plugin import AlgorithmPlugin, DataSpec

from rlcore.plugins.trpo.config import TRPOConfig
from rlcore.plugins.trpo.loss import loss, mean_kl, prepare_batch, surrogate, value_loss
from rlcore.plugins.trpo.natural_gradient import natural_gradient_step
from rlcore.plugins.trpo.networks import (base_distribution, make_modules, make_policy,
                                          numpy_policy, policy_params, value_params)


def update(learner, batch) -> dict[str, float]:
    """One natural-gradient step on the policy parameters, then ``learner.num_epochs`` passes of
    Adam minibatch steps (``learner.opt``) on the value parameters only."""
    cfg, net = learner.cfg, learner.modules["ac"]
    pi_params = policy_params(net)
    with torch.no_grad():
        old = base_distribution(net, batch.obs)  # parameters of pi_old, fixed for this step
    max_kl = trust_region(cfg, learner.state)
    metrics = natural_gradient_step(
        pi_params, lambda: surrogate(net, batch), lambda: mean_kl(net, batch.obs, old),
        max_kl, cfg.damping, cfg.cg_iters, cfg.cg_residual_tol, cfg.max_backtracks,
        cfg.accept_ratio, cfg.backtrack_coef)
    metrics["max_kl"] = max_kl
    metrics["value_loss"] = fit_value(learner, batch)
    metrics["loss"] = metrics["value_loss"] - metrics["surrogate"]
    metrics.update(policy_std(net))  # after the step
    return metrics


def trust_region(cfg, state) -> float:
    """This update's KL bound: ``max_kl``, or with the linear schedule max_kl (1 - progress)."""
    return scheduled(cfg.max_kl, cfg.max_kl_schedule, state.get("progress", 0.0))


def fit_value(learner, batch) -> float:
    """Adam on 0.5 (V - R)^2. ``learner.opt`` holds every parameter; the policy's gradients are
    set to None before each step, and Adam leaves parameters without a gradient untouched."""
    net, lcfg = learner.modules["ac"], learner.lcfg
    pi_ids = {id(p) for p in policy_params(net)}
    v_params = [p for p in value_params(net) if id(p) not in pi_ids]
    n = len(batch)
    mb = min(lcfg.minibatch_size or n, n)
    total, steps = 0.0, 0
    for _ in range(lcfg.num_epochs):
        perm = torch.randperm(n, generator=learner.generator).to(learner.device)
        for start in range(0, n - mb + 1, mb):
            learner.opt.zero_grad(set_to_none=True)
            v_loss = value_loss(net, batch[perm[start:start + mb]])
            v_loss.backward()
            for p in learner.params:
                if id(p) in pi_ids:
                    p.grad = None
            if lcfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(v_params, lcfg.max_grad_norm)
            learner.opt.step()
            total, steps = total + float(v_loss.detach()), steps + 1
    learner.opt.zero_grad(set_to_none=True)
    return total / max(steps, 1)


PLUGIN = AlgorithmPlugin(
    name="trpo",
    description="TRPO: natural-gradient policy step in a KL trust region (CG + line search), "
                "GAE, Adam value regression",
    config_cls=TRPOConfig,
    data_spec=DataSpec(regime="trajectory"),
    make_modules=make_modules,
    make_policy=make_policy,
    numpy_policy=numpy_policy,
    loss=loss,
    prepare_batch=prepare_batch,
    action_spaces=("discrete", "box"),
    update=update,
    learner_defaults={"lr": 1e-3, "num_epochs": 5, "minibatch_size": 64, "max_grad_norm": None},
)
