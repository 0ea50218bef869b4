"""benchmarks/gpu_check.sh and gpu_check.py: without a CUDA device they say so and stop before
installing or measuring anything; every measurement runs (on the CPU here, on CUDA with the gpu
marker)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
# the benchmarks folder only while importing: it holds mujoco.py, which would shadow the mujoco
# package for every later test in this process
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import gpu_check  # noqa: E402
finally:
    sys.path.remove(str(ROOT / "benchmarks"))

HAS_NVIDIA = shutil.which("nvidia-smi") is not None


@pytest.mark.skipif(HAS_NVIDIA, reason="this machine has nvidia-smi")
def test_the_script_stops_before_installing_anything_without_a_gpu(tmp_path):
    venv = tmp_path / "venv"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GPU_VENV": str(venv)})
    assert proc.returncode == gpu_check.NO_DEVICE == 3
    assert "no NVIDIA GPU on this machine" in proc.stderr and "nothing installed" in proc.stderr
    assert not venv.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_the_measurement_says_there_is_no_device(tmp_path, capsys):
    out = tmp_path / "gpu.jsonl"
    assert gpu_check.main(["--out", str(out)]) == 3
    assert "no CUDA device visible" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(gpu_check.LEARNERS))
def test_every_learner_measurement_runs_on_the_cpu(name):
    m = gpu_check.learner_rate(name, "cpu", 0.1)
    assert m["updates_per_s"] > 0 and m["ms_per_update"] > 0
    assert ("env_steps_learned_per_s" in m) == name.startswith("ppo")


@pytest.mark.slow
def test_the_collection_measurement_runs_on_the_cpu():
    m = gpu_check.collection_rates(4, 0.3, device="cpu")
    assert m["raw_steps_per_s"] > 0 and 0 < m["share_of_raw"] < 2


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["ppo_mlp", "dqn_cnn"])
def test_learner_measurement_on_cuda(name):
    assert gpu_check.learner_rate(name, "cuda", 1.0)["updates_per_s"] > 0
