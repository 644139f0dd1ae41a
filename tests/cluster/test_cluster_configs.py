"""Cluster configs: launcher YAMLs against the schema inside the installed ray; KubeRay structure."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

CLUSTER = Path(__file__).parents[2] / "cluster"


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "gcp-gpu.yaml"])
def test_launcher_configs_validate_against_rays_schema(name: str) -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = load(name)
    jsonschema.validate(config, schema)
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes
    assert nodes[config["head_node_type"]]["resources"] == {"CPU": 0}  # no DreamWorker on the head
    workers = [n for k, n in nodes.items() if k != config["head_node_type"]]
    assert workers and all(n["max_workers"] >= 1 and n["min_workers"] == 0 for n in workers)  # autoscaling
    assert config["docker"]["image"].endswith("distdream:latest")
    # closed by default: the dashboard on the head's loopback, token authentication on every node
    head, worker = config["head_start_ray_commands"][-1], config["worker_start_ray_commands"][-1]
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in json.dumps(config)
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker
    assert config["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}


def test_launcher_schema_check_can_fail() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    broken = load("aws-gpu.yaml")
    broken["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _gpu_limits(template: dict) -> list:
    return [c["resources"]["limits"].get("nvidia.com/gpu") for c in template["spec"]["containers"]]


@pytest.mark.parametrize(
    ("name", "kind"), [("kuberay-rayjob.yaml", "RayJob"), ("kuberay-raycluster.yaml", "RayCluster")]
)
def test_kuberay_manifests(name: str, kind: str) -> None:
    doc = load(name)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
    spec = doc["spec"]
    if kind == "RayJob":
        assert spec["entrypoint"].startswith("distdream render") and "--address auto" in spec["entrypoint"]
        assert spec["shutdownAfterJobFinishes"] is True
        spec = spec["rayClusterSpec"]
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["template"]["spec"]["containers"]
    groups = spec["workerGroupSpecs"]
    assert groups and all(g["maxReplicas"] >= 1 for g in groups)
    assert all(limit and int(limit) >= 1 for g in groups for limit in _gpu_limits(g["template"]))
    images = {c["image"] for g in [head, *groups] for c in g["template"]["spec"]["containers"]}
    assert images == {"YOUR_REGISTRY/distdream:latest"}
    assert spec["authOptions"] == {"mode": "token"}  # token authentication through KubeRay


def _labels(spec: dict) -> set[str]:
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return {g["template"]["metadata"]["labels"]["distdream.io/cluster"] for g in groups}


def test_network_policies_are_scoped_to_their_own_cluster_and_closed_outward() -> None:
    documents = yaml.safe_load_all((CLUSTER / "kuberay-networkpolicy.yaml").read_text())
    policies = {d["metadata"]["name"]: d for d in documents}
    clusters = {
        "distdream": load("kuberay-raycluster.yaml")["spec"],
        "distdream-render": load("kuberay-rayjob.yaml")["spec"]["rayClusterSpec"],
    }
    for name, spec in clusters.items():
        assert _labels(spec) == {name}  # every pod of the cluster carries its label
        policy = next(
            p["spec"]
            for p in policies.values()
            if p["spec"]["podSelector"] == {"matchLabels": {"distdream.io/cluster": name}}
        )
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        peers = [peer for rule in policy["ingress"] for peer in rule["from"]]
        assert {"podSelector": {"matchLabels": {"distdream.io/cluster": name}}} in peers  # no other Ray cluster's pods
        assert not any("matchExpressions" in json.dumps(p) for p in peers)
        operator = next(r for r in policy["ingress"] if "namespaceSelector" in r["from"][0])
        assert {p["port"] for p in operator["ports"]} == {8265, 10001}
        egress = policy["egress"]
        assert egress[0]["to"] == [{"podSelector": {"matchLabels": {"distdream.io/cluster": name}}}]
        assert {p["port"] for p in egress[1]["ports"]} == {53}
        https = egress[2]
        assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]  # no metadata service
        assert {p["port"] for p in https["ports"]} == {443, 6443}
    job_policy = next(
        p["spec"]
        for p in policies.values()
        if p["spec"]["podSelector"]["matchLabels"]["distdream.io/cluster"] == "distdream-render"
    )
    submitter = job_policy["ingress"][2]
    assert submitter["from"][0]["podSelector"]["matchLabels"] == {
        "ray.io/originated-from-crd": "RayJob",
        "ray.io/originated-from-cr-name": "distdream-render",
    }
    assert submitter["ports"] == [{"protocol": "TCP", "port": 8265}]
    assert load("kuberay-rayjob.yaml")["metadata"]["name"] == "distdream-render"


def test_docker_build_sends_only_the_package() -> None:
    ignore = (CLUSTER.parent / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and "!distdream/" in ignore and "!pyproject.toml" in ignore
    assert not any(line.startswith("!") and line.strip("!/") in (".git", "tests", "docs", ".venv") for line in ignore)


def test_dockerfile_installs_pinned_packages_without_sudo_and_can_bake_weights() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    assert text.startswith("#") and re.search(
        r"^FROM rayproject/ray:\d+\.\d+\.\d+-py311-gpu@\$\{RAY_IMAGE_DIGEST\}$", text, re.M
    )  # pinned by digest
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /home/ray/requirements.lock" in text
    assert "--no-deps --no-build-isolation /home/ray/distdream" in text and "COPY --chown=ray:users . " not in text
    assert "sed -i '/^ray ALL=NOPASSWD: ALL$/d' /etc/sudoers" in text and "gpasswd -d ray sudo" in text
    assert "ARG BAKE_WEIGHTS" in text and "get_state_dict" in text


def test_the_lock_pins_every_dependency_with_a_hash_and_the_images_ray() -> None:
    lock = (CLUSTER / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", lock, re.M))
    entries = [line for line in lock.splitlines() if line and not line.startswith(("#", "    "))]
    assert len(pins) == len(entries) > 50  # every entry pinned and hashed
    normal = {re.sub(r"[-_.]+", "-", name).lower() for name in pins}
    project = tomllib.loads((CLUSTER.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0]).lower() for d in project}
    assert wanted | {"setuptools"} <= normal
    image_ray = re.search(r"^FROM rayproject/ray:(\d+\.\d+\.\d+)-", (CLUSTER / "Dockerfile").read_text(), re.M)
    assert image_ray and pins["ray"] == image_ray.group(1)  # the image's Ray, not another
    assert "cluster/requirements.lock" in (CLUSTER.parent / ".dockerignore").read_text()
