"""Continue a `benchmarks/alphazero.py connect4` run from its last checkpoint (game store
included) up to a cumulative wall budget, then play it against mcts:1000.
    python benchmarks/results/alphazero_2026-11-21b/connect4_resume.py RUN_DIR TOTAL_S GAMES"""
import json, os, sys, time
sys.path.insert(0, "benchmarks")
import torch
torch.set_num_threads(1)
from cpu_monitor import OtherCpu
from rlcore.config import load_experiment
from rlcore.logging import RunLogger
from rlcore.loops import make_trainer
from rlcore.learner import load_numpy_weights
from rlcore.envs.games.connect_four import ConnectFour
from rlcore.plugins.alphazero.networks import NetworkEvaluator
from rlcore.plugins.alphazero.players import RolloutMCTSPlayer, SearchPlayer, match
run, total, games = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
exp = load_experiment("experiments/alphazero_connect4.yaml", [
    f"stop.wall_s={total}", "stop.num_env_steps=4000000", "eval.every_env_steps=0",
    "logging.progress_every_s=60", 'algo.eval_opponents=["random"]', "checkpoint.keep=1000"])
meter = OtherCpu({os.getpid()}, learn_sessions=True).start(2.0)
tr = make_trainer(exp, run, resume=True)
print(f"resumed at {tr.env_steps:,} steps, {tr.wall_offset:.0f} s, store {len(tr.store):,} games", flush=True)
logger = RunLogger(run, tr.env_steps, 60)
summary = tr.run(logger); logger.close()
cpu = meter.result()
load_numpy_weights(tr.eval_modules, tr.learner.weights())
player = SearchPlayer(NetworkEvaluator(tr.eval_modules["net"], 100_000), tr.algo.eval_simulations, tr.algo.c_puct)
t0 = time.perf_counter()
res = match(ConnectFour, player, RolloutMCTSPlayer(1000, seed=0), games)
print(json.dumps({"bench": "alphazero_connect4_vs_mcts1000", "metrics": {
    **{k: res[k] for k in ("win", "draw", "loss", "games")}, "train_wall_s": summary["wall_s"],
    "self_play_moves": summary["env_steps"], "self_play_games": summary["games_played"],
    "learner_steps": summary["updates"], "eval_wall_s": round(time.perf_counter() - t0, 1),
    "train_cpu_during": cpu}, "config": {"budget_s": total, "resumed_from": summary["resumed_from"]}}),
    flush=True)
