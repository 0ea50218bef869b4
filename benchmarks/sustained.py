"""Sustained and final performance: an experiment file trained to its full env-step budget
(``stop.eval_return`` off) over seeds, beside SB3's DQN in the same run where a peer exists.

Per run one JSON line (peers' format, see bench_common.py) with
  steps_to_sustained_threshold  the env step of the evaluation from which every later one
                                (the final included) stays >= the threshold ("holds from")
  final_eval_mean / _std        the deterministic evaluation at the full budget
  wall_s                        process start to the end of the run (imports, evaluations in)
  steps_to_threshold            the first evaluation >= the threshold (first touch, extra)
and the curve (``details.evals``: [env steps, eval mean]); rlcore runs also carry learner
diagnostics every 1,000 env steps (``details.learner``: [env steps, mean Q(s, a) of the
sampled batch, loss, gradient norm, learning rate]). Then a summary table.

    python benchmarks/sustained.py experiments/dqn_cartpole.yaml --seeds 0 1 2 3 4 \
        --sb3 /tmp/peers/sb3/bin/python --out results.jsonl
    python benchmarks/sustained.py experiments/c51_cartpole.yaml --seeds 0 1 --set learner.lr=1e-3
    python benchmarks/sustained.py --table results.jsonl [--figure curves.png]  # saved lines
    python benchmarks/sustained.py experiments/dqn_cartpole.yaml --keep-runs runs/dqn5 && \
        rlcore plot runs/dqn5 -o curves.png   # the run folders kept, drawn by rlcore plot

Each run is a child process of its own (wall seconds count interpreter start-up and imports,
as the peers' scripts do); runs go one after another, never in parallel.
"""

from __future__ import annotations

import bench_common as bc  # first: starts the process clock

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The benchmarks folder holds mujoco.py, which would shadow the mujoco package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != bc.ROOT / "benchmarks"]

PEERS = bc.ROOT.parent / "shared" / "bench" / "peers"
# SB3 peers by env id and algorithm (RL-Zoo settings; see the peer scripts)
SB3_PEERS = {("CartPole-v1", "dqn"): "sb3_dqn_cartpole.py",
             ("CartPole-v1", "ppo"): "sb3_ppo_cartpole.py"}


# ---------------------------------------------------------------------------- child


def replay_episodes(run, every: int) -> dict | None:
    """From the replay at the end (CartPole's 100k buffer holds the whole run): per ``every``
    transitions, how many episodes ended by a termination (the only transitions whose target
    is the reward alone) and by a truncation; and the 1-based step within its episode of every
    truncated transition (500 for CartPole-v1: the time limit, bootstrapped from)."""
    buf = getattr(run.regime, "buffer", None)
    if buf is None or buf.S != 1 or buf.K != 1:
        return None
    import numpy as np

    head = int(buf.count[0])
    a = np.arange(max(0, head - buf.C), head)  # absolute slots still held, oldest first
    p = a % buf.C
    done = buf.complete[0, p]
    term, trunc = buf.terminated[0, p] & done, buf.truncated[0, p] & done
    k = np.cumsum(done)  # transitions up to each slot
    bins = (k[done] - 1) // every
    n = int(bins.max()) + 1 if len(bins) else 0
    first_kept = int(buf.added - done.sum())
    return {"transitions_before_oldest_kept": first_kept, "every": every,
            "terminations": np.bincount(bins, term[done], n).astype(int).tolist(),
            "truncations": np.bincount(bins, trunc[done], n).astype(int).tolist(),
            "truncated_at_episode_step": sorted(set((a[trunc] - buf.ep_start[0, p[trunc]] + 1)
                                                    .tolist()))}


class Probe:
    """At each evaluation, the learner's action values on a fixed set of replayed states (drawn
    with a generator of its own, so the run's replay sampling is untouched): their mean, the
    mean action gap max_a Q - min_a Q, and the share of the states whose greedy action changed
    since the previous evaluation (policy churn). dqn, qrdqn (mean of the quantiles) and c51
    (expectation over the support); others: nothing."""

    def __init__(self, run, size: int = 1024):
        self.run, self.size, self.obs, self.greedy, self.rows = run, size, None, None, []

    def values(self, obs):
        import torch

        algo, exp = self.run.exp.config.algorithm, self.run.exp
        with torch.no_grad():
            out = self.run.learner.modules["q"](torch.as_tensor(obs))
            if algo == "c51":
                a = exp.algo
                support = torch.linspace(a.v_min, a.v_max, a.num_atoms)
                return (torch.softmax(out, -1) * support).sum(-1).numpy()
            return out.mean(-1).numpy() if algo in ("dqn", "qrdqn") else None

    def __call__(self, steps: int) -> None:
        import numpy as np

        buf = getattr(self.run.regime, "buffer", None)
        if buf is None or buf.K != 1 or self.run.exp.config.algorithm not in ("dqn", "qrdqn", "c51"):
            return
        if self.obs is None:  # the first evaluation's replay (exploration: varied states)
            s, p = np.nonzero(buf.complete)
            pick = np.random.default_rng(0).choice(len(s), min(self.size, len(s)), replace=False)
            self.obs = buf.frames[s[pick], p[pick]].copy()
        q = self.values(self.obs)
        greedy = q.argmax(-1)
        churn = None if self.greedy is None else float((greedy != self.greedy).mean())
        self.greedy = greedy
        self.rows.append([steps, round(float(q.mean()), 2),
                          round(float((q.max(-1) - q.min(-1)).mean()), 3), churn])


def child(args) -> int:
    """One rlcore run to the full budget; prints its JSON line."""
    from rlcore.config import load_experiment
    from rlcore.run.lifecycle import Run
    from rlcore.run.logging import RunLogger

    class DiagLogger(RunLogger):
        """Keeps the learner's scalars (logged every 1,000 env steps) for the JSON line."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.learner: list = []
            self.rollout: list = []

        def scalars(self, prefix, values, step):
            if prefix == "rollout" and values.get("episode_return_mean100") is not None:
                self.rollout.append([step, round(values["episode_return_mean100"], 1)])
            if prefix == "learner" and values:
                self.learner.append([step, values.get("q_mean"), values.get("loss"),
                                     values.get("grad_norm"), values.get("lr")])
            super().scalars(prefix, values, step)

    overrides = [f"seed={args.seed}", "stop.eval_return=null", "logging.progress_every_s=0",
                 "checkpoint.every_env_steps=0", *args.set]
    exp = load_experiment(args.experiment, overrides)
    evals: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        # --keep-runs: the run folder (config.yaml, TensorBoard events) stays, for rlcore plot
        run_dir = (Path(args.keep_runs) / f"{Path(args.experiment).stem}_s{args.seed}"
                   if args.keep_runs else Path(tmp) / "r")
        if args.keep_runs:
            from rlcore.run.logging import record_config

            run_dir.mkdir(parents=True, exist_ok=False)  # never into an earlier run's folder
            record_config(run_dir, exp)
        run = Run(exp, run_dir)
        logger = DiagLogger(run_dir, 0, 0)
        probe = Probe(run)

        def on_eval(rec: dict) -> None:
            evals.append({"steps": rec["env_steps"], "mean": rec["mean"], "std": rec["std"],
                          "wall_s": bc.elapsed()})
            probe(rec["env_steps"])

        t = time.perf_counter()
        try:
            summary = run.run(logger, on_eval=on_eval)
        finally:
            logger.close()
            bc.shutdown_ray()
        run_s = time.perf_counter() - t
    first = next((e for e in evals if e["mean"] >= args.threshold), None)
    hold = bc.sustained_hit(evals, args.threshold)
    cfg = exp.config
    metrics = {"steps_to_sustained_threshold": hold and hold["steps"],
               "final_eval_mean": evals[-1]["mean"], "final_eval_std": evals[-1]["std"],
               "wall_s": bc.elapsed(), "steps_to_threshold": first and first["steps"],
               "wall_to_threshold_s": first and first["wall_s"],
               "total_steps": summary["env_steps"], "updates": summary.get("updates"),
               "train_steps_per_s": summary["env_steps"] / max(run_s - run.eval_s, 1e-9),
               "eval_s": run.eval_s}
    config = {"experiment": str(Path(args.experiment).resolve().relative_to(bc.ROOT)),
              "overrides": overrides, "algorithm": cfg.algorithm, "env_id": cfg.env.id,
              "total_steps": cfg.stop.num_env_steps, "eval_every": cfg.eval.every_env_steps,
              "eval_episodes": cfg.eval.episodes}
    details = {"threshold": args.threshold, "stop_reason": summary["stop_reason"],
               "evals": [[e["steps"], round(e["mean"], 1)] for e in evals],
               "learner": logger.learner,
               "learner_format": "[env_steps, q_mean, loss, grad_norm, lr]",
               "train_return_mean100": logger.rollout,
               "probe": probe.rows,
               "probe_format": "[env_steps, mean Q, mean action gap, greedy-action churn]",
               "replay": replay_episodes(run, cfg.eval.every_env_steps),
               "load_avg_end": bc.load_avg()}
    line = bc.make_line(f"rlcore_{cfg.algorithm}_sustained", args.seed, metrics, config, details)
    line["task"] = f"{cfg.algorithm}_{cfg.env.id}"
    bc.emit(line, None)
    return 0


# ---------------------------------------------------------------------------- parent


def run_child(cmd: list[str], cwd: Path, timeout: float) -> tuple[dict | None, str | None]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout:g}s"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        return None, f"exit {res.returncode}: {res.stderr[-1500:]}"
    return json.loads(lines[-1]), None


def sb3_line(args, seed: int, script: str, total: int) -> dict:
    cmd = [args.sb3, str(PEERS / script), "--seed", str(seed), "--total-steps", str(total),
           "--torch-threads", "1", "--threshold", str(args.threshold)]
    t = time.time()
    line, error = run_child(cmd, PEERS, args.timeout)
    if error:
        return {"bench": f"sb3_{script}", "lib": "stable-baselines3", "seed": seed, "error": error}
    m = line["metrics"]
    m["wall_s"] = round(time.time() - t, 2)  # process start to end, as the parent saw it
    line.setdefault("details", {})["load_avg_end"] = bc.load_avg()
    return line


def rlcore_line(args, seed: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--seed", str(seed),
           "--threshold", str(args.threshold), str(args.experiment)]
    for item in args.set:
        cmd += ["--set", item]
    if args.keep_runs:
        cmd += ["--keep-runs", str(Path(args.keep_runs).resolve())]
    line, error = run_child(cmd, bc.ROOT, args.timeout)
    if error:
        return {"bench": "rlcore_sustained", "lib": "rlcore", "seed": seed, "error": error,
                "config": {"experiment": str(args.experiment), "overrides": args.set}}
    return line


def label(line: dict) -> str:
    if line.get("lib") != "rlcore":
        return f"{line.get('lib')} {line.get('task', '')}".strip()
    cfg = line.get("config", {})
    sets = [o for o in cfg.get("overrides", []) if not o.startswith(
        ("seed=", "stop.eval_return=", "logging.", "checkpoint."))]
    return " ".join([Path(cfg.get("experiment", "?")).name, *sets])


def print_table(lines: list[dict], threshold: float) -> None:
    groups: dict[str, list[dict]] = {}
    for ln in lines:
        groups.setdefault(label(ln), []).append(ln)
    print(f"\nheld >= {threshold:g} from (env steps; '-' = not held at the end), final "
          "deterministic evaluation at the full budget, wall seconds from process start")
    print(f"{'seed':>6} {'holds from':>10} {'final':>13} {'wall_s':>7} {'first':>7}")
    for name, runs in groups.items():
        print(name)
        for ln in sorted(runs, key=lambda x: x["seed"]):
            if "error" in ln:
                print(f"{ln['seed']:>6}  FAILED: {ln['error'][:80]}")
                continue
            m = ln["metrics"]
            final = f"{m['final_eval_mean']:.1f} ± {m['final_eval_std']:.1f}"
            print(f"{ln['seed']:>6} {bc.fmt(m['steps_to_sustained_threshold']):>10} {final:>13} "
                  f"{bc.fmt(m.get('wall_s'), 0):>7} {bc.fmt(m['steps_to_threshold']):>7}")
        ok = [ln for ln in runs if "error" not in ln]
        if ok:
            held = [ln["metrics"]["steps_to_sustained_threshold"] for ln in ok]
            finals = [ln["metrics"]["final_eval_mean"] for ln in ok]
            walls = [ln["metrics"].get("wall_s") or 0 for ln in ok]
            worst = max(held) if all(h is not None for h in held) else None
            print(f"{'all':>6} {'max ' + bc.fmt(worst):>10} {'min ' + format(min(finals), '.1f'):>13} "
                  f"{'med ' + format(statistics.median(walls), '.0f'):>7}  "
                  f"({sum(h is not None for h in held)}/{len(ok)} held, "
                  f"mean final {statistics.mean(finals):.1f})")


def figure(lines: list[dict], threshold: float, out: str) -> None:
    """Per group of runs, one row: evaluation mean vs env steps per seed, and the learner's
    mean Q(s, a) of the sampled batches (rlcore runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict]] = {}
    for ln in lines:
        if "error" not in ln:
            groups.setdefault(label(ln), []).append(ln)
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 2.6 * len(groups)), squeeze=False)
    for (name, runs), (ax, qax) in zip(groups.items(), axes):
        for ln in sorted(runs, key=lambda x: x["seed"]):
            ev = ln["details"]["evals"]
            # rlcore: [steps, mean]; the SB3 peers: [steps, wall_s, mean]
            ev = [(e["steps"], e["mean"]) if isinstance(e, dict) else (e[0], e[-1]) for e in ev]
            ax.plot([e[0] for e in ev], [e[1] for e in ev], marker=".", label=f"seed {ln['seed']}")
            learner = [r for r in ln["details"].get("learner") or [] if r[1] is not None]
            if learner:
                qax.plot([r[0] for r in learner], [r[1] for r in learner], label=f"seed {ln['seed']}")
                if max(r[1] for r in learner) > 1000:  # a diverging Q on a readable scale
                    qax.set_yscale("symlog", linthresh=100)
        ax.axhline(threshold, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 520)
        ax.set_title(name if len(name) < 110 else name[:107] + "...", fontsize=7)
        ax.set_ylabel("eval return")
        ax.legend(fontsize=6, loc="lower right")
        if not qax.lines:  # a peer's row: no learner diagnostics
            qax.set_axis_off()
            continue
        qax.set_title("mean Q(s, a) of sampled batches", fontsize=8)
        qax.axhline(100, color="grey", lw=0.8, ls="--")  # 1/(1 - gamma): the largest return
    for ax in axes[-1]:
        ax.set_xlabel("env steps")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"figure: {out}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="experiment override for every run (repeatable)")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--sb3", default=None, help="python of the SB3 venv: run its peer beside")
    p.add_argument("--out", help="append the JSON lines to this file")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    p.add_argument("--table", nargs="+", help="print the table of these JSON-line files")
    p.add_argument("--figure", help="with --table: draw the curves into this PNG")
    p.add_argument("--keep-runs", default=None, metavar="DIR",
                   help="keep each rlcore run folder as DIR/<experiment>_s<seed> (rlcore plot)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    if args.table:
        lines = [json.loads(t) for f in args.table for t in Path(f).read_text().splitlines()
                 if t.startswith("{")]
        print_table(lines, args.threshold)
        if args.figure:
            figure(lines, args.threshold, args.figure)
        return 0
    if args.experiment is None:
        raise SystemExit("an experiment file is needed (or --table FILE)")
    from rlcore.config import load_experiment

    cfg = load_experiment(args.experiment, [f"seed={args.seeds[0]}", *args.set]).config
    peer = SB3_PEERS.get((cfg.env.id, cfg.algorithm)) if args.sb3 else None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for seed in args.seeds:
        lines.append(rlcore_line(args, seed))
        bc.emit(lines[-1], args.out)
        if peer:
            lines.append(sb3_line(args, seed, peer, cfg.stop.num_env_steps))
            bc.emit(lines[-1], args.out)
    print_table(lines, args.threshold)
    return 1 if any("error" in ln for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
