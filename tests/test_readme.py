"""The README stays true: its key table is `rlcore schema`, its plugin example runs."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlcore.testing.fake_env import register
from rlcore.actors.pool import rollout_pool
from rlcore.config import load_experiment, schema_lines
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

README = (Path(__file__).parent.parent / "README.md").read_text()


def block(name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->\n```\w*\n(.*?)```\n<!-- {name}:end -->", README, re.S)
    assert m, f"README block {name} missing"
    return m.group(1)


def test_readme_schema_block_is_the_schema():
    assert block("schema").rstrip("\n").splitlines() == schema_lines()


def test_readme_make_targets_exist():
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in README and re.search(rf"^{target}:", makefile, re.M)


def test_readme_plugin_example_trains(tmp_path, monkeypatch):
    (tmp_path / "my_reinforce.py").write_text(block("plugin-example"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "algorithm": "my_reinforce:PLUGIN", "env": {"id": register(), "num_envs": 2},
        "rollout": {"fragment_length": 8}, "algo": {"hidden": 8}}))
    exp = load_experiment(cfg)
    assert exp.config.learner.num_epochs == 1 and exp.config.learner.minibatch_size == 0
    spaces = check_spaces(exp)
    learner = Learner(exp, spaces, torch.device("cpu"))
    pool = rollout_pool(exp, spaces)
    before = learner.modules["policy"].net[0].weight.detach().clone()
    for _ in range(2):
        metrics = learner.update(pool.sample(learner.weights(), learner.version), 0.0)
        assert np.isfinite(metrics["loss"])
    assert not torch.equal(before, learner.modules["policy"].net[0].weight)
    sys.modules.pop("my_reinforce", None)


def fenced(name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->\n```\w*\n(.*?)```\n<!-- {name}:end -->", README, re.S)
    assert m, f"README block {name} missing"
    return m.group(1)


@pytest.mark.timeout(600)
def test_readme_tutorial_package_installs_checks_and_trains(tmp_path):
    """The out-of-tree package of the README: its files from the README's blocks, its commands
    as written, except that pip installs into a temporary folder (on PYTHONPATH)."""
    pkg = tmp_path / "my_reinforce"
    (pkg / "my_reinforce").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(fenced("tutorial-pyproject"))
    (pkg / "my_reinforce" / "__init__.py").write_text("")
    (pkg / "my_reinforce" / "plugin.py").write_text(block("plugin-example"))
    (tmp_path / "my_reinforce.yaml").write_text(fenced("tutorial-yaml"))
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(site)}
    bin_dir = Path(sys.executable).parent
    outputs = []
    for line in fenced("tutorial-commands").strip().splitlines():
        argv = shlex.split(line)
        if argv[:2] == ["pip", "install"]:
            argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), *argv[2:]]
        else:
            argv = [str(bin_dir / argv[0]), *argv[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    assert outputs[1].endswith("my_reinforce: all checks passed\n")
    summary = json.loads((tmp_path / "runs" / "my_reinforce" / "summary.json").read_text())
    assert summary["algorithm"] == "my_reinforce" and summary["stop_reason"] == "num_env_steps"
    assert summary["env_steps"] == 20_480  # 40 updates of 8 envs x 64 steps
    assert summary["updates"] == 40
