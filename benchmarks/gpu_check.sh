#!/usr/bin/env bash
# The GPU path measured on a machine with an NVIDIA GPU, in under 8 minutes: a Python with a
# CUDA build of torch, then benchmarks/gpu_check.py (learner updates/s on GPU and CPU for PPO
# MLP/CNN and DQN/C51 CNN, GPU-batched CNN inference for Atari collection against the raw
# ale-py rate, a short DQN Pong run with the learner on the GPU). The JSON lines go to
# benchmarks/results/gpu_<date>.jsonl and a table is appended to benchmarks/RESULTS.md.
#
#   benchmarks/gpu_check.sh                          # a fresh venv, torch from the registry
#   WHEELS=/path/to/wheels benchmarks/gpu_check.sh   # offline: every package from that folder
#   BASE_PYTHON=/opt/torch/bin/python3 benchmarks/gpu_check.sh
#
# A BASE_PYTHON whose torch sees a CUDA device is used as it is: rlcore and whatever it lacks
# (from WHEELS, or the registry) go to a folder of their own (GPU_SITE) put first on PYTHONPATH,
# so nothing in that Python's environment changes. (A venv made from it would not do: a venv
# made from another venv does not see that venv's packages, only the interpreter's own.)
#
#   RESULTS_OUT=FILE     the JSON lines (default benchmarks/results/gpu_<date>.jsonl)
#   MARKDOWN=FILE        where the table is appended (default benchmarks/RESULTS.md)
#   SECONDS_EACH=N       seconds per learner and device, and per collection rate (default 8)
#   PONG_S=N             the DQN Pong run's wall seconds (default 150; 0 skips it)
# Arguments are passed on to gpu_check.py (e.g. --learners dqn_cnn --atari-envs 64 128).
#
# Exit status 3 (nothing installed, nothing measured) where no NVIDIA GPU is visible.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_PYTHON="${BASE_PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
BUDGET_S="${BUDGET_S:-470}"   # the measurement's own limit; the install comes before it
stamp="$(date -u +%Y-%m-%d_%H%M)"
RESULTS_OUT="${RESULTS_OUT:-$ROOT/benchmarks/results/gpu_${stamp}.jsonl}"
MARKDOWN="${MARKDOWN:-$ROOT/benchmarks/RESULTS.md}"

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
# what rlcore needs besides torch for these measurements (no Ray: the Pong run is inline)
needs=(numpy "gymnasium>=1.1" "ale-py>=0.10" "opencv-python-headless>=4.8" "pydantic>=2.5"
       "pyyaml>=6.0" "tensorboard>=2.14" "scikit-learn>=1.3" "threadpoolctl>=3.1")

if "$BASE_PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    PY="$BASE_PYTHON"
    SITE="${GPU_SITE:-$(mktemp -d)/site}"
    mkdir -p "$SITE"
    echo "gpu_check: using $("$PY" -c 'import torch; print(torch.__version__)') from $PY as it is;" \
         "rlcore and what it lacks go to $SITE"
    if [[ -n "${WHEELS:-}" ]]; then
        # exactly the folder's wheels, nothing resolved (the base's numpy, torch stay)
        "$PY" -m pip install "${pip_args[@]}" --no-deps --target "$SITE" "$WHEELS"/*.whl
    else
        missing=()
        for req in "${needs[@]}"; do
            name="${req%%>*}"
            mod="$(echo "$name" | sed -e 's/^opencv-python-headless$/cv2/' -e 's/^pyyaml$/yaml/' \
                   -e 's/^scikit-learn$/sklearn/' -e 's/-/_/g')"
            "$PY" -c "import $mod" 2>/dev/null || missing+=("$req")
        done
        if (( ${#missing[@]} )); then
            "$PY" -m pip install "${pip_args[@]}" --target "$SITE" "${missing[@]}"
        fi
    fi
    # rlcore itself (its built-in plugins are entry points: it must be installed, not only on
    # the path), built with the base's setuptools so no build environment is downloaded
    "$PY" -m pip install "${pip_args[@]}" --no-deps --no-build-isolation --no-index \
        --target "$SITE" "$ROOT" >/dev/null
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    VENV="${GPU_VENV:-$(mktemp -d)/venv}"
    "$BASE_PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install "${pip_args[@]}" "torch==$TORCH_VERSION"
    # the project without re-resolving torch (the CUDA build stays), then what it needs
    "$VENV/bin/pip" install "${pip_args[@]}" --no-deps -e "$ROOT"
    "$VENV/bin/pip" install "${pip_args[@]}" -c <(grep -v "^torch" "$ROOT/constraints.txt") "${needs[@]}"
    PY="$VENV/bin/python"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'this torch sees no GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

mkdir -p "$(dirname "$RESULTS_OUT")"
cd "$ROOT/benchmarks"
timeout "$BUDGET_S" "$PY" gpu_check.py --seconds "${SECONDS_EACH:-8}" --pong-s "${PONG_S:-150}" \
    --out "$RESULTS_OUT" --markdown "$MARKDOWN" "$@"
echo "gpu_check: results in $RESULTS_OUT and $MARKDOWN"
