"""Fault tests on a multi-node Ray cluster (ray.cluster_utils.Cluster): nodes die mid-job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

from distdream.engine import render, testing
from distdream.engine.faults import Fault
from distdream.samples import pan_frames, write_clip
from distdream.video import read_frames
from tests.conftest import own_ray
from tests.engine.test_job import CFG

pytestmark = [pytest.mark.ray, pytest.mark.own_ray]  # a multi-node ray.cluster_utils.Cluster

JOB = dict(chunk_frames=15, overlap=3, workers=2, scan_cuts=False, seams="crossfade")


@pytest.fixture(scope="module")
def cluster():
    """A head with no CPUs (the driver only) and three one-CPU worker nodes: one to spare."""
    own_ray()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=1) for _ in range(3)]
    ray.init(address=c.address, log_to_driver=False)
    c.wait_for_nodes()
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("cl") / "clip.mp4", list(pan_frames(90, 96, 64))[:60], audio="aac")


def test_losing_a_node_mid_job_costs_only_its_chunk(cluster, clip: Path, tmp_path: Path) -> None:
    c, nodes = cluster
    reference = list(read_frames(render(clip, tmp_path / "ref.mp4", CFG, **JOB).output))
    workdir, go = tmp_path / "work", tmp_path / "go"
    # chunks 2 and 3 held at their third frame on their first attempt (tests.engine.gated): once both
    # workers have taken one, the job stands still until the node is gone, however fast it runs
    held = tuple(Fault(chunk=k, at_frame=2, attempts=(0,), kind="wait", go=str(go)) for k in (2, 3))
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), faults=held, **JOB)
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 120

    def both_held() -> bool:  # chunks 0 and 1 are done and their workers have taken chunks 2 and 3
        states = {s.index: s.state for s in job.chunks()}
        return states.get(2) == states.get(3) == "running" and states.get(0) == states.get(1) == "done"

    while not both_held():
        assert time.monotonic() < deadline and not job.done(), job.chunks()
        time.sleep(0.02)
    first = next(iter(json.loads(ledger.read_text())["chunks"].values()))
    running = {s.index for s in job.chunks() if s.state == "running"}
    c.remove_node(next(n for n in nodes if n.node_id == first["node"]))  # a node that is dreaming a chunk
    go.touch()  # the other held chunk goes on; the lost one is dreamed again, not held (attempt 1)
    result = job.result(timeout=300)
    attempts = {s.index: s.attempts for s in job.chunks()}
    redone = [k for k, n in attempts.items() if n == 2]
    # exactly one chunk was interrupted with its node and dreamed again; every other ran once
    assert len(redone) == 1 and redone[0] in running and sorted(attempts.values()) == [1, 1, 1, 2], attempts
    assert result.rendered == 4
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(result.output), reference, strict=True))


def test_a_worker_process_dying_on_a_node_is_retried(cluster, clip: Path, tmp_path: Path) -> None:
    fault = Fault(chunk=0, at_frame=5, attempts=(0,), kind="exit")
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, faults=(fault,), **JOB)
    result = job.result(timeout=300)
    assert result.rendered == 4 and {s.index: s.attempts for s in job.chunks()}[0] == 2
