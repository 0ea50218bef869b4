#!/usr/bin/env bash
# rlcore vs Stable-Baselines3, PPO on CartPole, in one run on this machine:
#
#   bash benchmarks/run_vs_sb3.sh [RESULTS.jsonl]        (default /tmp/bench_results.jsonl)
#
# Runs the peers' harness (bench/peers/run_all.sh: installs or reuses the SB3 venv, runs
# sb3_ppo_cartpole.py for each seed) with benchmarks/cartpole.py as its EXTRA_BENCH (every seed
# in Ray and in inline mode, then the throughput sweep), so both libraries' lines land in
# RESULTS.jsonl and the Markdown summary in RESULTS.jsonl.md.
# benchmarks/cpu_monitor.py logs, every 2 s, how much CPU *other* processes took meanwhile
# (RESULTS.jsonl.cpu.log): on 2 cores a concurrent job ruins a timing.
#
# Knobs: SEEDS="0 1 2", PEERS=<bench/peers folder>, PY=<python with rlcore installed>.
set -uo pipefail
OUT=${1:-/tmp/bench_results.jsonl}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PEERS=${PEERS:-$(cd "$ROOT/../shared/bench/peers" 2>/dev/null && pwd)}
PY=${PY:-$ROOT/.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
[ -f "$PEERS/run_all.sh" ] || { echo "run_vs_sb3.sh: no run_all.sh in PEERS=$PEERS" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" "$OUT.md" "$OUT.cpu.log"

# A session of its own: the monitor counts the sessions the harness runs in as its own, and
# the caller's (a terminal's) may hold other work.
(cd "$PEERS" && ONLY=sb3_ppo_cartpole SEEDS_sb3_ppo_cartpole="$SEEDS" \
  EXTRA_BENCH="$PY $HERE/cartpole.py --seeds $SEEDS --out \"\$1\"" \
  exec setsid -w bash run_all.sh "$OUT") &
run=$!
"$PY" "$HERE/cpu_monitor.py" --root "$run" --out "$OUT.cpu.log" &
mon=$!
wait "$run"
rc=$?
wait "$mon"
echo "== CPU taken by other processes meanwhile: $(tail -n 1 "$OUT.cpu.log")"
exit $rc
