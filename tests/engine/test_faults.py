"""The fault-injection aid is not a setting, a fault it does not know is refused up front, and a
job in this process takes the faults a thread can show: a chunk that fails, and a chunk held for
the test's go-ahead (tests.engine.gated)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from distdream.engine import testing
from distdream.engine.faults import FAULT_KINDS, THREAD_KINDS, Fault, checked_faults, hold
from distdream.errors import ConfigError, JobCancelled, JobError
from distdream.options import JobOptions
from distdream.samples import pan_frames, write_clip
from tests.engine.gated import gate
from tests.engine.test_local import CFG

JOB = dict(chunk_frames=10, overlap=3, scan_cuts=False, seams="handoff", workers=1, ray="never")


def test_an_unknown_fault_kind_is_refused_before_the_job_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown fault kind 'explode'"):
        testing.submit(tmp_path / "in.mp4", tmp_path / "out.mp4", faults=(Fault(kind="explode"),))
    with pytest.raises(ConfigError, match="'exit' fault needs a worker process"):
        testing.submit(tmp_path / "in.mp4", tmp_path / "out.mp4", ray="never", faults=(Fault(kind="exit"),))
    with pytest.raises(ConfigError, match="needs go=PATH"):
        testing.submit(tmp_path / "in.mp4", tmp_path / "out.mp4", faults=(Fault(kind="wait"),))
    assert list(tmp_path.iterdir()) == []
    every = [Fault(kind=kind, go="go") for kind in FAULT_KINDS]
    assert checked_faults(every) == tuple(every)
    assert checked_faults(every[:2], in_process=False) == tuple(every[:2])
    assert [f.kind for f in checked_faults([f for f in every if f.kind in THREAD_KINDS], in_process=True)] == [
        "raise",
        "wait",
        "join-wait",  # the join's and the stop's: the driver's own, wherever the chunks run
        "publish-wait",
        "stop-wait",
    ]
    with pytest.raises(ConfigError, match="needs go=PATH"):
        checked_faults([Fault(kind="publish-wait")], in_process=True)


def test_faults_are_not_a_job_option() -> None:
    with pytest.raises(TypeError):
        JobOptions(inject_faults=(Fault(),))  # type: ignore[call-arg]


def test_a_wait_goes_on_at_the_go_ahead_or_a_stop_and_fails_when_neither_comes(tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()
    hold(gate(go, 0))  # there already: at once
    hold(gate(tmp_path / "never", 0), stopped=lambda: True)  # the job stopped: the caller's check ends the chunk
    with pytest.raises(RuntimeError, match="no go-ahead"):
        hold(gate(tmp_path / "never", 0), limit=0.1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(
        tmp_path_factory.mktemp("faults") / "pan.mp4", pan_frames(30, 64, 48), audio=None
    )  # 3 chunks of 10


def test_a_chunk_that_fails_in_this_process_is_tried_again(clip: Path, tmp_path: Path) -> None:
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, faults=(Fault(chunk=1, at_frame=2, attempts=(0,)),), **JOB)
    result = job.result(timeout=300)
    assert job.in_process and result.rendered == 3
    assert {s.index: s.attempts for s in job.chunks()} == {0: 1, 1: 2, 2: 1}


def test_a_held_chunk_holds_the_render_until_the_go_ahead(clip: Path, tmp_path: Path) -> None:
    go, workdir = tmp_path / "go", tmp_path / "work"
    job = testing.submit(
        clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), faults=(gate(go, 1, at_frame=2),), **JOB
    )
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 120
    while job.progress()[0] < 10 + 2 and time.monotonic() < deadline:  # chunk 0, then 2 frames of chunk 1
        job.wait(0.05)
    time.sleep(1.0)  # time enough for more frames, were chunk 1 not held
    assert job.progress()[0] == 12 and not job.done()
    assert list(json.loads(ledger.read_text())["chunks"]) == ["00000"]
    go.touch()
    assert job.result(timeout=300).rendered == 3 and (tmp_path / "out.mp4").exists()


def test_a_held_chunk_ends_with_a_stop(clip: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    job = testing.submit(
        clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), faults=(gate(tmp_path / "never", 1),), **JOB
    )
    while not any(c.state == "done" for c in job.chunks()):
        assert job.wait(0.05) is False  # it cannot end before chunk 1's go-ahead
    job.cancel()
    with pytest.raises(JobCancelled):
        job.result(timeout=60)
    assert list(json.loads((workdir / "ledger.json").read_text())["chunks"]) == ["00000"]
    assert not (workdir / "lock.json").exists()


def test_render_takes_faults_in_this_process_too(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="injected fault in chunk 2"):
        testing.render(clip, tmp_path / "out.mp4", CFG, max_attempts=1, faults=(Fault(chunk=2),), **JOB)


def test_a_chunk_that_hangs_in_this_process_stops_the_job_at_its_timeout(clip: Path, tmp_path: Path) -> None:
    """--chunk-timeout in process: a thread cannot be killed, so the job stops, naming the chunk,
    and keeps what was finished (the held chunk never gets its go-ahead: a hang)."""
    workdir = tmp_path / "work"
    job = testing.submit(
        clip,
        tmp_path / "out.mp4",
        CFG,
        workdir=str(workdir),
        chunk_timeout=2.0,
        faults=(gate(tmp_path / "never", 1, at_frame=3),),
        **JOB,
    )
    assert job.wait(120), "the job did not stop"  # far more than 2 s, far less than a hang
    with pytest.raises(JobError, match=r"chunk 1 \(frames 10–19\) did not finish within 2 s \(--chunk-timeout\)"):
        job.result()
    assert list(json.loads((workdir / "ledger.json").read_text())["chunks"]) == ["00000"]
    assert not (workdir / "lock.json").exists() and not (tmp_path / "out.mp4").exists()
