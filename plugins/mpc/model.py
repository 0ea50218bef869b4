"""The dynamics model: an ensemble of probabilistic MLPs (PETS, Chua et al. 2018), and how the
learner fits it.

Member e maps the normalized input x = ((s, a) - mu_x) / sigma_x to a diagonal Gaussian over
the normalized state change y = (s' - s - mu_y) / sigma_y:

    mean_e(x), logvar_e(x),   p_e(y | x) = N(y; mean_e, diag(exp(logvar_e))).

The raw log-variance v is kept inside learned soft bounds (PETS):

    v <- max_logvar - softplus(max_logvar - v),   v <- min_logvar + softplus(v - min_logvar).

Fitting goes through the learner's ordinary loss path: each replay sample of ``batch_size``
transitions is one Adam step (``replay_ratio`` steps per env step, so the model keeps
improving while the actors plan with it, and the core's optimizer, clipping, checkpoints and
determinism checks apply unchanged). Member e sees its own bootstrap resample of the sample,
which keeps the members apart where data is thin. The loss is the Gaussian negative
log-likelihood, summed over the members:

    L = sum_e mean_i mean_d [(mean_e - y)^2 exp(-logvar_e) + logvar_e]
        + c (sum max_logvar - sum min_logvar) + wd sum_e ||W_e||^2.

Replay slots in held-out blocks (``held_out``: one block of ``holdout_block`` consecutive slot
ids in every ``holdout_every``) never enter the loss nor the statistics: they are the unseen
data of the diagnostics (diagnostics.py).

The normalization statistics are buffers, so the actors receive them with the weights.
``prepare_batch`` refreshes them from each sample before the step: the running mean of the
samples' first and second moments over the first ``stats_window`` fits, then an exponential
moving average with rate 1 / stats_window (replay grows and shifts as the planner improves).
``fits`` counts the steps; the actors plan once it is positive.
"""

from __future__ import annotations

import math

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from rlcore.learner.batches import Batch, replay_batch


def held_out(index, block: int, every: int):
    """Whether replay slot ids ``index`` (numpy ints) lie in held-out blocks: slot i is held
    out when (i // block) % every == 0; every = 0 holds out nothing."""
    index = np.asarray(index, np.int64)
    if not every:
        return np.zeros(index.shape, bool)
    return (index // block) % every == 0


class GaussianEnsemble(nn.Module):
    """E MLPs evaluated together: layer weights [E, d_in, d_out], inputs [E, N, d_in]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int,
                 max_logvar: float = 0.5, min_logvar: float = -10.0):
        super().__init__()
        self.members, self.obs_dim, self.act_dim = members, obs_dim, act_dim
        sizes = [obs_dim + act_dim, *hidden, 2 * obs_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):  # nn.Linear's default initialization
            bound = 1.0 / math.sqrt(d_in)
            self.weights.append(nn.Parameter(torch.empty(members, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, d_out).uniform_(-bound, bound)))
        self.max_logvar = nn.Parameter(torch.full((obs_dim,), float(max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((obs_dim,), float(min_logvar)))
        d_x = obs_dim + act_dim
        self.register_buffer("x_mean", torch.zeros(d_x))
        self.register_buffer("x_sq", torch.ones(d_x))  # second moments
        self.register_buffer("y_mean", torch.zeros(obs_dim))
        self.register_buffer("y_sq", torch.ones(obs_dim))
        self.register_buffer("fits", torch.zeros((), dtype=torch.int64))

    @staticmethod
    def _std(mean: torch.Tensor, sq: torch.Tensor) -> torch.Tensor:
        return (sq - mean.square()).clamp_min(1e-8).sqrt()

    def x_std(self) -> torch.Tensor:
        return self._std(self.x_mean, self.x_sq)

    def y_std(self) -> torch.Tensor:
        return self._std(self.y_mean, self.y_sq)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized inputs [E, N, d_x] -> (mean, logvar) [E, N, obs_dim], normalized."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = F.silu(h)
        mean, logvar = h.chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def normalize_input(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (torch.cat([obs, action], -1) - self.x_mean) / self.x_std()

    @torch.no_grad()
    def refresh_stats(self, x: torch.Tensor, y: torch.Tensor, window: int) -> None:
        """Moments of a sample's raw inputs x [N, d_x] and targets y [N, obs_dim] into the
        buffers: weight 1 / (fits + 1) for the first ``window`` fits, then 1 / window."""
        w = 1.0 / min(int(self.fits) + 1, window)
        for buf, value in ((self.x_mean, x.mean(0)), (self.x_sq, x.square().mean(0)),
                           (self.y_mean, y.mean(0)), (self.y_sq, y.square().mean(0))):
            buf.lerp_(value.to(buf.dtype), w)
        self.fits += 1

    # ------------------------------------------------------------------ planning interface

    @property
    def fitted(self) -> bool:
        return int(self.fits) > 0

    def mean_dynamics(self, dtype=torch.float64) -> "MeanDynamics":
        """The ensemble's mean dynamics with the current weights and statistics (iLQR,
        diagnostics)."""
        return MeanDynamics(self, dtype)

    @torch.no_grad()
    def step(self, obs: torch.Tensor, action: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        """Sampled next states: obs [E, N, obs_dim] and actions [E, N, act_dim] (row block e
        through member e) -> s' = s + mu_y + sigma_y (mean + exp(logvar / 2) eps)."""
        mean, logvar = self(self.normalize_input(obs, action))
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        delta = mean + (0.5 * logvar).exp() * eps
        return obs + self.y_mean + self.y_std() * delta


class MeanDynamics:
    """The mean of the members' predictions, from a detached copy of an ensemble's weights and
    statistics in ``dtype``: differentiable in its inputs only, and quick on single states.

        (s, a) -> (s + mu_y + sigma_y (1/E) sum_e mean_e(x), D),   x = ((s, a) - mu_x) / sigma_x,

    with the disagreement D = (1/E) sum_e ||mean_e(x) - (1/E) sum_f mean_f(x)||^2 / obs_dim,
    the variance over members of their normalized predicted means, averaged over dimensions.
    Inputs obs [..., obs_dim] and action [..., act_dim] in ``dtype``; outputs [..., obs_dim]
    and [...]. The log-variance head is left out (only the means enter)."""

    def __init__(self, model: GaussianEnsemble, dtype=torch.float64):
        d = model.obs_dim
        with torch.no_grad():
            self.w = [w.detach().to(dtype) for w in model.weights]
            self.b = [b.detach().to(dtype) for b in model.biases]
            self.w[-1], self.b[-1] = self.w[-1][..., :d], self.b[-1][..., :d]
            self.x_mean, self.x_std = model.x_mean.to(dtype), model.x_std().to(dtype)
            self.y_mean, self.y_std = model.y_mean.to(dtype), model.y_std().to(dtype)

    def __call__(self, obs: torch.Tensor, action: torch.Tensor):
        lead = obs.shape[:-1]
        h = ((torch.cat([obs, action], -1) - self.x_mean) / self.x_std).reshape(1, -1, len(
            self.x_mean))
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            h = torch.matmul(h, w) + b  # [1, N, d_in] @ [E, d_in, d_out] -> [E, N, d_out]
            if i < last:
                h = F.silu(h)
        centre = h.mean(0)
        disagreement = (h - centre).square().mean(0).mean(-1).reshape(lead)
        return obs + (self.y_mean + self.y_std * centre).reshape(obs.shape), disagreement


def make_ensemble(cfg, spaces) -> GaussianEnsemble:
    obs_dim = int(spaces.obs_shape[0])
    act_dim = int(spaces.action_shape[0])
    return GaussianEnsemble(obs_dim, act_dim, tuple(cfg.hidden_sizes), cfg.ensemble_size,
                            cfg.max_logvar_init, cfg.min_logvar_init)


def prepare_batch(modules, sample, cfg, state, rng=None):
    """The replay sample as a batch on the model's device, after refreshing the model's
    normalization statistics from its transitions (terminated ones left out: their stored next
    observation starts the next episode) and so are held-out slots (``held_out``)."""
    model = modules["model"]
    batch = replay_batch(sample, model.x_mean.device)
    index = getattr(sample, "index", None)
    train = torch.ones(len(batch), dtype=torch.bool, device=model.x_mean.device)
    if index is not None:
        held = held_out(index, cfg.holdout_block, cfg.holdout_every)
        train = torch.as_tensor(~held, device=model.x_mean.device)
    batch = Batch(**{name: getattr(batch, name) for name in batch.fields()}, train=train)
    keep = (batch.discount > 0) & train
    if bool(keep.any()):
        obs, nxt = batch.obs.float()[keep], batch.next_obs.float()[keep]
        x = torch.cat([obs, batch.action.float()[keep].reshape(len(obs), -1)], -1)
        model.refresh_stats(x, nxt - obs, cfg.stats_window)
    return batch


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample NLL up to constants: mean over dimensions of (mean - y)^2 exp(-logvar) +
    logvar (twice the Gaussian's negative log-density less log 2 pi)."""
    return ((mean - target).square() * (-logvar).exp() + logvar).mean(-1)


def loss(modules, batch, cfg, state, rng=None):
    """The ensemble's NLL on per-member bootstrap resamples of ``batch`` (indices from the
    learner's generator ``rng``), plus the log-variance bound and weight-decay terms."""
    model = modules["model"]
    n, E = len(batch.obs), model.members
    obs, nxt = batch.obs.float(), batch.next_obs.float()
    action = batch.action.float().reshape(n, -1)
    x = model.normalize_input(obs, action)
    y = (nxt - obs - model.y_mean) / model.y_std()
    keep = ((batch.discount > 0) & batch.train).float()
    device = x.device
    idx = torch.randint(0, n, (E, n), generator=rng, device=device)
    mean, logvar = model(x[idx])
    nll_rows = gaussian_nll(mean, logvar, y[idx])  # [E, n]
    w = keep[idx]
    nll = ((nll_rows * w).sum(-1) / w.sum(-1).clamp_min(1.0)).sum()
    bounds = cfg.logvar_bound_coef * (model.max_logvar.sum() - model.min_logvar.sum())
    decay = cfg.weight_decay * sum(wt.square().sum() for wt in model.weights)
    with torch.no_grad():
        mse = (((mean - y[idx]).square().mean(-1) * w).sum() / w.sum().clamp_min(1.0))
    return ({"model": nll + bounds + decay},
            {"nll": nll.detach() / E, "mse": mse, "logvar": logvar.detach().mean(),
             "fits": float(model.fits)})
