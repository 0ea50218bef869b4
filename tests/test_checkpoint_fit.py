"""Checkpoints that do not fit the experiment (rlcore.run.checkpoint, rlcore.run.fit): another
env's weights, missing modules, invalid meta.json fields, non-finite weights, a newer format,
a damaged replay file. ``rlcore eval`` / ``resume`` / ``play`` fall back to the newest
checkpoint that fits, naming each one skipped and why; when none fits, exit code 2 with the
list; never a traceback; a skipped checkpoint never costs a good one its place in
``checkpoint.keep``."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rlcore import __version__ as RLCORE_VERSION
from rlcore.cli import main
from rlcore.run import checkpoint

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[1]

STEPS = ["step_000000000128", "step_000000000192", "step_000000000256"]  # keep 3 of every 64


def write_experiment(folder: Path, algorithm: str = "ppo", env: str = "CartPole-v1",
                     **sections) -> str:
    data = {"algorithm": algorithm, "seed": 0, "env": {"id": env, "num_envs": 4},
            "rollout": {"num_actors": 0, "fragment_length": 16},
            "learner": {"num_epochs": 1, "minibatch_size": 0, "torch_threads": 1},
            "stop": {"num_env_steps": 256}, "eval": {"episodes": 1, "every_env_steps": 0},
            "checkpoint": {"every_env_steps": 64}, "logging": {"progress_every_s": 0}}
    if algorithm == "dqn":
        data["env"]["num_envs"] = 1
        data["learner"] = {"torch_threads": 1}
        data["algo"] = {"learning_starts": 64, "hidden_sizes": [16], "buffer_size": 2000,
                        "batch_size": 16, "checkpoint_replay": True}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{algorithm}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three tiny runs: ppo on CartPole (the run under test), ppo on Acrobot (same algorithm,
    another env) and dqn on Acrobot (another algorithm, replay saved)."""
    tmp = tmp_path_factory.mktemp("trained")
    out = {}
    for name, algorithm, env in (("cartpole", "ppo", "CartPole-v1"),
                                 ("acrobot", "ppo", "Acrobot-v1"),
                                 ("dqn", "dqn", "Acrobot-v1")):
        run_dir = tmp / name
        assert main(["run", write_experiment(tmp / "exp", algorithm, env),
                     "--run-dir", str(run_dir)]) == 0
        assert names(run_dir) == STEPS
        out[name] = run_dir
    return out


@pytest.fixture
def runs(trained, tmp_path):
    """Fresh copies of the trained runs, for one test to damage."""
    return {name: Path(shutil.copytree(path, tmp_path / name)) for name, path in trained.items()}


def names(run_dir) -> list[str]:
    return [p.name for p in checkpoint.complete_checkpoints(run_dir)]


def ckpt(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:012d}"


def rlcore(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))  # an uncaught exception (exit code 1) fails the test by itself
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (0, 2), err
    return code, out, err


def evaluated(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def edit_meta(path: Path, fn) -> None:
    meta = json.loads((path / "meta.json").read_text())
    fn(meta)
    (path / "meta.json").write_text(json.dumps(meta))


def edit_weights(path: Path, fn) -> None:
    tensors = torch.load(path / "weights.pt", weights_only=True)
    fn(tensors)
    torch.save(tensors, path / "weights.pt")


def first_key(tensors, module="ac"):
    return next(iter(tensors["modules"][module]))


# ------------------------------------------------------------------ one bad newest checkpoint


def other_envs_weights(runs):
    shutil.copy(ckpt(runs["acrobot"], 256) / "weights.pt", ckpt(runs["cartpole"], 256))


def missing_module_key(runs):
    edit_weights(ckpt(runs["cartpole"], 256),
                 lambda t: t["modules"]["ac"].pop(first_key(t)))


def renamed_module(runs):
    edit_weights(ckpt(runs["cartpole"], 256),
                 lambda t: t["modules"].__setitem__("actor", t["modules"].pop("ac")))


def nan_weights(runs):
    def nan(t):
        t["modules"]["ac"][first_key(t)].view(-1)[3] = float("nan")
    edit_weights(ckpt(runs["cartpole"], 256), nan)


def meta_is_a_list(runs):
    (ckpt(runs["cartpole"], 256) / "meta.json").write_text("[1, 2, 3]")


def env_steps_lots(runs):
    edit_meta(ckpt(runs["cartpole"], 256), lambda m: m.update(env_steps="lots"))


def env_steps_negative(runs):
    edit_meta(ckpt(runs["cartpole"], 256), lambda m: m.update(env_steps=-5000))


def learner_keys_missing(runs):
    edit_meta(ckpt(runs["cartpole"], 256), lambda m: m["learner"].pop("gns"))


def optimizer_of_another_model(runs):
    other = torch.load(ckpt(runs["acrobot"], 256) / "weights.pt", weights_only=True)
    edit_weights(ckpt(runs["cartpole"], 256),
                 lambda t: t.__setitem__("optimizer", other["optimizer"]))


def swapped_in_from_another_algorithm(runs):
    shutil.copytree(ckpt(runs["dqn"], 256), ckpt(runs["cartpole"], 999))


FALLBACKS = {  # damage -> what the skipped line says about step 256 (or 999)
    other_envs_weights: "step_000000000256/weights.pt: module 'ac' key",
    missing_module_key: "step_000000000256/weights.pt: module 'ac': missing keys ",
    renamed_module: "step_000000000256/weights.pt: modules: expected ac, found actor",
    nan_weights: "step_000000000256/weights.pt: module 'ac' key",
    meta_is_a_list: "step_000000000256/meta.json: expected a JSON object, found [1, 2, 3] (a list)",
    env_steps_lots: "step_000000000256/meta.json: field 'env_steps': expected an integer >= 0, "
                    "found 'lots' (a string)",
    env_steps_negative: "step_000000000256/meta.json: field 'env_steps': expected an integer "
                        ">= 0, found -5000 (an integer)",
    learner_keys_missing: "step_000000000256/meta.json: field 'learner.gns': expected an "
                          "object, found (missing)",
    swapped_in_from_another_algorithm: "step_000000000999/meta.json: written by algorithm "
                                       "'dqn', not 'ppo' (a checkpoint of another experiment)",
}


@pytest.mark.parametrize("damage", list(FALLBACKS), ids=lambda f: f.__name__)
def test_eval_falls_back_to_the_newest_checkpoint_that_fits_and_says_why(runs, capsys, damage):
    run = runs["cartpole"]
    damage(runs)
    before = snapshot(run)
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0, err
    result = evaluated(out)
    assert result["checkpoint"] == str(ckpt(run, 256 if damage is
                                            swapped_in_from_another_algorithm else 192))
    assert err.startswith("rlcore: WARNING: skipped checkpoint "), err
    assert FALLBACKS[damage] in err
    assert len(result["skipped"]) == 1 and FALLBACKS[damage] in result["skipped"][0]
    assert f"using the older checkpoint {result['checkpoint']}" in err
    assert snapshot(run) == before  # eval reads only: nothing moved, nothing written


def test_the_reasons_name_field_expected_and_found(runs, capsys):
    run = runs["cartpole"]
    other_envs_weights(runs)
    code, _, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0
    line = next(x for x in err.splitlines() if "step_000000000256" in x)
    assert "expected shape (64, 4), found (64, 6)" in line  # CartPole's 4 inputs, Acrobot's 6
    assert "(written for another model: another env, other network sizes" in line

    edit_weights(ckpt(run, 192), lambda t: t["modules"]["ac"][first_key(t)].fill_(float("inf")))
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and evaluated(out)["checkpoint"] == str(ckpt(run, 128))
    assert (f"skipped checkpoint step_000000000192/weights.pt: module 'ac' key "
            f"'{first_key(torch.load(ckpt(run, 192) / 'weights.pt', weights_only=True))}': "
            "expected finite values, found 256 NaN/inf of 256 (non-finite weights: training "
            "had diverged when it was written)") in err


def test_resume_falls_back_and_sets_the_skipped_checkpoint_aside(runs, capsys):
    run = runs["cartpole"]
    env_steps_negative(runs)  # was accepted: "resuming at -5,000 env steps"
    bad = ckpt(run, 256)
    bad_meta = (bad / "meta.json").read_bytes()
    code, out, err = rlcore(capsys, "resume", str(run))
    assert code == 0, err
    assert f"resuming from {ckpt(run, 192)} at 192 env steps" in out
    assert FALLBACKS[env_steps_negative] in err
    moved = run / "checkpoints" / "bad-step_000000000256"
    assert f"moved aside ({moved})" in err and "not counted toward checkpoint.keep" in err
    assert (moved / "meta.json").read_bytes() == bad_meta  # kept as it was, for inspection
    assert names(run) == STEPS  # 256 written again by the resumed run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from"]["checkpoint"] == str(ckpt(run, 192))
    assert summary["resumed_from"]["set_aside"] == [str(moved)]
    assert FALLBACKS[env_steps_negative] in summary["resumed_from"]["skipped"][0]


def test_a_skipped_checkpoint_does_not_count_toward_keep(runs, capsys):
    """A broken checkpoint newer than every step the resumed run saves: before, it stayed among
    the complete checkpoints, so the next save's pruning (keep 3) deleted good ones for it."""
    run = runs["cartpole"]
    far = run / "checkpoints" / "step_000000100000"
    shutil.copytree(ckpt(run, 256), far)
    edit_meta(far, lambda m: m.update(env_steps=100000))
    (far / "weights.pt").write_bytes((far / "weights.pt").read_bytes()[:300])  # truncated
    code, out, err = rlcore(capsys, "resume", str(run), "--set", "stop.num_env_steps=384")
    assert code == 0, err
    assert f"resuming from {ckpt(run, 256)} at 256 env steps" in out
    assert "skipped checkpoint step_000000100000/weights.pt: unreadable, truncated or damaged (" in err
    # the three newest good ones stay: 256 (the one resumed from), 320 and 384
    assert names(run) == ["step_000000000256", "step_000000000320", "step_000000000384"]
    assert (run / "checkpoints" / "bad-step_000000100000" / "weights.pt").is_file()
    code, out, _ = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and evaluated(out)["checkpoint"] == str(ckpt(run, 384))


def test_eval_checks_what_it_uses_resume_checks_everything(runs, capsys):
    """Optimizer moments of another model: eval (modules and normalizer only) uses the
    checkpoint; resume, which would step that optimizer, skips it."""
    run = runs["cartpole"]
    optimizer_of_another_model(runs)
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and not err and evaluated(out)["checkpoint"] == str(ckpt(run, 256))
    code, out, err = rlcore(capsys, "resume", str(run))
    assert code == 0, err
    assert f"resuming from {ckpt(run, 192)} at 192 env steps" in out
    assert ("skipped checkpoint step_000000000256/weights.pt: optimizer parameter 0 'exp_avg': "
            "expected shape (64, 4), found (64, 6); optimizer parameter 0 'exp_avg_sq': "
            "expected shape (64, 4), found (64, 6); ") in err


def test_a_generator_state_of_another_device_type_is_reseeded_not_refused(runs, capsys):
    """A CUDA generator's state (16 bytes) in a checkpoint resumed on the CPU: the loss's
    generator keeps its seeded state, as for checkpoints written before it was saved."""
    run = runs["cartpole"]
    edit_weights(ckpt(run, 256), lambda t: t.__setitem__("rng", torch.zeros(16, dtype=torch.uint8)))
    code, out, err = rlcore(capsys, "resume", str(run), "--set", "stop.num_env_steps=320")
    assert code == 0 and not err
    assert f"resuming from {ckpt(run, 256)} at 256 env steps" in out


def test_nothing_fits_exit_2_listing_each_checkpoint_and_why(runs, capsys):
    run = runs["cartpole"]
    other_envs_weights(runs)
    (ckpt(run, 192) / "meta.json").write_text("[1, 2, 3]")
    edit_meta(ckpt(run, 128), lambda m: m.update(env_steps="lots"))
    before = snapshot(run)
    for command in ("eval", "resume"):
        code, out, err = rlcore(capsys, command, str(run))
        assert code == 2
        assert err.startswith(f"error: no loadable checkpoint in {run / 'checkpoints'}: each of "
                              "its 3 checkpoints was skipped:\n"), err
        lines = err.splitlines()
        assert lines[1].startswith("  step_000000000256/weights.pt: module 'ac' key ")
        assert lines[2] == ("  step_000000000192/meta.json: expected a JSON object, found "
                            "[1, 2, 3] (a list)")
        assert lines[3] == ("  step_000000000128/meta.json: field 'env_steps': expected an "
                            "integer >= 0, found 'lots' (a string)")
        assert "restore damaged files from a copy, or start a new run" in lines[4]
        assert snapshot(run) == before  # nothing set aside, overwritten or written


def test_the_real_exit_code_and_no_traceback(runs):
    run = runs["cartpole"]
    for p in checkpoint.complete_checkpoints(run):
        (p / "weights.pt").write_bytes(b"PK\x03\x04 not really")
    proc = subprocess.run([sys.executable, "-m", "rlcore.cli", "eval", str(run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("/weights.pt: unreadable, truncated or damaged (") == 3


# ------------------------------------------------------------------ versions


def test_checkpoints_record_format_and_writers(runs):
    meta = json.loads((ckpt(runs["cartpole"], 256) / "meta.json").read_text())
    assert meta["format"] == checkpoint.FORMAT_VERSION == 1
    assert meta["versions"]["rlcore"] == RLCORE_VERSION
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["plugin"] == {"name": "ppo", "target": "rlcore.plugins.ppo.plugin:PLUGIN",
                              "package": "rlcore", "version": RLCORE_VERSION}


def test_a_newer_format_is_refused_by_name_with_both_versions(runs, capsys):
    run = runs["cartpole"]

    def newer(m):
        m["format"] = 2
        m["versions"]["rlcore"] = "9.0.0"
    edit_meta(ckpt(run, 256), newer)
    before = snapshot(run)
    for command in ("eval", "resume"):  # no fallback: that would drop what 9.0.0 trained
        code, _, err = rlcore(capsys, command, str(run))
        assert code == 2
        assert err == (f"error: checkpoint {ckpt(run, 256)} was written by rlcore 9.0.0 with "
                       f"checkpoint format 2; this rlcore ({RLCORE_VERSION}) reads up to "
                       "format 1; upgrade rlcore (pip install -U rlcore) to use it\n")
    assert snapshot(run) == before


def test_checkpoints_written_before_versioning_load_as_format_0(runs, capsys):
    run = runs["cartpole"]
    for step in (128, 192, 256):
        edit_meta(ckpt(run, step), lambda m: [m.pop(k) for k in ("format", "plugin", "versions")])
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and not err
    assert evaluated(out)["checkpoint"] == str(ckpt(run, 256))
    meta, _ = checkpoint.load_one(ckpt(run, 256), "ppo", json.loads(
        (ckpt(run, 128) / "meta.json").read_text())["spaces"], "cpu")
    assert meta["format"] == 1 and meta["format_read"] == 0
    # a format-0 file is validated like any other
    edit_meta(ckpt(run, 256), lambda m: m.update(wall_s=float("nan")))
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and evaluated(out)["checkpoint"] == str(ckpt(run, 192))
    assert ("step_000000000256/meta.json: field 'wall_s': expected a finite number >= 0 "
            "(seconds), found nan (a number)") in err


def test_a_run_folder_of_another_algorithm_is_refused_as_such(runs, capsys):
    run = runs["cartpole"]
    for step in (128, 192, 256):
        edit_meta(ckpt(run, step), lambda m: m.update(algorithm="pg"))
    code, _, err = rlcore(capsys, "eval", str(run))
    assert code == 2
    assert err == (f"error: checkpoint {ckpt(run, 256)} was written by algorithm 'pg', not "
                   "'ppo'; point at a run of 'ppo' or change the experiment's algorithm (and so "
                   "are the 2 older checkpoint(s))\n")


# ------------------------------------------------------------------ the regime's files


def test_resume_skips_a_checkpoint_whose_replay_file_is_damaged(runs, capsys):
    run = runs["dqn"]
    replay = ckpt(run, 256) / "replay.npz"
    replay.write_bytes(replay.read_bytes()[:1000])
    code, out, err = rlcore(capsys, "resume", str(run))
    assert code == 0, err
    assert f"resuming from {ckpt(run, 192)} at 192 env steps" in out
    assert ("skipped checkpoint step_000000000256/replay.npz: not a readable .npz file "
            "(BadZipFile: ") in err
    assert (run / "checkpoints" / "bad-step_000000000256" / "replay.npz").is_file()
    assert names(run) == STEPS
    code, out, err = rlcore(capsys, "eval", str(run), "--episodes", "1")
    assert code == 0 and not err  # eval reads no replay


def test_play_falls_back_and_refuses_a_named_checkpoint_that_does_not_fit(tmp_path, capsys,
                                                                          monkeypatch):
    import io

    from test_alphazero import write_experiment as alphazero_experiment

    run = tmp_path / "run"
    path = alphazero_experiment(tmp_path, checkpoint__every_env_steps=20)
    assert main(["run", str(path), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    newest = checkpoint.complete_checkpoints(run)[-1]

    def nan(t):
        name = next(iter(t["modules"]))
        key = next(k for k, v in t["modules"][name].items() if v.is_floating_point())
        t["modules"][name][key].view(-1)[0] = float("nan")
    edit_weights(newest, nan)
    monkeypatch.setattr(sys, "stdin", io.StringIO("q\n"))
    code, out, err = rlcore(capsys, "play", str(run))
    assert code == 0 and "you resigned" in out
    assert f"rlcore: WARNING: skipped checkpoint {newest.name}/weights.pt: module " in err
    code, out, err = rlcore(capsys, "play", str(newest))
    assert code == 2
    assert err.startswith(f"error: checkpoint {newest} does not fit: {newest.name}/weights.pt: "
                          "module ")
    assert "expected finite values, found 1 NaN/inf" in err


# ------------------------------------------------------------------ fuzz


def _flip(path: Path, rng: random.Random, count: int) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(count):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


FIELDS = [("env_steps",), ("wall_s",), ("format",), ("algorithm",), ("spaces",), ("env",),
          ("learner",), ("learner", "updates"), ("learner", "version"), ("learner", "state"),
          ("learner", "gns", "count"), ("learner", "gns", "g2"), ("evals",), ("versions",),
          ("plugin",), ("plugin", "name")]
VALUES = ["lots", -5000, None, [], {}, 1.5, float("nan"), float("inf"), 10 ** 30, True, 99, 0]


def corrupt(rng: random.Random, runs: dict, name: str) -> str:
    """One seeded-random damage to a random checkpoint of ``runs[name]``; says what it did."""
    run = runs[name]
    other = runs["dqn" if name == "cartpole" else "cartpole"]
    complete = checkpoint.complete_checkpoints(run)
    if not complete:  # every file deleted by earlier steps of this case
        return "nothing left"
    target = complete[-1] if rng.random() < 0.5 else rng.choice(complete)
    kind = rng.choice(["truncate", "flip", "swap", "field", "meta_shape", "tensors", "delete"])
    file = rng.choice(["weights.pt", "meta.json"])
    if kind == "truncate":
        data = (target / file).read_bytes()
        (target / file).write_bytes(data[:rng.randrange(len(data))])
    elif kind == "flip":
        _flip(target / file, rng, rng.choice([1, 2, 8, 64]))
    elif kind == "swap":
        source = rng.choice(checkpoint.complete_checkpoints(other))
        shutil.copy(source / file, target / file)
    elif kind == "field":
        path, value = rng.choice(FIELDS), rng.choice(VALUES)
        try:
            meta = json.loads((target / "meta.json").read_text())
            node = meta
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except Exception:  # damaged by an earlier step of this case: damage it more
            return corrupt(rng, runs, name)
        (target / "meta.json").write_text(json.dumps(meta))
        return f"{target.name} {'.'.join(path)} = {value!r}"
    elif kind == "meta_shape":
        (target / "meta.json").write_text(json.dumps(rng.choice([[1, 2], "meta", 7, None, {}])))
    elif kind == "tensors":
        try:
            tensors = torch.load(target / "weights.pt", weights_only=True)
            modules = tensors["modules"]
            module = rng.choice(list(modules))
            key = rng.choice(list(modules[module]))
        except Exception:  # damaged by an earlier step of this case: damage it more
            return corrupt(rng, runs, name)
        choice = rng.randrange(5)
        if choice == 0:
            modules[module].pop(key)
        elif choice == 1 and modules[module][key].is_floating_point():
            modules[module][key].view(-1)[0] = float(rng.choice(["nan", "inf"]))
        elif choice == 2:
            modules[module][key] = torch.zeros(7, 3)
        elif choice == 3:
            tensors["optimizer"] = {"state": {}, "param_groups": []}
        else:
            tensors["modules"] = "not modules"
        torch.save(tensors, target / "weights.pt")
        return f"{target.name} tensors {choice} {module}.{key}"
    else:
        (target / file).unlink()
    return f"{target.name} {kind} {file}"


@pytest.mark.parametrize("seed,cases", [(20261202, 30)])
def test_fuzz_damaged_checkpoints_load_a_fitting_one_or_exit_2(trained, tmp_path, capsys, seed,
                                                               cases):
    """Seeded-random damage (truncated or flipped bytes, files swapped between the ppo and the
    dqn run, meta fields of wrong types or values, tensors removed, reshaped or made NaN, files
    deleted), one to three per case: eval (resume every fifth case) loads a checkpoint that fits
    or exits with 2 and a message, never anything else."""
    rng = random.Random(seed)
    outcomes = {0: 0, 2: 0}
    for case in range(cases):
        runs = {name: Path(shutil.copytree(trained[name], tmp_path / f"{case}-{name}"))
                for name in ("cartpole", "dqn")}
        name = rng.choice(["cartpole", "dqn"])
        done = [corrupt(rng, runs, name) for _ in range(rng.choice([1, 1, 2, 3]))]
        command = "resume" if case % 5 == 4 else "eval"
        argv = [command, str(runs[name])] + (["--episodes", "1"] if command == "eval" else [])
        try:
            code = main(argv)
        except BaseException as exc:  # noqa: BLE001 - name the case that escaped
            raise AssertionError(f"case {case} ({command} {name}: {done}) raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, (case, done)
        assert code in (0, 2), (case, done, err)
        outcomes[code] += 1
        if code == 2:
            assert err.startswith("error: ") and "checkpoint" in err, (case, done, err)
        elif command == "eval":
            assert Path(evaluated(out)["checkpoint"]).is_dir(), (case, done)
    assert outcomes[0] and outcomes[2]  # the cases reach both ends
