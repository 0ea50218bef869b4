"""How good the learned model is where it matters: figures computed from the whole replay at
every log window (the transition regime's ``replay_metrics`` hook, in the driver on the latest
weights) and logged with the learner's metrics (TensorBoard: learner/...).

Predictions use the ensemble's mean dynamics (``model.MeanDynamics``):
s^_{j+1} = s^_j + mu_y + sigma_y mean_e(mean_e(s^_j, a_j)), open loop from a real s^_0 = s_0.
An error is the mean over chains and state dimensions of (s^_j - s_j)^2, in the env's units.

- ``heldout_mse_1step``, ``heldout_mse_{k}step``: on chains of k consecutive real transitions
  in held-out replay slots (``model.held_out``), which the model never trained on;
- ``train_mse_1step``, ``train_mse_{k}step``: the same on chains the model trains on (their
  gap to the held-out figures is the overfitting);
- ``planned_mse_{k}step`` and ``random_mse_{k}step``: from real states (the held-out chains'
  first states), the k-step error along the action sequence the planner chooses there versus
  along uniformly random sequences, both against the env's true dynamics (the task's
  ``dynamics``: Pendulum's equations, MuJoCo's own step for the MuJoCo tasks; skipped
  without it); ``planned_return_gap`` and ``random_return_gap``:
  the model's predicted minus the true return of the same k steps. The planner searches for
  sequences the model scores high, so where it exploits model errors its sequences are
  predicted worse (larger error) and too well (a positive gap) compared with random ones.

k = ``diagnostic_steps`` (for the planned-vs-random figures at most ``horizon``, the length of
a plan). Chains never cross an episode's end nor a terminated step.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.plugins.mpc.model import held_out
from rlcore.plugins.mpc.rewards import task_for


def open_loop_mse(predict, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Open-loop prediction errors along real chains: obs [B, k + 1, d] (real states),
    actions [B, k, m]; predict(s [B, d], a [B, m]) -> s' [B, d] (torch). Returns [k]: for
    j = 1..k, the mean over B and d of (s^_j - s_j)^2 with s^_0 = s_0,
    s^_{j+1} = predict(s^_j, a_j)."""
    obs, actions = np.asarray(obs), np.asarray(actions)
    k = actions.shape[1]
    state = torch.as_tensor(obs[:, 0], dtype=torch.float32)
    out = np.empty(k)
    with torch.no_grad():
        for j in range(k):
            state = predict(state, torch.as_tensor(actions[:, j], dtype=torch.float32))
            out[j] = float((state.double() - torch.as_tensor(obs[:, j + 1]).double())
                           .square().mean())
    return out


def replay_chains(buffer, k: int, held: bool, block: int, every: int, count: int,
                  rng: np.random.Generator):
    """Up to ``count`` chains of k consecutive complete transitions of one episode from replay,
    every slot held out (``held``) or every slot trained on: (obs [B, k + 1, d], actions
    [B, k, m]); None when there is none. Vector observations (no frame stacking)."""
    if buffer.K != 1:
        raise ValueError("replay_chains: expected vector observations (frame_stack 1)")
    C = buffer.C
    s, p = np.nonzero(buffer.complete)
    absolute = buffer._absolute(s, p)
    ok = np.ones(len(s), bool)
    for j in range(k):
        a = absolute + j
        q = a % C
        ok &= a < buffer.count[s]
        ok &= buffer.complete[s, q] & ~buffer.terminated[s, q]
        ok &= buffer.ep_start[s, q] == buffer.ep_start[s, p]
        ok &= held_out(s * C + q, block, every) == held
    s, absolute = s[ok], absolute[ok]
    if not len(s):
        return None
    pick = rng.choice(len(s), size=min(count, len(s)), replace=False)
    s, absolute = s[pick], absolute[pick]
    steps = absolute[:, None] + np.arange(k + 1)  # [B, k + 1]
    obs = buffer.frames[s[:, None], steps % C]
    actions = buffer.action[s[:, None], steps[:, :k] % C]
    return obs.astype(np.float64), actions.reshape(len(s), k, -1).astype(np.float64)


def rollout(step, reward, obs: np.ndarray, actions: np.ndarray):
    """Open-loop rollout from states obs [B, d] under actions [B, k, m]: (states [B, k + 1, d],
    returns [B] = sum_{j<k} r(s_j, a_j, s_{j+1})); step(s, a) -> s' and reward(s, a, s') -> r
    on torch."""
    state = torch.as_tensor(obs, dtype=torch.float64)
    states, total = [state], torch.zeros(len(obs), dtype=torch.float64)
    with torch.no_grad():
        for j in range(actions.shape[1]):
            a = torch.as_tensor(actions[:, j], dtype=torch.float64)
            nxt = step(state, a).double()
            total = total + reward(state, a, nxt).double()
            state = nxt
            states.append(state)
    return torch.stack(states, 1).numpy(), total.numpy()


def planned_versus_random(predict, dynamics, reward, plan, states: np.ndarray, k: int,
                          rng: np.random.Generator) -> dict:
    """From real ``states`` [B, d]: the planner's sequences (plan(s) -> [>= k, m] in [-1, 1])
    and uniformly random ones, each rolled out k steps by the model (``predict``) and by the
    true ``dynamics``. Returns the error at step k (mean over states and dimensions) and the
    mean predicted-minus-true return of each kind."""
    planned = np.stack([np.asarray(plan(s))[:k] for s in states])
    random = rng.uniform(-1.0, 1.0, planned.shape)
    out = {}
    for name, seqs in (("planned", planned), ("random", random)):
        model_states, model_return = rollout(predict, reward, states, seqs)
        true_states, true_return = rollout(dynamics, reward, states, seqs)
        out[f"{name}_mse_{k}step"] = float(np.square(model_states[:, k] - true_states[:, k]).mean())
        out[f"{name}_return_gap"] = float((model_return - true_return).mean())
    return out


def replay_metrics(modules: dict, buffer, cfg, spaces, rng: np.random.Generator) -> dict:
    """The plugin's ``replay_metrics`` hook: the figures above, {} before the model's first
    fit or when ``diagnostic_chains`` is 0."""
    model = modules["model"]
    if not model.fitted or not cfg.diagnostic_chains:
        return {}
    k = cfg.diagnostic_steps

    dynamics = model.mean_dynamics(torch.float64)

    def predict(s, a):
        return dynamics(s.double(), a.double())[0]

    out, held_chains = {}, None
    for name, held in (("heldout", True), ("train", False)):
        if held and not cfg.holdout_every:
            continue
        chains = replay_chains(buffer, k, held, cfg.holdout_block, cfg.holdout_every,
                               cfg.diagnostic_chains, rng)
        if chains is None:
            continue
        mse = open_loop_mse(predict, *chains)
        out[f"{name}_mse_1step"], out[f"{name}_mse_{k}step"] = float(mse[0]), float(mse[-1])
        if held:
            held_chains = chains
    task = task_for(cfg.task, spaces)
    if cfg.diagnostic_states and task.dynamics is not None and held_chains is not None:
        from rlcore.plugins.mpc.plugin import plugin_for

        policy = plugin_for(cfg).make_policy(modules, cfg, spaces, explore=False)
        states = held_chains[0][:cfg.diagnostic_states, 0]
        out.update(planned_versus_random(predict, task.dynamics, task.reward,
                                         lambda s: policy.plan(s, rng)[1], states,
                                         min(k, cfg.horizon), rng))
    return out
