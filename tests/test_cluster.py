"""Several Ray nodes on this machine: a cluster simulated with ``ray.cluster_utils`` (nodes on
127.0.0.1) and a real ``ray start`` head + worker inside a private network namespace, joined
with ``ray.address`` and the cluster's token; an unreachable address fails fast (row 17)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_script(args, timeout, **kw):
    """Run a process in its own session; on timeout kill its whole group (Ray daemons too)."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, **kw)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"timed out after {timeout} s:\n{out[-3000:]}")
    return proc.returncode, out


SIMULATED = textwrap.dedent("""
    import json, sys
    from rlcore.testing.cluster import simulated_cluster
    with simulated_cluster(num_nodes=2, cpus_per_node=2) as cluster:
        address = cluster.address
        from rlcore.run.lifecycle import train_experiment
        import ray
        summary, _ = train_experiment("experiments/ppo_cartpole.yaml", sys.argv[1], [
            f"ray.address={address}", "rollout.num_actors=2", "env.num_envs=4",
            "rollout.fragment_length=16", "learner.minibatch_size=0", "learner.num_epochs=1",
            "stop.num_env_steps=256", "stop.eval_return=null", "eval.every_env_steps=0",
            "eval.episodes=1"])
        nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
        print("RESULT " + json.dumps({"summary": summary, "nodes": nodes,
                                      "auth": __import__("os").environ["RAY_AUTH_MODE"]}))
""")


def test_actors_spread_over_the_nodes_of_a_simulated_cluster(tmp_path):
    code, out = run_script([sys.executable, "-c", SIMULATED, str(tmp_path / "run")], 240)
    assert code == 0, out[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    summary, nodes = result["summary"], result["nodes"]
    assert summary["env_steps"] == 256 and summary["stop_reason"] == "num_env_steps"
    assert len(nodes) == 2 and set(nodes.values()) == {"127.0.0.1"}
    # each node has 2 CPUs, so both actors would fit on one: SPREAD put them on different nodes
    actor_nodes = summary["actor_nodes"]
    assert len(actor_nodes) == 2 and len(set(actor_nodes)) == 2
    assert set(actor_nodes) <= set(nodes)
    assert result["auth"] == "token"


LEARNER_ON_GPU_NODE = textwrap.dedent("""
    import json, sys
    from rlcore.testing.cluster import simulated_cluster
    with simulated_cluster(num_nodes=3, cpus_per_node=2, last_node={"num_gpus": 1}) as cluster:
        import ray
        import torch
        from rlcore.run import checkpoint
        from rlcore.config import load_experiment
        from rlcore.errors import ClusterError
        from rlcore.run.logging import RunLogger
        from rlcore.run.checks import check_spaces
        from rlcore.run.lifecycle import make_run, train_experiment
        common = [f"ray.address={cluster.address}", "rollout.num_actors=2", "env.num_envs=4",
                  "rollout.fragment_length=16", "learner.minibatch_size=0",
                  "learner.num_epochs=1", "learner.torch_threads=1", "stop.num_env_steps=256",
                  "stop.eval_return=null", "eval.every_env_steps=0", "eval.episodes=2"]
        runs, out = sys.argv[1], {}
        for name, extra in (("driver", []), ("gpu", ["learner.num_gpus=1"])):
            summary, _ = train_experiment("experiments/ppo_cartpole.yaml", f"{runs}/{name}",
                                          common + extra)
            exp = load_experiment("experiments/ppo_cartpole.yaml", common)
            _, _, tensors = checkpoint.load_latest(f"{runs}/{name}", "ppo",
                                                   check_spaces(exp).to_json(), "cpu")
            out[name] = {"summary": summary, "weights": {
                f"{m}.{k}": v.double().sum().item() for m, sd in tensors["modules"].items()
                for k, v in sd.items()}}
        # resume the GPU-node run: the checkpoint goes back into a new learner actor
        exp = load_experiment("experiments/ppo_cartpole.yaml",
                              common + ["learner.num_gpus=1", "stop.num_env_steps=512"])
        trainer = make_run(exp, f"{runs}/gpu", resume=True)
        out["resumed"] = trainer.run(RunLogger(f"{runs}/gpu", trainer.env_steps, 0))
        try:  # a resource no node has: a clear error after ray.connect_timeout_s
            train_experiment("experiments/ppo_cartpole.yaml", f"{runs}/tpu",
                             common + ["learner.resources={tpu: 1}", "ray.connect_timeout_s=1"])
        except ClusterError as exc:
            out["missing"] = str(exc)
        out["gpu_nodes"] = [n["NodeID"] for n in ray.nodes() if n["Resources"].get("GPU")]
        print("RESULT " + json.dumps(out))
""")


def test_the_learner_runs_on_the_node_with_the_gpu_it_asks_for(tmp_path):
    """learner.num_gpus: 1 puts the learner in a Ray actor that Ray places on the cluster's one
    GPU node (a declared GPU: Ray places by the resource; CUDA is not there, so device auto
    picks the CPU). The run is the same, update for update, as with the learner in the driver;
    it checkpoints and resumes; a resource no node has is refused with the fix."""
    code, out = run_script([sys.executable, "-c", LEARNER_ON_GPU_NODE, str(tmp_path)], 280)
    assert code == 0, out[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    driver, gpu = result["driver"], result["gpu"]
    assert len(result["gpu_nodes"]) == 1
    assert gpu["summary"]["learner_node"] == result["gpu_nodes"][0]
    assert driver["summary"]["learner_node"] is None
    assert gpu["summary"]["device"] == "cpu"
    assert gpu["summary"]["env_steps"] == driver["summary"]["env_steps"] == 256
    assert gpu["summary"]["updates"] == driver["summary"]["updates"] == 4
    assert gpu["weights"] == driver["weights"]  # identical updates wherever the learner runs
    assert gpu["summary"]["eval_return_mean"] == driver["summary"]["eval_return_mean"]
    resumed = result["resumed"]
    assert resumed["env_steps"] == 512 and resumed["updates"] == 8
    assert resumed["learner_node"] == result["gpu_nodes"][0]
    assert resumed["resumed_from"]["checkpoint"].endswith("step_000000000256")
    missing = result["missing"]
    assert "asks for 1 tpu on one node, but no node of the Ray cluster has that" in missing
    assert "after waiting 1 s for nodes" in missing and "learner.resources: {}" in missing


LEARNER_BY_CUSTOM_RESOURCE = textwrap.dedent("""
    import json, sys
    import yaml
    from rlcore.testing.cluster import simulated_cluster
    with simulated_cluster(num_nodes=2, cpus_per_node=2,
                           last_node={"resources": {"learner_node": 1}}) as cluster:
        import ray
        from rlcore.run import checkpoint
        from rlcore.config import load_experiment
        from rlcore.run.checks import check_spaces
        from rlcore.run.lifecycle import train_experiment
        runs, out = sys.argv[1], {}
        az = f"{runs}/az.yaml"
        with open(az, "w") as f:
            yaml.safe_dump({
                "algorithm": "alphazero", "seed": 4, "env": {"id": "rlcore/TicTacToe-v0"},
                "algo": {"channels": 8, "blocks": 1, "value_hidden": 8, "num_simulations": 8,
                         "parallel_games": 3, "games_per_round": 3, "batch_size": 16,
                         "updates_per_round": 2, "min_positions": 16, "eval_simulations": 8},
                "stop": {"num_env_steps": 80}, "eval": {"episodes": 2}}, f)
        base = {"replay": ("experiments/dqn_cartpole.yaml", [
                    "stop.num_env_steps=1200", "stop.eval_return=null", "eval.every_env_steps=0",
                    "eval.episodes=2", "algo.learning_starts=500", "algo.hidden_sizes=[32]"]),
                "selfplay": (az, [])}
        common = [f"ray.address={cluster.address}", "rollout.num_actors=0",
                  "learner.torch_threads=1"]
        for regime, (path, sets) in base.items():
            for name, extra in (("driver", []), ("remote", ["learner.resources={learner_node: 1}"])):
                run = f"{runs}/{regime}-{name}"
                summary, _ = train_experiment(path, run, common + sets + extra)
                exp = load_experiment(path, common + sets)
                _, _, tensors = checkpoint.load_latest(run, exp.plugin.name,
                                                       check_spaces(exp).to_json(), "cpu")
                out[f"{regime}-{name}"] = {
                    "updates": summary["updates"], "env_steps": summary["env_steps"],
                    "node": summary["learner_node"], "eval": summary["eval_return_mean"],
                    "weights": {f"{m}.{k}": v.double().sum().item()
                                for m, sd in tensors["modules"].items() for k, v in sd.items()}}
        out["marked"] = [n["NodeID"] for n in ray.nodes() if n["Resources"].get("learner_node")]
        print("RESULT " + json.dumps(out))
""")


def test_replay_and_selfplay_learners_run_where_their_custom_resource_is(tmp_path):
    """learner.resources places the learner by a custom resource. The replay learner (DQN:
    one call per optimizer step) and the self-play learner (AlphaZero) in their Ray actor make
    the same updates as in the driver (inline rollouts, so both runs see the same data)."""
    code, out = run_script([sys.executable, "-c", LEARNER_BY_CUSTOM_RESOURCE, str(tmp_path)], 280)
    assert code == 0, out[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert len(result["marked"]) == 1
    for regime in ("replay", "selfplay"):
        driver, remote = result[f"{regime}-driver"], result[f"{regime}-remote"]
        assert driver["node"] is None and remote["node"] == result["marked"][0], regime
        assert remote["updates"] == driver["updates"] > 0, regime
        assert remote["env_steps"] == driver["env_steps"], regime
        assert remote["weights"] == driver["weights"], regime
        assert remote["eval"] == driver["eval"], regime
    assert result["replay-remote"]["updates"] == int(0.5 * (1200 - 500 + 1))


LEARNER_LOST = textwrap.dedent("""
    import json, sys
    from rlcore.testing.cluster import simulated_cluster
    with simulated_cluster(num_nodes=2, cpus_per_node=2, last_node={"num_gpus": 1}) as cluster:
        import ray
        from rlcore.run import checkpoint
        from rlcore.config import load_experiment
        from rlcore.errors import TrainingError
        from rlcore.run.logging import RunLogger
        from rlcore.run.lifecycle import make_run
        run = sys.argv[1]
        exp = load_experiment("experiments/ppo_cartpole.yaml", [
            f"ray.address={cluster.address}", "rollout.num_actors=1", "env.num_envs=2",
            "rollout.fragment_length=16", "learner.minibatch_size=0", "learner.num_epochs=1",
            "learner.num_gpus=1", "stop.num_env_steps=100000", "stop.eval_return=null",
            "eval.every_env_steps=256", "eval.episodes=1", "checkpoint.every_env_steps=128"])
        trainer = make_run(exp, run)
        def lose_the_learner(rec):  # the learner's process dies after the first evaluation
            ray.kill(trainer.learner.actor)
        try:
            trainer.run(RunLogger(run, 0, 0), on_eval=lose_the_learner)
            out = {"raised": None}
        except TrainingError as exc:
            out = {"raised": str(exc)}
        out["summary"] = json.loads(open(f"{run}/summary.json").read())
        out["checkpoints"] = [p.name for p in checkpoint.complete_checkpoints(run)]
        print("RESULT " + json.dumps(out))
""")


def test_a_lost_learner_actor_stops_the_run_with_the_cause_and_the_last_checkpoint(tmp_path):
    code, out = run_script([sys.executable, "-c", LEARNER_LOST, str(tmp_path / "run")], 240)
    assert code == 0, out[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    raised, summary = result["raised"], result["summary"]
    assert raised is not None and "the learner actor (1 GPU) failed" in raised
    assert "the run stopped at 256 env steps" in raised and "rlcore resume" in raised
    assert summary["stop_reason"] == "failed" and "learner actor" in summary["error"]
    # the checkpoint due at 256 needed the lost learner's weights: the one before stays
    assert result["checkpoints"] == ["step_000000000128"]
    assert summary["env_steps"] == 256 and summary["checkpoint"] is None


NODE_LOSS = textwrap.dedent("""
    import json, sys
    from rlcore.testing.cluster import simulated_cluster
    with simulated_cluster(num_nodes=3, cpus_per_node=1) as cluster:
        import torch
        from rlcore.actors.pool import rollout_pool
        from rlcore.config import load_experiment
        from rlcore.learner.core import Learner
        from rlcore.run.checks import check_spaces
        exp = load_experiment("experiments/ppo_cartpole.yaml", [
            f"ray.address={cluster.address}", "rollout.num_actors=2", "env.num_envs=4",
            "rollout.fragment_length=16", "learner.minibatch_size=0"])
        spaces = check_spaces(exp)
        pool = rollout_pool(exp, spaces)
        pool.sample(Learner(exp, spaces, torch.device("cpu")).weights(), 3)
        before = list(pool.nodes)
        by_id = {n.node_id: n for n in cluster.worker_nodes}
        slot = next(i for i, node in enumerate(before) if node in by_id)  # not the head's actor
        cluster.remove_node(by_id[before[slot]], allow_graceful=False)
        frags = pool.sample(None, 3)
        print("RESULT " + json.dumps({"before": before, "after": pool.nodes, "slot": slot,
                                      "versions": [f.policy_version for f in frags],
                                      "log": pool.restart_log}))
        pool.close()
""")


def test_actors_of_a_lost_node_are_replaced_on_the_nodes_left(tmp_path):
    code, out = run_script([sys.executable, "-c", NODE_LOSS], 240)
    assert code == 0, out[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    before, after, slot = result["before"], result["after"], result["slot"]
    assert len(set(before)) == 2  # one CPU per node: the two actors on two nodes
    lost = before[slot]
    assert lost not in after and len(set(after)) == 2  # the replacement took the spare node
    assert after[1 - slot] == before[1 - slot]  # the other actor was not touched
    assert result["versions"] == [3, 3]  # the replacement got the current weights
    assert [e["slot"] for e in result["log"]] == [slot]
    assert result["log"][0]["cause"].startswith("died")


def namespaces_available() -> str | None:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip (util-linux, iproute2) is not installed"
    probe = subprocess.run(["unshare", "-rnpm", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the kernel refuses user, network and PID namespaces: {probe.stderr.strip()}"
    return None


# Inside the namespace only loopback exists and the namespace's PID 1 is this script: when it
# exits, every Ray process it started dies with it (nothing to clean up outside, no `ray stop`).
NAMESPACE = textwrap.dedent("""
    set -eu
    ip link set lo up
    export PATH="$BIN:$PATH" RAY_NODE_IP=127.0.0.1 RAY_NUM_CPUS=1
    sh docker/ray-node.sh head > "$RAY_TMPDIR/head.log" 2>&1 &
    sh docker/ray-node.sh worker 127.0.0.1:6379 > "$RAY_TMPDIR/worker.log" 2>&1 &
    for i in $(seq 90); do
        RAY_AUTH_MODE=token ray status --address 127.0.0.1:6379 2>/dev/null | grep -q "/2.0 CPU" && break
        sleep 1
    done
    set +e
    RAY_AUTH_TOKEN=not-the-token rlcore run "$EXP" --run-dir "$RAY_TMPDIR/refused" \
        --set ray.connect_timeout_s=8
    echo "REFUSED_RC $?"
    RAY_NUM_CPUS=0 sh docker/ray-node.sh driver 127.0.0.1:6379 \
        rlcore run "$EXP" --run-dir "$RAY_TMPDIR/run"
    echo "RUN_RC $?"
    echo "NODES $(RAY_AUTH_MODE=token ray status --address 127.0.0.1:6379 | grep -c ' node_')"
""")


def test_ray_start_head_and_worker_in_a_private_network_namespace(tmp_path):
    why = namespaces_available()
    if why:
        pytest.skip(why)
    tmp = Path(tempfile_short())
    exp = tmp / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "algorithm": "ppo", "env": {"id": "CartPole-v1", "num_envs": 4},
        "rollout": {"num_actors": 2, "fragment_length": 16},
        "learner": {"num_epochs": 1, "minibatch_size": 0}, "stop": {"num_env_steps": 256},
        "eval": {"episodes": 1}, "logging": {"progress_every_s": 0},
        "ray": {"address": "127.0.0.1:6379", "connect_timeout_s": 60}}))
    from rlcore.actors.ray_setup import private_ray_home

    env = {**os.environ, "BIN": str(BIN), "EXP": str(exp), "RAY_TMPDIR": str(tmp),
           "HOME": private_ray_home(), "RAY_AUTH_TOKEN": "4f1c0a-test-token",
           "RAY_USAGE_STATS_ENABLED": "0"}
    # what earlier tests in this process left: the driver derives the mode from the token, and
    # "localhost mode" (set for local runs) makes `ray start --address` refuse to join
    for leftover in ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS"):
        env.pop(leftover, None)
    try:
        code, out = run_script(["unshare", "-rnpm", "--fork", "--mount-proc", "sh", "-c",
                                NAMESPACE], 280, env=env)
        assert code == 0, out[-3000:]
        assert "REFUSED_RC 2" in out
        assert ("cannot join the Ray cluster at ray.address='127.0.0.1:6379' (no answer within "
                "ray.connect_timeout_s=8 s)") in out and "RAY_AUTH_TOKEN" in out
        assert "RUN_RC 0" in out, out[-3000:]
        assert "NODES 3" in out  # head, worker and the driver's node
        summary = json.loads((tmp / "run" / "summary.json").read_text())
        assert summary["env_steps"] == 256
        # one CPU on each rollout node, none on the driver's node: one actor on each
        assert len(set(summary["actor_nodes"])) == 2
        assert not (tmp / "refused").exists()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tempfile_short() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="rlc-", dir="/tmp")  # Ray's socket paths must stay short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ray_address_fails_fast_with_the_address(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    code, out = run_script([str(BIN / "rlcore"), "run", "experiments/ppo_cartpole.yaml",
                            "--run-dir", str(run_dir), "--set", f"ray.address={address}",
                            "--set", "ray.connect_timeout_s=10"], 120)
    took = time.monotonic() - t0
    assert code == 2, out[-3000:]
    assert f"error: cannot join the Ray cluster at ray.address='{address}'" in out
    assert "check that `ray start --head` runs there, the port is reachable" in out
    assert "Traceback" not in out
    assert took < 40
    assert not run_dir.exists()
