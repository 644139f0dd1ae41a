"""`cluster/slurm.sbatch` under a real Slurm (a single-node controller on this machine, set up by
`tests/cluster/slurm_setup.sh` as root): a render submitted with `sbatch`, requeued by
`scontrol requeue` mid-render and warned of its time limit (Slurm's USR1 to the batch shell),
resumes by itself each time and ends frame for frame equal to an uninterrupted render.

The render's last chunk waits for the test's go-ahead (tests.engine.gated), so every
interruption lands mid-render. Without a reachable Slurm the test is skipped, saying how to
start one, unless DISTDREAM_REQUIRE_SLURM=1 (CI): then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from distdream.video import read_frames
from tests.conftest import free_port
from tests.engine.gated import ROOT, gate
from tests.engine.test_job import clip, reference  # noqa: F401 - the 3-chunk clip and its uninterrupted render
from tests.engine.test_signals import FLAGS
from tests.engine.test_submit import end_processes_of, free_ports

pytestmark = [pytest.mark.ray, pytest.mark.own_ray]

SBATCH = ROOT / "cluster" / "slurm.sbatch"
RENDER_FLAGS = [f for f in FLAGS if f not in ("--ray", "always", "-q")]


@pytest.fixture(scope="module")
def slurm() -> None:
    """A Slurm controller that answers, with an idle node."""
    up = shutil.which("sbatch") and subprocess.run(["scontrol", "ping"], capture_output=True, text=True).returncode == 0
    if not up:
        why = "no Slurm controller answers: run tests/cluster/slurm_setup.sh as root"
        if os.environ.get("DISTDREAM_REQUIRE_SLURM") == "1":
            pytest.fail(why)
        pytest.skip(why)


def job_state(job: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"JobState=(\w+)", shown)
    return m.group(1) if m else "GONE"


ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "GONE")


def wait_for(what: str, check, limit: float, log: Path, job: str | None = None) -> None:
    """Wait up to ``limit`` s for ``check()``; fail at once if ``job`` has ended meanwhile."""
    deadline = time.monotonic() + limit
    while not check():
        state = job_state(job) if job is not None else ""
        if state in ENDED and not check():
            pytest.fail(f"{what}: the job ended ({state})\n{said_lines(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit:.0f} s\n{said_lines(log)}")
        time.sleep(0.5)


def said(log: Path | str, text: str) -> int:
    """How often ``text`` is in the log (or in a part of it, given as a string)."""
    if isinstance(log, str):
        return log.count(text)
    return log.read_text().count(text) if log.exists() else 0


def said_lines(log: Path, last: int = 80) -> str:
    """The log's last lines, progress bars left out (they fill a log of a held render)."""
    if not log.exists():
        return "(no log)"
    lines = [line for line in re.split(r"[\r\n]+", log.read_text()) if line.strip()]
    lines = [line for line in lines if not re.match(r"\s*(dreaming|starting workers):", line)]
    return "\n".join(lines[-last:])


def start_again(job: str, log: Path, then: Callable[[], None] = lambda: None) -> None:
    """A requeued job waits two minutes (Slurm's requeue delay); once it is pending (its last
    start's processes gone) and ``then()`` has run, the test lets it start in two seconds. Not at
    once: slurmd refuses a launch whose credential is dated the same second as the revocation of
    the job's last one ("Job credential revoked"; the job then fails)."""
    wait_for("the job requeued", lambda: job_state(job) == "PENDING", 120, log)
    then()
    subprocess.run(
        ["scontrol", "update", f"JobId={job}", "StartTime=now+2"], check=True, capture_output=True, timeout=30
    )


def test_an_sbatch_render_requeued_and_warned_resumes_by_itself_to_the_uninterrupted_frames(
    slurm: None, clip: Path, reference, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    held = gate(go, chunk=2)  # the clip plans into 3 chunks (tests.engine.test_job)
    faults = json.dumps([asdict(held)], separators=(",", ":"))
    log, out, work = tmp_path / "slurm.log", tmp_path / "out.mp4", tmp_path / "work"
    port, temp_dir = free_port(), tempfile.mkdtemp(prefix="rayslurm-", dir="/tmp")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "INPUT": str(clip),
        "OUTPUT": str(out),
        "DISTDREAM": f"{sys.executable} -m tests.engine.gated {faults}",
        "DISTDREAM_ARGS": " ".join(RENDER_FLAGS),
        "DISTDREAM_WORKDIR": str(work),
        "RAY_PORT": str(port),
        "RAY_START_ARGS": " ".join(
            ["--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", *free_ports()]
        ),
    }
    job = subprocess.run(
        ["sbatch", "--parsable", "--nodes=1", "--exclusive", f"--chdir={ROOT}", f"--output={log}", str(SBATCH)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    ledger = work / "ledger.json"

    def chunks_done() -> int:
        return len(json.loads(ledger.read_text())["chunks"]) if ledger.exists() else 0

    try:
        # 1. `scontrol requeue` mid-render: Slurm signals every process; the render keeps its chunks
        held_now = Path(f"{go}.held")
        wait_for("chunks 0 and 1 finished, 2 held", lambda: chunks_done() == 2 and held_now.exists(), 300, log, job)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        # Slurm signals Ray's processes too: the render stops as it does on a SIGTERM, or Ray ends it
        # first (code 1) as its raylet goes; either way what was finished stays (checked at the end)
        start_again(job, log, then=Path(f"{go}.held").unlink)  # the next render to hold chunk 2 leaves it again
        wait_for("the second start", lambda: said(log, "restart 1,") == 1, 180, log, job)

        # 2. the time limit's warning (what --signal=B:USR1@300 sends): the script stops the render
        #    and requeues the job itself
        wait_for("the resumed render holds chunk 2", lambda: Path(f"{go}.held").exists(), 300, log, job)
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, timeout=30)
        stop = "stopped by SIGTERM; finished chunks are kept"  # only the render is signalled: it stops in order
        wait_for("the warned stop", lambda: said(log.read_text().rsplit("restart 1,", 1)[-1], stop) == 1, 120, log, job)
        start_again(job, log)
        wait_for("the third start", lambda: said(log, "restart 2,") == 1, 180, log, job)

        # 3. the go-ahead: the last chunk is dreamed, the rest comes from the ledger
        go.touch()
        wait_for("the job completed", lambda: job_state(job) == "COMPLETED", 300, log)
    finally:
        if job_state(job) not in ("COMPLETED", "GONE"):
            subprocess.run(["scancel", job], timeout=30)
        end_processes_of(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)
    text = log.read_text()
    assert "(2 from the ledger)" in text, text[-4000:]  # the last run dreamed only the held chunk
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(out), reference, strict=True))
