#!/usr/bin/env bash
# rlcore vs Stable-Baselines3, PPO training speed on HalfCheetah-v5 with the RL-Zoo settings, in
# one run on this machine, plus the rollout throughput against raw MuJoCo:
#
#   bash benchmarks/run_mujoco_vs_sb3.sh [RESULTS.jsonl]     (default /tmp/bench_mujoco.jsonl)
#
# Runs the peers' harness (bench/peers/run_all.sh installs or reuses the SB3 venv and runs
# sb3_ppo_halfcheetah.py, 50k steps, for each seed), then benchmarks/mujoco.py speed (same
# budget and hyperparameters, experiments/ppo_halfcheetah.yaml) and throughput. Both
# libraries' lines land in RESULTS.jsonl and the summary table in RESULTS.jsonl.md.
# benchmarks/cpu_monitor.py logs the CPU other processes took meanwhile (RESULTS.jsonl.cpu.log).
#
# Both learners use one torch thread (SB3_ARGS="--torch-threads 1"; rlcore's default on a machine
# with 2 cores): on 2 cores a second OpenMP thread stalls whenever anything else runs. Set
# SB3_ARGS="" for SB3's own default (all cores).
# Knobs: SEEDS="0 1", STEPS=50000, SB3_ARGS, PEERS=<bench/peers folder>, PY=<python with rlcore>.
set -uo pipefail
OUT=${1:-/tmp/bench_mujoco.jsonl}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PEERS=${PEERS:-$(cd "$ROOT/../shared/bench/peers" 2>/dev/null && pwd)}
PY=${PY:-$ROOT/.venv/bin/python}
SEEDS=${SEEDS:-0 1}
STEPS=${STEPS:-50000}
SB3_ARGS=${SB3_ARGS---torch-threads 1}
[ -f "$PEERS/run_all.sh" ] || { echo "run_mujoco_vs_sb3.sh: no run_all.sh in PEERS=$PEERS" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" "$OUT.md" "$OUT.cpu.log"

ours="for s in $SEEDS; do $PY $HERE/mujoco.py speed $ROOT/experiments/ppo_halfcheetah.yaml --seeds \$s --steps $STEPS --out \"\$1\" || exit 1; done"
ours="$ours; $PY $HERE/mujoco.py throughput $ROOT/experiments/ppo_halfcheetah.yaml --envs 1 8 16 --out \"\$1\""
(cd "$PEERS" && ONLY=sb3_ppo_halfcheetah SEEDS_sb3_ppo_halfcheetah="$SEEDS" \
  ARGS_sb3_ppo_halfcheetah="--total-steps $STEPS $SB3_ARGS" EXTRA_BENCH="$ours" \
  exec setsid -w bash run_all.sh "$OUT") &
run=$!
"$PY" "$HERE/cpu_monitor.py" --root "$run" --out "$OUT.cpu.log" &
mon=$!
wait "$run"
rc=$?
wait "$mon"
echo "== CPU taken by other processes meanwhile: $(tail -n 1 "$OUT.cpu.log")"
exit $rc
