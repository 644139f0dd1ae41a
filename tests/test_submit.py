"""Ray Jobs: submit, status, logs and stop against a real Ray head started on loopback."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from distdream.cli import main
from distdream.errors import JobError
from distdream.job import RemoteJobs
from distdream.samples import pan_frames
from distdream.video import probe, write_clip

PORT, DASHBOARD = 6391, 8271
ADDRESS = f"http://127.0.0.1:{DASHBOARD}"


@pytest.fixture(scope="module")
def head():
    """`ray start --head` with its dashboard on 127.0.0.1 (no token auth: a loopback test cluster)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    subprocess.run(["ray", "start", "--head", f"--port={PORT}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={DASHBOARD}", "--num-cpus=2", "--include-dashboard=true"],
                   check=True, env=env, capture_output=True, timeout=180)
    deadline = time.monotonic() + 120
    while True:
        try:
            RemoteJobs(ADDRESS, timeout=5)
            break
        except JobError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    yield
    subprocess.run(["ray", "stop", "--force"], capture_output=True, timeout=120)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unreachable_address_fails_fast(capsys) -> None:
    t0 = time.monotonic()
    code, _, err = run(capsys, "status", "distdream-x", "--address", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach the Ray dashboard" in err and time.monotonic() - t0 < 10


def test_submit_wait_status_logs_and_resubmit(head, capsys, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(40, 64, 48))[:12], audio="aac")
    out = tmp_path / "out.mp4"
    args = ["submit", str(clip), "-o", str(out), "--address", ADDRESS, "--num-iterations", "1",
            "--num-octaves", "1", "--dream-layers", "_blocks.3", "--chunk-frames", "6", "--overlap", "2"]
    code, stdout, err = run(capsys, *args, "--wait")
    assert code == 0, stdout + err
    sid = stdout.splitlines()[0].split()[-1]
    assert sid.startswith("distdream-") and stdout.strip().endswith(f"{sid}: SUCCEEDED")
    assert "wrote" in stdout and probe(out).frame_count == 12
    code, stdout, _ = run(capsys, "status", sid, "--address", ADDRESS)
    assert code == 0 and stdout.strip() == "SUCCEEDED"
    code, stdout, _ = run(capsys, "logs", sid, "--address", ADDRESS)
    assert code == 0 and "2 chunks" in stdout
    code, stdout, _ = run(capsys, *args)  # the same render again: found, not duplicated
    assert code == 0 and stdout.strip() == f"already submitted: {sid} (SUCCEEDED)"
    code, _, err = run(capsys, "status", "distdream-nope", "--address", ADDRESS)
    assert code == 2 and "no job" in err


def test_stop(head, capsys, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(60, 96, 64))[:40], audio=None)
    code, stdout, _ = run(capsys, "submit", str(clip), "-o", str(tmp_path / "out.mp4"), "--address", ADDRESS,
                          "--chunk-frames", "10", "--overlap", "2")
    sid = stdout.split()[-1]
    code, stdout, _ = run(capsys, "stop", sid, "--address", ADDRESS)
    assert code == 0 and sid in stdout
    deadline = time.monotonic() + 60
    while (state := RemoteJobs(ADDRESS).status(sid)) not in RemoteJobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "STOPPED" and not (tmp_path / "out.mp4").exists()
