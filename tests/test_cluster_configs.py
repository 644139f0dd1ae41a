"""Cluster configs: launcher YAMLs against the schema inside the installed ray; KubeRay structure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

CLUSTER = Path(__file__).parent.parent / "cluster"


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


@pytest.mark.parametrize(("name", "kind"), [("kuberay-rayjob.yaml", "RayJob"), ("kuberay-raycluster.yaml", "RayCluster")])
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


def test_network_policy_admits_only_ray_pods_and_the_operator() -> None:
    doc = load("kuberay-networkpolicy.yaml")
    assert doc["kind"] == "NetworkPolicy" and doc["spec"]["policyTypes"] == ["Ingress"]
    rules = doc["spec"]["ingress"]
    assert [r["from"][0].keys() for r in rules] == [{"podSelector": 0}.keys(), {"namespaceSelector": 0}.keys()]
    assert rules[1]["ports"] == [{"protocol": "TCP", "port": 8265}]  # the operator reaches the dashboard only


def test_docker_build_sends_only_the_package() -> None:
    ignore = (CLUSTER.parent / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and "!distdream/" in ignore and "!pyproject.toml" in ignore
    assert not any(line.startswith("!") and line.strip("!/") in (".git", "tests", "docs", ".venv") for line in ignore)


def test_dockerfile_installs_distdream_and_can_bake_weights() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    assert text.startswith("#") and re.search(r"^FROM rayproject/ray:\d+\.\d+\.\d+-py311-gpu@\$\{RAY_IMAGE_DIGEST\}$",
                                              text, re.M)  # pinned by digest
    assert "pip install --no-cache-dir /home/ray/distdream" in text and "COPY --chown=ray:users . " not in text
    assert "ARG BAKE_WEIGHTS" in text and "get_state_dict" in text
