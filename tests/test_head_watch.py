"""The driver's line to the cluster's head (``rlcore.actors.head_watch``): silence for
``ray.connect_timeout_s`` ends the run with a message naming the address and ``summary.json``
holding the cause and the last checkpoint on disk, with no new checkpoint (that would need the
cluster). No Ray here: the probe, the clock and the exit are stand-ins, the TCP probe meets real
sockets on 127.0.0.1; ``tests/test_netns_node_loss.py`` cuts a real driver off its head."""

import json
import socket

import pytest

from rlcore.actors.head_watch import HeadWatch, split_address, tcp_probe
from rlcore.run.lifecycle import train_experiment

from test_faults import ckpt_names

pytestmark = pytest.mark.timeout(120)


def test_split_address():
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert split_address("head.example.org:6380") == ("head.example.org", 6380)
    assert split_address("ray://head:10001") == ("head", 10001)
    assert split_address("head") == ("head", 6379)


def test_the_tcp_probe_tells_a_listening_port_from_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert tcp_probe("127.0.0.1", port, 1.0)
    assert not tcp_probe("127.0.0.1", port, 1.0)  # closed now: refused


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def watch(answers, timeout_s=30.0):
    clock, lost, exits = Clock(), [], []
    w = HeadWatch("10.1.2.3:6379", timeout_s, on_lost=lost.append,
                  probe=lambda host, port, t: answers(host, port), exit=exits.append,
                  clock=clock)
    return w, clock, lost, exits


def test_the_watch_fires_only_after_timeout_s_without_an_answer(capsys):
    up = {"ok": True}
    seen = []

    def answers(host, port):
        seen.append((host, port))
        return up["ok"]

    w, clock, lost, exits = watch(answers)
    for _ in range(5):  # the head answers: nothing happens however long
        clock.t += 10
        assert w.check()
    up["ok"] = False  # cut off at t = 150
    for _ in range(2):
        clock.t += 10
        assert w.check()  # 10 and 20 s of silence
    clock.t += 9.9
    assert w.check() and not lost  # 29.9 s
    up["ok"] = True  # a blip: the head answers again, the silence starts over
    clock.t += 1
    assert w.check()
    up["ok"] = False
    clock.t += 29
    assert w.check() and not lost
    clock.t += 1.5  # 30.5 s of silence
    assert not w.check()
    assert seen[0] == ("10.1.2.3", 6379)
    [message] = lost
    assert message == ("lost contact with the Ray head at ray.address=10.1.2.3:6379: no "
                       "connection accepted for 30 s (ray.connect_timeout_s); the head node or "
                       "the network between this driver and it is down")
    assert exits == [3]
    assert f"error: {message}; stopping the run" in capsys.readouterr().err


def test_ray_address_auto_probes_the_head_the_driver_joined():
    """``ray.address: auto`` names no host: the watch probes the GCS address Ray joined and
    its message names both."""
    seen = []
    w = HeadWatch("auto", 30.0, probe=lambda host, port, t: seen.append((host, port)) or True,
                  target="10.1.2.3:6380")
    assert w.check() and seen == [("10.1.2.3", 6380)]
    assert w.message().startswith("lost contact with the Ray head at ray.address=auto "
                                  "(10.1.2.3:6380): no connection accepted for 30 s")


def test_gcs_address_without_ray_connected_is_the_configured_one():
    from rlcore.actors.head_watch import gcs_address

    assert gcs_address("10.9.9.9:6379") == "10.9.9.9:6379"


def test_a_closed_watch_never_fires():
    w, clock, lost, exits = watch(lambda host, port: False, timeout_s=1.0)
    w.close()
    clock.t += 5
    w.check()
    assert lost == [] and exits == []


def test_a_failing_save_still_ends_the_process(capsys):
    clock, exits = Clock(), []

    def on_lost(message):
        raise OSError("disk full")

    w = HeadWatch("h:1", 1.0, on_lost=on_lost, probe=lambda *a: False, exit=exits.append,
                  clock=clock)
    clock.t += 2
    assert not w.check()
    assert exits == [3] and "could not save the run: disk full" in capsys.readouterr().err


def test_the_run_records_a_lost_head_without_a_new_checkpoint(tmp_path, capsys):
    """What the run hands the watch: summary.json says failed, the cause, and the last
    checkpoint on disk (where ``rlcore resume`` starts); no checkpoint is written."""
    exp = tmp_path / "exp.yaml"
    exp.write_text("algorithm: ppo\nseed: 0\nenv: {id: CartPole-v1, num_envs: 2}\n"
                   "rollout: {num_actors: 0, fragment_length: 16}\n"
                   "learner: {num_epochs: 1, minibatch_size: 0, torch_threads: 1}\n"
                   "stop: {num_env_steps: 128}\neval: {every_env_steps: 0, episodes: 1}\n"
                   "checkpoint: {every_env_steps: 64}\n")
    run_dir = tmp_path / "run"
    _, run = train_experiment(exp, run_dir)
    before = ckpt_names(run_dir)
    assert before  # the run's own checkpoints
    message = HeadWatch("10.1.2.3:6379", 30.0).message()
    run._stuck(message, "ClusterError", save=False)
    assert ckpt_names(run_dir) == before
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "failed" and summary["checkpoint"] is None
    assert summary["error"] == f"ClusterError: {message}"
    assert summary["last_checkpoint"].endswith(before[-1])
    err = capsys.readouterr().err
    assert "no checkpoint without the cluster; the last checkpoint: " in err
    assert f"continue with: rlcore resume {run_dir}" in err
