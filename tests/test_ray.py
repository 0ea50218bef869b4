"""Ray rollout actors on a local, loopback-only Ray: same records as the inline path."""

import re
import subprocess

import numpy as np
import pytest
import torch
import yaml

from rlcore.actors.pool import rollout_pool
from rlcore.config import load_experiment
from rlcore.learner.core import Learner
from rlcore.run.checks import check_spaces

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def experiment(tmp_path, num_actors):
    path = tmp_path / f"exp{num_actors}.yaml"
    path.write_text(yaml.safe_dump({
        "algorithm": "ppo", "seed": 3,
        "env": {"id": "CartPole-v1", "num_envs": 2 * max(1, num_actors)},  # 2 per actor
        "rollout": {"num_actors": num_actors, "fragment_length": 16},
        "learner": {"minibatch_size": 16},
        "ray": {"num_cpus": 2},
    }))
    return load_experiment(path)


def non_loopback_ray_sockets() -> list[str]:
    out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
    bad = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local, peer = fields[3], fields[4]
        loop = all(re.match(r"^(127\.|\[::1\]|\[::ffff:127\.)", a) for a in (local, peer))
        if not loop and re.search(r"ray|gcs_server|raylet|python", line):
            bad.append(line)
    return bad


def test_two_actors_match_inline_records(tmp_path, ray_session):
    exp_ray, exp_inline = experiment(tmp_path, 2), experiment(tmp_path, 0)
    spaces = check_spaces(exp_ray)
    learner = Learner(exp_ray, spaces, torch.device("cpu"))
    weights = learner.weights()
    pool = rollout_pool(exp_ray, spaces)
    try:
        frags = pool.sample(weights, 7)
        again = pool.sample(None, 7)  # weights are not re-sent for the same version
    finally:
        pool.close()
    inline = rollout_pool(exp_inline, spaces).sample(weights, 7)[0]

    assert sorted(f.actor_id for f in frags) == [0, 1]
    assert all(f.policy_version == 7 for f in frags + again)
    for f in frags:
        for name in ("obs", "action", "reward", "terminated", "truncated", "log_prob",
                     "bootstrap_obs"):
            a, b = getattr(f, name), getattr(inline, name)
            assert a.shape == b.shape and a.dtype == b.dtype, name
    # actor 0 on Ray and the inline worker (actor 0) use the same seeds and weights
    ray0 = next(f for f in frags if f.actor_id == 0)
    np.testing.assert_array_equal(ray0.obs, inline.obs)
    np.testing.assert_array_equal(ray0.action, inline.action)
    ray1 = next(f for f in frags if f.actor_id == 1)
    assert not np.array_equal(ray1.obs, ray0.obs)
    # a learner update accepts the actors' fragments
    metrics = learner.update(frags, 0.0)
    assert np.isfinite(metrics["loss"])


def test_local_ray_talks_only_to_loopback(tmp_path, ray_session):
    import ray

    exp = experiment(tmp_path, 2)
    spaces = check_spaces(exp)
    pool = rollout_pool(exp, spaces)
    try:
        pool.sample(Learner(exp, spaces, torch.device("cpu")).weights(), 0)
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        assert non_loopback_ray_sockets() == []
    finally:
        pool.close()


def test_more_actors_than_cpus_fails_fast(tmp_path, ray_session):
    from rlcore.errors import ClusterError

    exp = experiment(tmp_path, 2)
    exp.config.rollout.num_cpus_per_actor = 4
    with pytest.raises(ClusterError, match=r"need 8 CPUs .* has 2; lower rollout.num_actors"):
        rollout_pool(exp, check_spaces(exp))
