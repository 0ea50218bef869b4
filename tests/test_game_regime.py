"""The game regime is the core's, not alphazero's: a second game-playing plugin (tests/
valuebot.py: a value network with one-ply lookahead, no search) trains, evaluates, checkpoints
and resumes through it, in a process that never imports alphazero."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

SCRIPT = textwrap.dedent("""
    import json, sys
    from rlcore import registry
    from rlcore.run.lifecycle import train_experiment, make_run
    registry.register_algorithm("valuebot", "valuebot:PLUGIN")
    summary, run = train_experiment(sys.argv[1], sys.argv[2])
    again = make_run(run.exp, sys.argv[2], resume=True)
    again.pool.close()
    loaded = sorted(m for m in sys.modules if m.startswith(("rlcore.plugins", "rlcore.envs")))
    print("RESULT " + json.dumps({"summary": summary, "modules": loaded,
                                  "resumed_games": len(again.regime.store),
                                  "games": len(run.regime.store)}))
""")


def test_a_second_game_plugin_runs_on_the_game_regime_without_alphazero(tmp_path):
    exp = tmp_path / "valuebot.yaml"
    exp.write_text(yaml.safe_dump({
        "algorithm": "valuebot", "seed": 0, "env": {"id": "rlcore/TicTacToe-v0"},
        "algo": {"games_per_round": 8, "updates_per_round": 4, "batch_size": 32,
                 "min_positions": 32},
        "stop": {"num_env_steps": 300}, "eval": {"episodes": 10, "every_env_steps": 150},
        "logging": {"progress_every_s": 0}}))
    tests = Path(__file__).parent
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(exp), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, cwd=tests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    summary = out["summary"]
    assert summary["regime"] == "game" and summary["game"] == "tictactoe"
    assert summary["env_steps"] >= 300 and summary["games_played"] % 8 == 0
    assert summary["updates"] > 0 and summary["stop_reason"] == "num_env_steps"
    assert set(summary["eval_opponents"]) == {"random"} and len(summary["evals"]) >= 2
    assert out["resumed_games"] == out["games"] > 0  # the game store came back
    # the games came from the games env plugin; nothing of alphazero was imported
    assert not any(m.startswith("rlcore.plugins") for m in out["modules"]), out["modules"]
    assert "rlcore.envs.games" in out["modules"]
