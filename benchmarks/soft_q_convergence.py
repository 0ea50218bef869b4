"""Tabular soft Q-learning against the exact soft optimum: with and without bounds, started
from a prior solution of another reward, and its reward rate against the tilted-matrix theta as
gamma -> 1. One JSON line per run, then summary tables and, with --figure, the curves.

    python benchmarks/soft_q_convergence.py [--studies bounds composition rate]
        [--seeds 0 1 2 3 4] [--bounds none empirical] [--mazes deterministic slippery]
        [--gammas 0.8 0.9 0.95 0.98 0.99] [--out results.jsonl] [--figure fig.png]

bounds: experiments/tabular_soft_gridworld.yaml (a 3x4 maze with a wall and a hole, step
reward -0.05, gamma 0.9, beta 5, uniformly random behaviour, alpha = N(s, a)^-0.8),
deterministic or with FrozenLake's slip (rlcore/SlipperyGridWorld-v0); max-norm error of the
learned Q over every visited state's actions against soft value iteration's, at growing env-step
budgets. ``algo.bounds: empirical`` projects the table into the bounds of
plugins/tabular/bounds.py after every update; ``q_star_outside_by`` is the most Q* lay outside
the kept bounds on a tried pair at any milestone (the rewards are float32).

composition: experiments/tabular_soft_second_goal.yaml (the maze with a second goal worth 0.8)
learned from a zero table, from the exact soft optimum of the first task
(experiments/tabular_soft_first_goal.yaml, the second goal worth 0), or from the table a run of
the first task learned in 50k steps with the same seed (through learner.init_from, as a user
would); error against the second task's soft optimum.

deep: dqn with soft_beta 5 (experiments/soft_dqn_gridworld.yaml) on the maze made continuing,
gamma 0.99, with and without algo.soft_bounds: clip; error of the network's Q on every state
the agent can be in against soft value iteration's.

rate: the maze of the bounds study made continuing (env.kwargs.continuing: a goal or hole sends
the agent back to the start), learned at several gamma for 200k steps with and without bounds;
(1 - gamma) V(start) of the learned table and of soft value iteration against theta of the
tilted matrix (over the states the agent can be in).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
MILESTONES = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
MAZES = {"deterministic": "rlcore/GridWorld-v0", "slippery": "rlcore/SlipperyGridWorld-v0"}
RATE_STEPS = 200_000
DEEP_MILESTONES = (2_500, 5_000, 10_000, 20_000)


def exact_model(exp):
    import gymnasium as gym

    from rlcore.registry import ensure_env_registered

    ensure_env_registered(exp.config.env.id)
    return gym.make(exp.config.env.id, **exp.config.env.kwargs).unwrapped


def table_values(run) -> tuple[np.ndarray, np.ndarray]:
    """The tabular learner's Q [S, A] and the states it has tried an action in."""
    table = run.learner.modules["q"]
    return table.q.detach().numpy().copy(), (table.counts.numpy() > 0).any(axis=1)


def network_values(run) -> tuple[np.ndarray, np.ndarray]:
    """dqn on one-hot gridworld observations: Q of every state, and the states the agent can
    act in (reachable, not terminal)."""
    import torch

    env = exact_model(run.exp)
    with torch.no_grad():
        q = run.learner.modules["q"](torch.eye(env.num_states))[..., 0].double().numpy()
    return q, env.reachable() & ~env.terminal


def learn(file: str, overrides: list[str], q_exact, milestones=MILESTONES, prior_q=None,
          run_dir=None, values=table_values) -> tuple[dict, np.ndarray, float]:
    """Train ``file`` with ``overrides`` up to the last milestone; returns ({env steps: max-norm
    error over the visited states' actions}, the final table, the most Q* lay outside the kept
    bounds). ``prior_q``: the table's starting values (set before the first round)."""
    import torch

    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import Run

    exp = load_experiment(ROOT / "experiments" / file,
                          [*overrides, f"stop.num_env_steps={milestones[-1]}",
                           "logging.progress_every_s=0"])
    bounded = getattr(exp.algo, "bounds", "none") != "none"
    errors, outside = {}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(exp, Path(run_dir or Path(tmp) / "r"))
        run.t_run, run.steps_at_start = run.clock(), 0
        table = run.learner.modules["q"]
        if prior_q is not None:
            with torch.no_grad():
                table.q.copy_(torch.from_numpy(np.asarray(prior_q, np.float64)))
        try:
            for milestone in milestones:
                while run.env_steps < milestone:
                    run.regime.round()
                q, seen = values(run)
                errors[run.env_steps] = float(np.abs(q[seen] - q_exact[seen]).max())
                if bounded:
                    tried = table.counts.numpy() > 0
                    lo, hi = table.lower.numpy(), table.upper.numpy()
                    gap = np.maximum(lo - q_exact, q_exact - hi)[tried]
                    outside = max(outside, float(gap.max(initial=0.0)))
            if run_dir is not None:
                run.save_checkpoint()
        finally:
            run.pool.close()
            run.watchdog.close()
    return errors, q, outside


def soft_optimum(file: str, overrides=()):
    from rlcore.config import load_experiment
    from rlcore.plugins.tabular.solvers import soft_value_iteration

    exp = load_experiment(ROOT / "experiments" / file, list(overrides))
    env = exact_model(exp)
    beta = getattr(exp.algo, "beta", None) or exp.algo.soft_beta  # tabular or dqn
    return soft_value_iteration(env.P, env.R, env.terminal, exp.algo.gamma, beta)[1]


def run_seed(seed: int, bounds: str = "none", maze: str = "deterministic") -> dict:
    file = "tabular_soft_gridworld.yaml"
    overrides = [f"seed={seed}", f"env.id={MAZES[maze]}", f"algo.bounds={bounds}"]
    errors, _, outside = learn(file, overrides, soft_optimum(file, [f"env.id={MAZES[maze]}"]))
    return {"bench": "soft_q_convergence", "maze": maze, "bounds": bounds, "seed": seed,
            "max_abs_error_by_env_steps": errors, "q_star_outside_by": outside}


def run_composition(seed: int, start: str) -> dict:
    """The second-goal task from ``start``: zero, the first task's exact soft optimum, or the
    table a 50k-step run of the first task learned (learner.init_from)."""
    first, second = "tabular_soft_first_goal.yaml", "tabular_soft_second_goal.yaml"
    q_new = soft_optimum(second, ["learner.init_from=null", "learner.init_keys=[]"])
    overrides = [f"seed={seed}", "learner.init_from=null", "learner.init_keys=[]"]
    prior = soft_optimum(first) if start == "exact" else None
    with tempfile.TemporaryDirectory() as tmp:
        if start == "learned":
            learn(first, [f"seed={seed}"], soft_optimum(first), milestones=(50_000,),
                  run_dir=Path(tmp) / "first")
            overrides = [f"seed={seed}", f"learner.init_from={Path(tmp) / 'first'}"]
        errors, _, _ = learn(second, overrides, q_new, prior_q=prior)
    return {"bench": "soft_q_composition", "start": start, "seed": seed,
            "max_abs_error_by_env_steps": errors}


def run_deep(seed: int, soft_bounds: str) -> dict:
    """dqn with soft_beta on the one-hot maze (experiments/soft_dqn_gridworld.yaml) made
    continuing at gamma 0.99 (at gamma 0.9 on the episodic maze both variants are exact to 1e-3
    by 2.5k steps), with and without clipping its targets to the batch bounds: error of the
    network's Q against Q* over the states the agent can be in."""
    file, harder = "soft_dqn_gridworld.yaml", ["env.kwargs.continuing=true", "algo.gamma=0.99"]
    errors, _, _ = learn(file, [f"seed={seed}", f"algo.soft_bounds={soft_bounds}", *harder],
                         soft_optimum(file, harder), milestones=DEEP_MILESTONES,
                         values=network_values)
    return {"bench": "soft_dqn_bounds", "soft_bounds": soft_bounds, "seed": seed,
            "max_abs_error_by_env_steps": errors}


def run_rate(seed: int, gamma: float, bounds: str = "none") -> dict:
    """(1 - gamma) V(start) learned on the continuing maze, the same from soft value iteration,
    and theta from the tilted matrix over the states the agent can be in."""
    from rlcore.config import load_experiment
    from rlcore.plugins.tabular.solvers import (soft_value, soft_value_iteration,
                                                tilted_solution)

    file = "tabular_soft_gridworld.yaml"
    overrides = ["env.kwargs.continuing=true", f"algo.gamma={gamma}", f"algo.bounds={bounds}"]
    exp = load_experiment(ROOT / "experiments" / file, overrides)
    env, beta = exact_model(exp), exp.algo.beta
    keep = np.flatnonzero(env.reachable())
    theta = tilted_solution(env.P[np.ix_(keep, np.arange(env.num_actions), keep)],
                            env.R[keep], beta)[0]
    V, q_exact, _ = soft_value_iteration(env.P, env.R, env.terminal, gamma, beta)
    errors, q, _ = learn(file, [f"seed={seed}", *overrides], q_exact,
                         milestones=(RATE_STEPS // 4, RATE_STEPS))
    prior = np.full(q.shape, 1.0 / q.shape[1])
    s0 = env.start_state
    return {"bench": "soft_q_rate", "gamma": gamma, "bounds": bounds, "seed": seed,
            "theta_tilted": theta,
            "rate_exact": (1 - gamma) * float(V[s0]),
            "rate_learned": (1 - gamma) * float(soft_value(q, prior, beta)[s0]),
            "max_abs_error_by_env_steps": errors}


def _curves(ax, rows_by_label: dict, title: str) -> None:
    for i, ((label, colour), rows) in enumerate(rows_by_label.items()):
        if not rows:
            continue
        steps = np.array([int(s) for s in rows[0]["max_abs_error_by_env_steps"]])
        errs = np.array([list(r["max_abs_error_by_env_steps"].values()) for r in rows])
        ax.plot(steps, np.median(errs, 0), "o-" if i < 2 else "x--", color=colour,
                label=f"{label} (median of {len(rows)} seeds)")
        ax.fill_between(steps, errs.min(0), errs.max(0), color=colour, alpha=0.2)
    ax.axhline(0.05, color="grey", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="env steps",
           ylabel="max |Q - Q*_soft| over visited (s, a)", title=title)
    ax.legend(fontsize=7)


def exact_rates(gammas) -> list[float]:
    """(1 - gamma) V*_gamma(start) of the continuing maze, by soft value iteration."""
    from rlcore.config import load_experiment
    from rlcore.plugins.tabular.solvers import soft_value_iteration

    out = []
    for gamma in gammas:
        exp = load_experiment(ROOT / "experiments" / "tabular_soft_gridworld.yaml",
                              ["env.kwargs.continuing=true", f"algo.gamma={gamma}"])
        env = exact_model(exp)
        V = soft_value_iteration(env.P, env.R, env.terminal, gamma, exp.algo.beta, tol=1e-10)[0]
        out.append((1 - gamma) * float(V[env.start_state]))
    return out


def figure(lines: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bound_lines = [ln for ln in lines if ln["bench"] == "soft_q_convergence"]
    comp = [ln for ln in lines if ln["bench"] == "soft_q_composition"]
    rate = [ln for ln in lines if ln["bench"] == "soft_q_rate"]
    deep = [ln for ln in lines if ln["bench"] == "soft_dqn_bounds"]
    mazes = sorted({ln["maze"] for ln in bound_lines})
    panels = len(mazes) + bool(comp) + bool(rate) + bool(deep)
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 3.9), squeeze=False)
    axes = list(axes[0])
    for maze in mazes:
        rows = {(label, colour): [ln for ln in bound_lines if ln["maze"] == maze
                                  and ln["bounds"] == bounds]
                for bounds, label, colour in (("none", "soft Q-learning", "tab:blue"),
                                              ("empirical", "with empirical bounds",
                                               "tab:orange"))}
        _curves(axes.pop(0), rows, f"{maze} 3x4 maze, β=5, γ=0.9")
    if comp:
        rows = {(label, colour): [ln for ln in comp if ln["start"] == start]
                for start, label, colour in (
                    ("zero", "from zero", "tab:blue"),
                    ("exact", "from the first task's exact solution", "tab:red"),
                    ("learned", "from its learned table (on the red)", "tab:green"))}
        _curves(axes.pop(0), rows, "second goal, started from the first task")
    if deep:
        rows = {(label, colour): [ln for ln in deep if ln["soft_bounds"] == clip]
                for clip, label, colour in (("none", "deep soft Q", "tab:blue"),
                                            ("clip", "targets clipped to batch bounds",
                                             "tab:orange"))}
        _curves(axes.pop(0), rows, "deep soft Q, continuing one-hot maze, γ=0.99")
    if rate:
        ax = axes.pop(0)
        gammas = sorted({ln["gamma"] for ln in rate})
        x = 1 - np.array(gammas)
        dense = 1 - np.geomspace(0.2, 5e-4, 15)
        ax.plot(1 - dense, exact_rates(dense), "-", color="black",
                label="(1-γ) V*_γ(start), soft value iteration")
        for bounds, shift, colour in (("none", 0.94, "tab:blue"), ("empirical", 1.06, "tab:orange")):
            learned = np.array([[ln["rate_learned"] for ln in rate
                                 if ln["gamma"] == g and ln["bounds"] == bounds] for g in gammas])
            if learned.size == 0:
                continue
            mid = np.median(learned, 1)
            ax.errorbar(x * shift, mid, yerr=[mid - learned.min(1), learned.max(1) - mid],
                        fmt="o", color=colour, capsize=3, ms=4,
                        label=f"learned{' with bounds' if bounds != 'none' else ''}, "
                              f"{RATE_STEPS // 1000}k steps (median, range of "
                              f"{learned.shape[1]} seeds)")
        ax.axhline(rate[0]["theta_tilted"], color="tab:red", ls="--",
                   label=f"θ from the tilted matrix = {rate[0]['theta_tilted']:.4f}")
        ax.set(xscale="log", xlabel="1 - γ", ylabel="reward rate",
               title="continuing maze, β=5: the rate as γ → 1")
        ax.invert_xaxis()
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(rows: list[dict], name: str) -> None:
    steps = list(rows[0]["max_abs_error_by_env_steps"])
    errs = np.array([list(r["max_abs_error_by_env_steps"].values()) for r in rows])
    print(f"\n{name}")
    print("env steps  " + "  ".join(f"{int(s):>8,}" for s in steps))
    for label, row in (("median", np.median(errs, 0)), ("worst", errs.max(0))):
        print(f"{label:<9}  " + "  ".join(f"{e:8.4f}" for e in row))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", nargs="+", default=["bounds", "composition", "rate", "deep"],
                   choices=["bounds", "composition", "rate", "deep"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--bounds", nargs="+", default=["none", "empirical"],
                   choices=["none", "empirical"])
    p.add_argument("--mazes", nargs="+", default=["deterministic", "slippery"], choices=list(MAZES))
    p.add_argument("--gammas", type=float, nargs="+",
                   default=[0.8, 0.9, 0.95, 0.98, 0.99, 0.995])
    p.add_argument("--out")
    p.add_argument("--figure")
    args = p.parse_args()
    jobs = []
    if "bounds" in args.studies:
        jobs += [(run_seed, (seed, bounds, maze)) for maze in args.mazes
                 for bounds in args.bounds for seed in args.seeds]
    if "composition" in args.studies:
        jobs += [(run_composition, (seed, start)) for start in ("zero", "exact", "learned")
                 for seed in args.seeds]
    if "rate" in args.studies:
        jobs += [(run_rate, (seed, gamma, bounds)) for bounds in args.bounds
                 for gamma in args.gammas for seed in args.seeds]
    if "deep" in args.studies:
        jobs += [(run_deep, (seed, clip)) for clip in ("none", "clip") for seed in args.seeds]
    lines = []
    for fn, job_args in jobs:
        line = fn(*job_args)
        lines.append(line)
        print(json.dumps(line), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    for maze in args.mazes:
        for bounds in args.bounds:
            rows = [ln for ln in lines if ln["bench"] == "soft_q_convergence"
                    and ln["maze"] == maze and ln["bounds"] == bounds]
            if rows:
                table(rows, f"{maze}, bounds: {bounds}, Q* outside the kept bounds by at most "
                            f"{max(r['q_star_outside_by'] for r in rows):.1e}")
    for start in ("zero", "exact", "learned"):
        rows = [ln for ln in lines if ln["bench"] == "soft_q_composition" and ln["start"] == start]
        if rows:
            table(rows, f"second goal, started from: {start}")
    for clip in ("none", "clip"):
        rows = [ln for ln in lines if ln["bench"] == "soft_dqn_bounds" and ln["soft_bounds"] == clip]
        if rows:
            table(rows, f"deep soft Q on the one-hot maze, soft_bounds: {clip}")
    rate = [ln for ln in lines if ln["bench"] == "soft_q_rate"]
    if rate:
        print(f"\ncontinuing maze: theta (tilted matrix) = {rate[0]['theta_tilted']:.5f}")
        print("gamma  bounds     (1-g)V* exact  learned median [min, max]     worst max|Q-Q*| at "
              "50k, 200k")
        for gamma in sorted({ln["gamma"] for ln in rate}):
            for bounds in args.bounds:
                rows = [ln for ln in rate if ln["gamma"] == gamma and ln["bounds"] == bounds]
                if not rows:
                    continue
                learned = [ln["rate_learned"] for ln in rows]
                errs = np.array([list(ln["max_abs_error_by_env_steps"].values()) for ln in rows])
                print(f"{gamma:<6} {bounds:<10} {rows[0]['rate_exact']:>13.5f}  "
                      f"{np.median(learned):>9.5f} [{min(learned):.5f}, {max(learned):.5f}]   "
                      + ", ".join(f"{e:.4f}" for e in errs.max(0)))
    if args.figure:
        figure(lines, args.figure)


if __name__ == "__main__":
    main()
