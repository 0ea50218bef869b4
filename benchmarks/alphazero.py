"""AlphaZero benchmarks: search speed, tic-tac-toe time to perfect play, connect four against
pure MCTS. Prints one JSON line per measurement, then a table. Each line records the CPU that
other processes used meanwhile (``cpu_during``, cpu_monitor.py): the 2 cores are shared.

1. ``search``: simulations per second of the PUCT search with the experiments' networks
   (untrained weights, evaluation cache off, one torch thread), for tic-tac-toe and connect
   four: one game with one leaf per forward pass (no batching); 32 games searched together
   (one forward pass per round for all 32 trees); 32 games x 4 virtual-loss leaves each. Also
   the pure-MCTS opponent (random rollouts) on connect four.
   ``mcts-peer``: that pure-MCTS player against OpenSpiel's MCTSBot (random rollouts, uct_c
   2, the peer venv of shared/bench/peers) in one run: searches from the opening and every
   move of self-play games, simulations per second of both and their ratio.
2. ``tictactoe``: experiments/alphazero_tictactoe.yaml per seed, inline, until its evaluation
   finds perfect play (score 0 against minimax over every opening, see
   plugins/alphazero/players.py:all_openings); wall seconds from the trainer's start, the
   moves of self-play, and an independent re-check of all openings.
3. ``connect4``: experiments/alphazero_connect4.yaml with ``stop.wall_s=BUDGET``, then
   ``--games`` games (half from each seat) of the network with search (algo.eval_simulations)
   against pure MCTS with 1000 rollouts per move. ``connect4-eval`` plays the same match with
   saved checkpoints of such a run (the win rate at several training times, measured after).

Usage:
    python benchmarks/alphazero.py search
    python benchmarks/alphazero.py mcts-peer --peer-python $PEERS_DIR/spiel/bin/python
    python benchmarks/alphazero.py tictactoe --seeds 0 1 2
    python benchmarks/alphazero.py connect4 --budget 1800 --games 20 [--set key=value ...]
    python benchmarks/alphazero.py connect4-eval RUN_DIR/checkpoints/step_* --games 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from cpu_monitor import OtherCpu  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def emit(bench: str, metrics: dict, config: dict, cpu: dict) -> dict:
    line = {"bench": bench, "metrics": metrics, "config": config, "cpu_during": cpu,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(line), flush=True)
    return line


def net_for(experiment: str):
    import torch

    from rlcore.config import load_experiment
    from rlcore.run.checks import check_spaces

    exp = load_experiment(ROOT / "experiments" / experiment)
    spaces = check_spaces(exp)
    torch.manual_seed(0)
    return exp, exp.plugin.make_modules(exp.algo, spaces)["net"].eval()


def bench_search(seconds: float) -> list[dict]:
    import numpy as np

    from rlcore.envs.games import make_game
    from rlcore.plugins.alphazero.mcts import MCTS, Node
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import RolloutMCTSPlayer

    lines = []
    for experiment, game_name in (("alphazero_tictactoe.yaml", "tictactoe"),
                                  ("alphazero_connect4.yaml", "connect_four")):
        exp, net = net_for(experiment)
        for games, leaves in ((1, 1), (32, 1), (32, 4)):
            search = MCTS(NetworkEvaluator(net, 0), exp.algo.c_puct, 64, leaves)
            rng = np.random.default_rng(0)
            sims, meter = 0, OtherCpu({os.getpid()}).start(1.0)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                roots = []
                for _ in range(games):  # positions a few random moves in
                    g = make_game(game_name)
                    for _ in range(int(rng.integers(0, 4))):
                        g.apply(int(rng.choice(g.legal_actions())))
                    roots.append(Node(g))
                search.search(roots)
                sims += 64 * games
            dt = time.perf_counter() - t0
            lines.append(emit("alphazero_search", {
                "simulations_per_s": round(sims / dt), "positions_per_forward":
                    round(search.positions_evaluated / search.forward_passes, 2)},
                {"game": game_name, "games": games, "leaves_per_game": leaves,
                 "simulations_per_move": 64, "channels": exp.algo.channels,
                 "blocks": exp.algo.blocks}, meter.result()))
    player = RolloutMCTSPlayer(1000, seed=0)
    meter, t0, moves = OtherCpu({os.getpid()}).start(1.0), time.perf_counter(), 0
    rng = np.random.default_rng(1)
    while time.perf_counter() - t0 < seconds:
        g = make_game("connect_four")
        for _ in range(int(rng.integers(0, 6))):
            g.apply(int(rng.choice(g.legal_actions())))
        player.act(g)
        moves += 1
    dt = time.perf_counter() - t0
    lines.append(emit("alphazero_search", {"simulations_per_s": round(moves * 1000 / dt),
                                           "seconds_per_move": round(dt / moves, 3)},
                      {"game": "connect_four", "player": "mcts:1000 (random rollouts)"},
                      meter.result()))
    return lines


SPIEL_SCRIPT = ROOT.parent / "shared" / "bench" / "peers" / "spiel_mcts_speed.py"


def rollout_mcts_speed(reps: int, games: int) -> dict:
    """The pure-MCTS player (``mcts:1000``: PUCT with uniform priors, one random playout per
    simulation) on connect four, measured as OpenSpiel's spiel_mcts_speed.py measures its
    MCTSBot: ``reps`` searches from the initial position with a fresh tree each, and every
    move of ``games`` games of the player against itself; simulations per second of each."""
    from rlcore.envs.games.connect_four import ConnectFour
    from rlcore.plugins.alphazero.players import RolloutMCTSPlayer

    times = []
    for r in range(reps):
        player, t = RolloutMCTSPlayer(1000, seed=r), time.perf_counter()
        player.act(ConnectFour())
        times.append(time.perf_counter() - t)
    opening = 1000 * reps / sum(times)
    move_s, moves = 0.0, 0
    for g in range(games):
        players = [RolloutMCTSPlayer(1000, seed=2 * g), RolloutMCTSPlayer(1000, seed=2 * g + 1)]
        game = ConnectFour()
        while not game.is_terminal():
            t = time.perf_counter()
            action = players[game.current_player()].act(game)
            move_s += time.perf_counter() - t
            game.apply(action)
            moves += 1
    return {"opening_sims_per_s": round(opening),
            "selfplay_sims_per_s": round(1000 * moves / move_s),
            "opening_sec_per_move": round(sorted(times)[len(times) // 2], 4),
            "selfplay_moves": moves}


def bench_mcts_peer(peer_python: str, reps: int, games: int, rounds: int) -> list[dict]:
    """rlcore's pure MCTS against OpenSpiel's MCTSBot (its Python search over the C++ game,
    uct_c 2, one random rollout per simulation, solve=True) in one run: ``rounds`` times
    rlcore then OpenSpiel, the same searches, each on one core; one line per round."""
    import subprocess

    lines = []
    for rnd in range(rounds):
        meter = OtherCpu({os.getpid()}).start(1.0)
        ours = rollout_mcts_speed(reps, games)
        ours_cpu = meter.result()
        out = subprocess.run(
            [peer_python, str(SPIEL_SCRIPT), "--seed", str(rnd), "--games", "connect_four",
             "--sims", "1000", "--opening-reps", str(reps), "--selfplay-games", str(games),
             "--match-games", "2", "--match-sims", "100,10"],
            capture_output=True, text=True, check=True, cwd=SPIEL_SCRIPT.parent)
        spiel = json.loads(out.stdout.strip().splitlines()[-1])["metrics"]
        theirs = {"opening_sims_per_s": round(spiel["connect_four_1000_opening_sims_per_s"]),
                  "selfplay_sims_per_s": round(spiel["connect_four_1000_selfplay_sims_per_s"])}
        lines.append(emit("mcts_vs_openspiel", {
            "rlcore": ours, "open_spiel": theirs,
            "ratio_opening": round(ours["opening_sims_per_s"] / theirs["opening_sims_per_s"], 2),
            "ratio_selfplay": round(ours["selfplay_sims_per_s"] / theirs["selfplay_sims_per_s"], 2)},
            {"game": "connect_four", "simulations": 1000, "opening_reps": reps,
             "selfplay_games": games, "round": rnd, "cpu": bench_common.host_info()["cpu_model"]}, ours_cpu))
    return lines


def bench_tictactoe(seeds: list[int]) -> list[dict]:
    import torch

    from rlcore.learner.core import load_numpy_weights
    from rlcore.run.lifecycle import train_experiment
    from rlcore.envs.games.tictactoe import TicTacToe
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import MinimaxPlayer, SearchPlayer, all_openings

    torch.set_num_threads(1)
    lines = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            meter = OtherCpu({os.getpid()}).start(1.0)
            summary, trainer = train_experiment(ROOT / "experiments/alphazero_tictactoe.yaml",
                                                Path(tmp) / "run", [f"seed={seed}"])
            cpu = meter.result()
        load_numpy_weights(trainer.eval_modules, trainer.learner.weights())
        player = SearchPlayer(NetworkEvaluator(trainer.eval_modules["net"], 0),
                              trainer.algo.eval_simulations, trainer.algo.c_puct)
        lines_ = all_openings(TicTacToe, player, MinimaxPlayer(seed=None))
        lost = sum(r < 0 for _, _, r in lines_)
        lines.append(emit("alphazero_tictactoe_perfect_play", {
            "perfect": summary["stop_reason"] == "eval_return" and lost == 0,
            "wall_s": summary["wall_s"], "self_play_moves": summary["env_steps"],
            "games": summary["games_played"], "learner_steps": summary["updates"],
            "recheck_lines": len(lines_), "recheck_lost": int(lost)},
            {"seed": seed, "experiment": "experiments/alphazero_tictactoe.yaml"}, cpu))
    return lines


def bench_connect4(budget: float, games: int, overrides: list[str]) -> list[dict]:
    import torch

    from rlcore.envs.games.connect_four import ConnectFour
    from rlcore.learner.core import load_numpy_weights
    from rlcore.run.lifecycle import train_experiment
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import RolloutMCTSPlayer, SearchPlayer, match

    torch.set_num_threads(1)
    run_dir = Path(tempfile.mkdtemp(prefix="az-c4-"))
    meter = OtherCpu({os.getpid()}, learn_sessions=True).start(2.0)
    summary, trainer = train_experiment(
        ROOT / "experiments/alphazero_connect4.yaml", run_dir / "run",
        [f"stop.wall_s={budget}", "eval.every_env_steps=0", "logging.progress_every_s=60",
         'algo.eval_opponents=["random"]', *overrides])
    train_cpu = meter.result()
    load_numpy_weights(trainer.eval_modules, trainer.learner.weights())
    player = SearchPlayer(NetworkEvaluator(trainer.eval_modules["net"], 100_000),
                          trainer.algo.eval_simulations, trainer.algo.c_puct)
    meter = OtherCpu({os.getpid()}).start(2.0)
    t0 = time.perf_counter()
    result = match(ConnectFour, player, RolloutMCTSPlayer(1000, seed=0), games)
    return [emit("alphazero_connect4_vs_mcts1000", {
        **{k: result[k] for k in ("win", "draw", "loss", "games")},
        "train_wall_s": summary["wall_s"], "self_play_moves": summary["env_steps"],
        "self_play_games": summary["games_played"], "learner_steps": summary["updates"],
        "eval_wall_s": round(time.perf_counter() - t0, 1), "train_cpu_during": train_cpu},
        {"budget_s": budget, "overrides": overrides, "eval_simulations":
         trainer.algo.eval_simulations, "run_dir": str(run_dir / "run")}, meter.result())]


def bench_connect4_checkpoints(paths: list[str], games: int) -> list[dict]:
    """Each checkpoint folder (RUN_DIR/checkpoints/step_*) of a connect four run against
    ``mcts:1000``, as ``bench_connect4`` evaluates the end of a run: read a run's win rate at
    several training times without stopping it to evaluate."""
    from rlcore.envs.games.connect_four import ConnectFour
    from rlcore.regimes.game import _load_for_play
    from rlcore.plugins.alphazero.networks import NetworkEvaluator
    from rlcore.plugins.alphazero.players import RolloutMCTSPlayer, SearchPlayer, match

    lines = []
    for path in paths:
        exp, net, meta = _load_for_play(Path(path))
        player = SearchPlayer(NetworkEvaluator(net, 100_000), exp.algo.eval_simulations,
                              exp.algo.c_puct)
        meter = OtherCpu({os.getpid()}).start(2.0)
        t0 = time.perf_counter()
        result = match(ConnectFour, player, RolloutMCTSPlayer(1000, seed=0), games)
        lines.append(emit("alphazero_connect4_vs_mcts1000", {
            **{k: result[k] for k in ("win", "draw", "loss", "games")},
            "train_wall_s": meta["wall_s"], "self_play_moves": meta["env_steps"],
            "self_play_games": meta.get("games_played"),
            "learner_steps": meta["learner"]["updates"],
            "eval_wall_s": round(time.perf_counter() - t0, 1)},
            {"checkpoint": str(path), "eval_simulations": exp.algo.eval_simulations},
            meter.result()))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--seconds", type=float, default=5.0)
    s = sub.add_parser("mcts-peer", help="pure MCTS against OpenSpiel's MCTSBot, same run")
    s.add_argument("--peer-python", required=True, help="python of the OpenSpiel venv "
                   "(shared/bench/peers/install.sh spiel)")
    s.add_argument("--reps", type=int, default=20)
    s.add_argument("--games", type=int, default=4)
    s.add_argument("--rounds", type=int, default=2)
    s = sub.add_parser("tictactoe")
    s.add_argument("--seeds", type=int, nargs="+", default=[0])
    s = sub.add_parser("connect4")
    s.add_argument("--budget", type=float, default=1800)
    s.add_argument("--games", type=int, default=20)
    s.add_argument("--set", action="append", default=[])
    s = sub.add_parser("connect4-eval", help="checkpoints of a connect four run vs mcts:1000")
    s.add_argument("checkpoints", nargs="+", help="RUN_DIR/checkpoints/step_* folders")
    s.add_argument("--games", type=int, default=20)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # actors and the learner use one thread each (see plugin.py)
    if args.what == "search":
        lines = bench_search(args.seconds)
        print(f"\n{'game':<13} {'setting':<34} {'simulations/s':>13}")
        for ln in lines:
            c = ln["config"]
            setting = c.get("player") or (f"{c['games']} games x {c['leaves_per_game']} leaves"
                                          f" ({ln['metrics']['positions_per_forward']}/pass)")
            print(f"{c['game']:<13} {setting:<34} {ln['metrics']['simulations_per_s']:>13,}")
    elif args.what == "mcts-peer":
        lines = bench_mcts_peer(args.peer_python, args.reps, args.games, args.rounds)
        print(f"\n{'round':>5} {'':<10} {'opening sims/s':>15} {'self-play sims/s':>17}")
        for ln in lines:
            m = ln["metrics"]
            for lib in ("rlcore", "open_spiel"):
                print(f"{ln['config']['round']:>5} {lib:<10} {m[lib]['opening_sims_per_s']:>15,} "
                      f"{m[lib]['selfplay_sims_per_s']:>17,}")
            print(f"{'':>5} {'ratio':<10} {m['ratio_opening']:>15} {m['ratio_selfplay']:>17}")
    elif args.what == "tictactoe":
        lines = bench_tictactoe(args.seeds)
        print(f"\n{'seed':>4} {'perfect':>8} {'wall_s':>8} {'moves':>8} {'other cores':>11}")
        for ln in lines:
            m = ln["metrics"]
            print(f"{ln['config']['seed']:>4} {str(m['perfect']):>8} {m['wall_s']:>8.1f} "
                  f"{m['self_play_moves']:>8,} {ln['cpu_during']['other_processes_cores']:>11}")
    elif args.what == "connect4-eval":
        for ln in bench_connect4_checkpoints(args.checkpoints, args.games):
            m = ln["metrics"]
            print(f"after {m['train_wall_s']:.0f} s of training ({m['self_play_moves']:,} moves): "
                  f"vs mcts:1000 W {m['win']:.2f} D {m['draw']:.2f} L {m['loss']:.2f} "
                  f"over {m['games']} games")
    else:
        (ln,) = bench_connect4(args.budget, args.games, args.set)
        m = ln["metrics"]
        print(f"\nafter {m['train_wall_s']:.0f} s of training ({m['self_play_games']:,} games): "
              f"vs mcts:1000 W {m['win']:.2f} D {m['draw']:.2f} L {m['loss']:.2f} "
              f"over {m['games']} games")


if __name__ == "__main__":
    main()
