"""The GPU path measured: learner updates/s on CUDA against the CPU, GPU-batched Nature-CNN
inference for Atari collection as a share of the raw ale-py rate, and a short DQN Pong run with
the learner on the GPU. Run through benchmarks/gpu_check.sh (which makes the venv); alone:

    python benchmarks/gpu_check.py --out gpu.jsonl --markdown gpu.md [--seconds 10] [--pong-s 180]

Without a CUDA device it says so and exits with status 3, before measuring anything.

Learner (synthetic data of the right shapes, so no env is needed; one update as the training
loop calls it, so the numbers include batch preparation and host-to-device copies):
  ppo_mlp   experiments/ppo_halfcheetah.yaml (obs 17, 6 actions): one update = 20 epochs of
            64-sample minibatches over a 512-step rollout
  ppo_cnn   experiments/ppo_pong.yaml (4x84x84 uint8, 6 actions): 4 epochs of 256 over 8 x 128
  dqn_cnn, c51_cnn   experiments/{dqn,c51}_pong.yaml: one optimizer step on 32 replayed frames
Collection: ale-py's AtariVectorEnv (``rlcore/PongNative-v5``), N envs, random actions (raw),
against the same loop with greedy actions from the Nature CNN on the GPU (observations copied
to the device and actions back every step).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc  # first: starts the process clock

NO_DEVICE = 3  # exit status when there is no CUDA device


def cuda_device() -> str | None:
    """The CUDA device's name, or None (torch without CUDA, or no device visible)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def emit(task: str, metrics: dict, config: dict, out) -> dict:
    line = bc.make_line(f"rlcore_gpu_{task}", 0, metrics, config, {})
    line["task"] = task
    bc.emit(line, out)
    return line


# ---------------------------------------------------------------------------- learner

LEARNERS = {  # name: (experiment file, overrides, spaces)
    "ppo_mlp": ("ppo_halfcheetah.yaml", ["env.normalize_obs=false", "env.normalize_reward=false"],
                ((17,), "float32", "box", (6,), 0, (-1.0,) * 6, (1.0,) * 6)),
    "ppo_cnn": ("ppo_pong.yaml", [], ((4, 84, 84), "uint8", "discrete", (), 6)),
    "dqn_cnn": ("dqn_pong.yaml", ["algo.buffer_size=20000", "env.num_envs=1"],
                ((4, 84, 84), "uint8", "discrete", (), 6)),
    "c51_cnn": ("c51_pong.yaml", ["algo.buffer_size=20000", "env.num_envs=1"],
                ((4, 84, 84), "uint8", "discrete", (), 6)),
}


def synthetic_fragments(exp, spaces, rng):
    """One rollout's fragments (every actor's share) of random data with the spaces' shapes."""
    import numpy as np

    from rlcore.types import Fragment

    T, N = exp.config.rollout.fragment_length, exp.config.env.num_envs
    shape = spaces.obs_shape
    if spaces.obs_dtype == "uint8":
        obs = rng.integers(0, 256, (T, N, *shape), dtype=np.uint8)
        boot = rng.integers(0, 256, (N, *shape), dtype=np.uint8)
    else:
        obs = rng.standard_normal((T, N, *shape)).astype(np.float32)
        boot = rng.standard_normal((N, *shape)).astype(np.float32)
    if spaces.action_kind == "discrete":
        action = rng.integers(0, spaces.num_actions, (T, N))
    else:
        action = rng.standard_normal((T, N, *spaces.action_shape)).astype(np.float32)
    done = rng.random((T, N)) < 0.01
    return [Fragment(obs=obs, action=action, reward=rng.standard_normal((T, N)).astype(np.float32),
                     terminated=done, truncated=np.zeros((T, N), bool), bootstrap_obs=boot,
                     final_obs=obs[:0, 0], final_idx=np.zeros((0, 2), np.int64),
                     log_prob=-rng.random((T, N)).astype(np.float32), policy_version=0,
                     actor_id=0)]


def learner_and_data(name: str, device: str, extra: tuple = ()):
    """The learner of ``LEARNERS[name]`` on ``device`` and what it learns from: ``data()`` gives
    one update's input (a replay batch, or a rollout's synthetic fragments), ``env_steps`` the
    env steps in it (None for replay); ``sync()`` waits for the device."""
    import numpy as np
    import torch

    from rlcore.config import load_experiment
    from rlcore.learner.core import Learner
    from rlcore.regimes.transition import make_replay
    from rlcore.types import SpaceSpec

    file, overrides, spec = LEARNERS[name]
    exp = load_experiment(bc.ROOT / "experiments" / file, [*overrides, *extra])
    spaces = SpaceSpec(*spec)
    rng = np.random.default_rng(0)
    replay = name.endswith("_cnn") and not name.startswith("ppo")
    learner = Learner(exp, spaces, torch.device(device), one_step=replay)
    if replay:
        buf = make_replay(exp, spaces)
        bc.fill_random_frames(buf, 2000, rng)
        batch_size = exp.algo.batch_size
        data, env_steps = (lambda: buf.sample(batch_size)), None
    else:
        frags = synthetic_fragments(exp, spaces, rng)
        data, env_steps = (lambda: frags), sum(f.num_steps for f in frags)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return learner, data, env_steps, sync


def learner_rate(name: str, device: str, seconds: float, extra: tuple = ()) -> dict:
    learner, data, env_steps, sync = learner_and_data(name, device, extra)
    for _ in range(2):  # warm-up (CUDA context, cuDNN autotuning, allocator)
        learner.update(data(), 0.0)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        learner.update(data(), 0.0)
        n += 1
    sync()
    dt = time.perf_counter() - t0
    out = {"updates_per_s": round(n / dt, 2), "ms_per_update": round(1000 * dt / n, 2)}
    if env_steps:
        out["env_steps_learned_per_s"] = round(n * env_steps / dt)
    return out


# ---------------------------------------------------------------------------- collection


def collection_rates(num_envs: int, seconds: float, device: str = "cuda") -> dict:
    """Raw ale-py vector env steps/s (random actions) and the same loop with greedy actions
    from a Nature-CNN Q network on ``device``: one vector env, the network between its steps
    (``gpu_cnn``), and two half-size vector envs (``gpu_cnn_overlap``, as ``rollout.overlap``
    splits a worker's sub-envs), where the network acts for one half while the other steps in
    ale-py's threads."""
    import numpy as np
    import torch

    from rlcore.actors.worker import make_vec_env
    from rlcore.networks.value import QNetwork
    from rlcore.types import SpaceSpec

    envs = make_vec_env("rlcore/PongNative-v5", num_envs, {})
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    spaces = SpaceSpec(tuple(obs.shape[1:]), "uint8", "discrete", (), int(envs.single_action_space.n))
    net = QNetwork(spaces, hidden=(512,)).to(device).eval()

    def greedy_actions(o) -> np.ndarray:
        with torch.inference_mode():
            q = net(torch.from_numpy(o).to(device, non_blocking=True))[..., 0]
            return q.argmax(-1).cpu().numpy()

    def raw() -> int:
        envs.step(rng.integers(0, spaces.num_actions, num_envs))
        return num_envs

    def greedy() -> int:
        nonlocal obs
        obs = envs.step(greedy_actions(obs))[0]
        return num_envs

    halves = [make_vec_env("rlcore/PongNative-v5", num_envs // 2, {}) for _ in range(2)]
    for i, h in enumerate(halves):
        h.send(greedy_actions(h.reset(seed=i)[0]))

    def overlapped() -> int:
        for h in halves:  # this half's step is done: act for it while the other steps
            h.send(greedy_actions(h.recv()[0]))
        return 2 * (num_envs // 2)

    rates = {}
    for name, step in (("raw", raw), ("gpu_cnn", greedy), ("gpu_cnn_overlap", overlapped),
                       ("raw_again", raw)):
        for _ in range(20):
            step()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            steps += step()
        rates[name] = steps / (time.perf_counter() - t0)
    for h in halves:
        h.recv()
        h.close()
    envs.close()
    raw_rate = (rates["raw"] + rates["raw_again"]) / 2
    return {"raw_steps_per_s": round(raw_rate), "gpu_cnn_steps_per_s": round(rates["gpu_cnn"]),
            "share_of_raw": round(rates["gpu_cnn"] / raw_rate, 3),
            "gpu_cnn_overlap_steps_per_s": round(rates["gpu_cnn_overlap"]),
            "overlap_share_of_raw": round(rates["gpu_cnn_overlap"] / raw_rate, 3)}


def update_profile(name: str, device: str, updates: int = 50) -> dict:
    """Where one learner update's time goes on ``device``: the replay sample alone (host), and
    torch.profiler's top operators over ``updates`` updates by their own host time."""
    from torch.profiler import ProfilerActivity, profile

    learner, data, _, sync = learner_and_data(name, device)
    for _ in range(5):
        learner.update(data(), 0.0)
    t0 = time.perf_counter()
    batches = [data() for _ in range(updates)]
    sample_ms = 1000 * (time.perf_counter() - t0) / updates
    sync()
    t0 = time.perf_counter()
    for b in batches:
        learner.update(b, 0.0)
    sync()
    update_ms = 1000 * (time.perf_counter() - t0) / updates
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for b in batches[:20]:
            learner.update(b, 0.0)
        sync()

    def device_us(e) -> float:  # torch renamed the field (cuda -> device)
        return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0))

    events = prof.key_averages()
    rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    top = [[e.key, e.count // 20, round(e.self_cpu_time_total / 20 / 1000, 3),
            round(device_us(e) / 20 / 1000, 3)] for e in rows]
    gpu_ms = sum(device_us(e) for e in events) / 20 / 1000
    return {"sample_ms": round(sample_ms, 3), "update_ms_without_sample": round(update_ms, 3),
            "gpu_busy_ms_per_update": round(gpu_ms, 3),
            "top_ops_per_update [op, calls, self host ms, self device ms]": top}


# ---------------------------------------------------------------------------- DQN Pong


def pong_run(wall_s: int, device: str = "cuda") -> dict:
    """``rlcore run experiments/dqn_pong.yaml`` with the learner on CUDA for ``wall_s`` seconds;
    the curve of finished-episode returns as the run folder's TensorBoard holds it."""
    from rlcore.analysis.runs import load_run, read_scalar, scalar_tags

    run_dir = Path(tempfile.mkdtemp(prefix="gpu_pong_")) / "run"
    cmd = [sys.executable, "-m", "rlcore.cli", "run", str(bc.ROOT / "experiments" / "dqn_pong.yaml"),
           "--set", f"learner.device={device}", "--set", f"stop.wall_s={wall_s}",
           "--set", "eval.every_env_steps=100000000", "--run-dir", str(run_dir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=wall_s + 300)
    out = {"exit_status": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1),
           "command": " ".join(cmd[2:])}
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-2000:]
        return out
    run = load_run(run_dir)
    tags = scalar_tags(run)
    if "rollout/episode_return_mean100" in tags:  # the training episodes' mean of the last 100
        s = read_scalar(run, "rollout/episode_return_mean100")
        keep = sorted(set(range(0, len(s.step), max(1, len(s.step) // 12))) | {len(s.step) - 1})
        out["episode_return_mean100_curve"] = [[int(s.step[i]), round(float(s.value[i]), 2)]
                                               for i in keep]
    for tag, key in (("buffer/size", "env_steps"), ("buffer/updates", "updates"),
                     ("eval/return_mean", "final_eval_return")):
        if tag in tags:
            out[key] = round(float(read_scalar(run, tag).value[-1]), 2)
    for tag, key in (("time/env_steps_per_s", "env_steps_per_s_last5"),
                     ("time/update_s", "update_s_last5")):
        if tag in tags:
            out[key] = round(float(read_scalar(run, tag).value[-5:].mean()), 5)
    out["tags"] = tags[:40]
    return out


# ---------------------------------------------------------------------------- report


def markdown(lines: list[dict], device: str) -> str:
    host = lines[0]["host"] if lines else {}
    rows = ["", f"## GPU path ({device}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
            f"`benchmarks/gpu_check.sh`, commit `{(lines[0]['git'] or {}).get('commit', '?')[:7]}`, "
            f"CPU {host.get('cpu_model', '?')} ({host.get('cpus', '?')} cores), one torch "
            "thread on the CPU side.", "",
            "| learner | CPU updates/s | GPU updates/s | GPU / CPU |", "|---|--:|--:|--:|"]
    sets = next((ln["config"].get("overrides") for ln in lines if ln["config"].get("overrides")), None)
    if sets:
        rows.insert(-2, f"Every learner with `{' '.join(sets)}`.\n")
    by = {(ln["task"], ln["config"].get("device")): ln["metrics"] for ln in lines}
    for name in LEARNERS:
        cpu, gpu = by.get((name, "cpu")), by.get((name, "cuda"))
        if cpu and gpu:
            rows.append(f"| {name} | {cpu['updates_per_s']} | {gpu['updates_per_s']} | "
                        f"{gpu['updates_per_s'] / cpu['updates_per_s']:.2f}× |")
    for ln in lines:
        if ln["task"] == "atari_collection":
            m = ln["metrics"]
            rows += ["", f"Atari collection, {ln['config']['num_envs']} envs: raw "
                     f"{m['raw_steps_per_s']} steps/s, with GPU CNN inference "
                     f"{m['gpu_cnn_steps_per_s']} ({100 * m['share_of_raw']:.0f} % of raw), with the "
                     f"halves overlapped {m['gpu_cnn_overlap_steps_per_s']} "
                     f"({100 * m['overlap_share_of_raw']:.0f} %); goal ≥ 80 %."]
        if ln["task"] == "dqn_pong":
            m = ln["metrics"]
            rows += ["", f"DQN Pong (`experiments/dqn_pong.yaml`, inline collection), learner on "
                     f"the GPU, {m.get('wall_s')} s: exit {m.get('exit_status')}, "
                     f"{m.get('env_steps')} env steps, {m.get('updates')} updates, "
                     f"{m.get('env_steps_per_s_last5')} env steps/s at the end; training "
                     f"return (mean of the last 100 episodes) by env step: "
                     f"{m.get('episode_return_mean100_curve', 'none recorded')}"]
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="per learner and device")
    p.add_argument("--atari-envs", type=int, nargs="+", default=[16, 64])
    p.add_argument("--pong-s", type=int, default=180, help="DQN Pong wall seconds (0: skip)")
    p.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=list(LEARNERS))
    p.add_argument("--learner-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides for every learner measured (e.g. learner.fused_adam=true)")
    p.add_argument("--profile", nargs="*", default=["dqn_cnn"], choices=list(LEARNERS)[2:],
                   help="replay learners whose update is profiled on the GPU")
    p.add_argument("--out", default=None, help="append the JSON lines to this file")
    p.add_argument("--markdown", default=None, help="append the results table to this file")
    args = p.parse_args(argv)
    device = cuda_device()
    if device is None:
        import torch

        print(f"gpu_check: no CUDA device visible (torch {torch.__version__}, "
              f"built with CUDA {torch.version.cuda}); nothing measured. Run it on a machine "
              "with an NVIDIA GPU and its driver (nvidia-smi lists the device).", file=sys.stderr)
        return NO_DEVICE
    import torch

    torch.set_num_threads(1)
    lines = []
    for name in args.learners:
        for dev in ("cpu", "cuda"):
            lines.append(emit(name, learner_rate(name, dev, args.seconds, tuple(args.learner_set)),
                              {"device": dev, "file": LEARNERS[name][0], "gpu": device,
                               "overrides": args.learner_set}, args.out))
    for name in args.profile:
        lines.append(emit(f"{name}_profile", update_profile(name, "cuda"),
                          {"device": "cuda", "file": LEARNERS[name][0], "gpu": device}, args.out))
    for n in args.atari_envs:
        lines.append(emit("atari_collection", collection_rates(n, args.seconds),
                          {"num_envs": n, "gpu": device}, args.out))
    if args.pong_s > 0:
        lines.append(emit("dqn_pong", pong_run(args.pong_s), {"gpu": device}, args.out))
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(markdown(lines, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
