#!/usr/bin/env bash
# The GPU path measured on a machine with an NVIDIA GPU, in under 8 minutes: a fresh venv with
# a CUDA build of torch, then benchmarks/gpu_check.py (learner updates/s on GPU and CPU for PPO
# MLP/CNN and DQN/C51 CNN, GPU-batched CNN inference for Atari collection against the raw
# ale-py rate, a short DQN Pong run with the learner on the GPU). The JSON lines go to
# benchmarks/results/gpu_<date>.jsonl and a table is appended to benchmarks/RESULTS.md.
#
#   benchmarks/gpu_check.sh                     # torch from the registry (PyPI's Linux wheel is a CUDA build)
#   WHEELS=/path/to/wheels benchmarks/gpu_check.sh   # offline: every package from that folder
#   BASE_PYTHON=/opt/torch/bin/python3 benchmarks/gpu_check.sh   # reuse that Python's CUDA torch
#
# Exit status 3 (nothing installed, nothing measured) where no NVIDIA GPU is visible.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_PYTHON="${BASE_PYTHON:-python3}"
VENV="${GPU_VENV:-$(mktemp -d)/venv}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
BUDGET_S="${BUDGET_S:-470}"   # the measurement's own limit; the install comes before it

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi is missing or lists no device);" \
         "nothing installed, nothing measured." >&2
    exit 3
fi
nvidia-smi -L

pip_args=(-q --disable-pip-version-check)
if [[ -n "${WHEELS:-}" ]]; then
    pip_args+=(--no-index --find-links "$WHEELS")
fi
if "$BASE_PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    # a CUDA torch is already there: the venv sees it instead of downloading several GB again
    "$BASE_PYTHON" -m venv --system-site-packages "$VENV"
    echo "gpu_check: reusing $("$BASE_PYTHON" -c 'import torch; print(torch.__version__)') from $BASE_PYTHON"
else
    "$BASE_PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install "${pip_args[@]}" "torch==$TORCH_VERSION"
fi
# the project without re-resolving torch (the CUDA build stays), then what it needs
"$VENV/bin/pip" install "${pip_args[@]}" --no-deps -e "$ROOT"
"$VENV/bin/pip" install "${pip_args[@]}" -c <(grep -v "^torch" "$ROOT/constraints.txt") numpy "gymnasium[classic-control]>=1.1" "ale-py>=0.10" \
    "opencv-python-headless>=4.8" "pydantic>=2.5" "pyyaml>=6.0" "tensorboard>=2.14" \
    "scikit-learn>=1.3" "threadpoolctl>=3.1" "ray[default,tune]>=2.40"
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'the venv torch sees no GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

stamp="$(date -u +%Y-%m-%d_%H%M)"
mkdir -p "$ROOT/benchmarks/results"
cd "$ROOT/benchmarks"
timeout "$BUDGET_S" "$VENV/bin/python" gpu_check.py --seconds 8 --pong-s 150 \
    --out "$ROOT/benchmarks/results/gpu_${stamp}.jsonl" --markdown "$ROOT/benchmarks/RESULTS.md"
echo "gpu_check: results in benchmarks/results/gpu_${stamp}.jsonl and benchmarks/RESULTS.md"
