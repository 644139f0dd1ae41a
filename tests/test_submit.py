"""Ray Jobs: submit, status, logs and stop against a real Ray head started on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distdream.cli import main
from distdream.errors import JobError
from distdream.engine import RemoteJobs
from distdream.samples import pan_frames, write_clip
from distdream.video import probe
from tests.conftest import free_port

# the `ray` command of the interpreter running the tests (a venv's bin need not be on PATH)
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def head() -> str:
    """`ray start --head` on free ports, its dashboard on 127.0.0.1 (no token auth: a loopback test
    cluster); yields the dashboard's address."""
    port, dashboard = free_port(), free_port()
    address = f"http://127.0.0.1:{dashboard}"
    # the head's jobs run `distdream` by name: find it beside this interpreter, activated or not
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{Path(RAY).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={dashboard}", "--num-cpus=2", "--include-dashboard=true"],
                   check=True, env=env, capture_output=True, timeout=180)
    deadline = time.monotonic() + 120
    while True:
        try:
            RemoteJobs(address, timeout=5)
            break
        except JobError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    yield address
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unreachable_address_is_a_clear_error(capsys) -> None:
    code, _, err = run(capsys, "status", "distdream-x", "--address", f"http://127.0.0.1:{free_port()}")
    assert code == 2 and "cannot reach the Ray dashboard" in err


def test_submit_wait_status_logs_and_resubmit(head: str, capsys, tmp_path: Path) -> None:
    address = head
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(40, 64, 48))[:12], audio="aac")
    out = tmp_path / "out.mp4"
    args = ["submit", str(clip), "-o", str(out), "--address", address, "--num-iterations", "1",
            "--num-octaves", "1", "--dream-layers", "_blocks.3", "--chunk-frames", "6", "--overlap", "2",
            "--no-scan-cuts", "--keyframe-settle", "0"]
    code, stdout, err = run(capsys, *args, "--wait")
    assert code == 0, stdout + err
    sid = stdout.splitlines()[0].split()[-1]
    assert sid.startswith("distdream-") and stdout.strip().endswith(f"{sid}: SUCCEEDED")
    assert "wrote" in stdout and probe(out).frame_count == 12
    code, stdout, _ = run(capsys, "status", sid, "--address", address)
    assert code == 0 and stdout.strip() == "SUCCEEDED"
    code, stdout, _ = run(capsys, "logs", sid, "--address", address)
    assert code == 0 and "2 chunks" in stdout
    code, stdout, _ = run(capsys, *args)  # the same render again: found, not duplicated
    assert code == 0 and stdout.strip() == f"already submitted: {sid} (SUCCEEDED)"
    code, _, err = run(capsys, "status", "distdream-nope", "--address", address)
    assert code == 2 and "no job" in err


def test_stop(head: str, capsys, tmp_path: Path) -> None:
    address = head
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(60, 96, 64))[:40], audio=None)
    code, stdout, _ = run(capsys, "submit", str(clip), "-o", str(tmp_path / "out.mp4"), "--address", address,
                          "--chunk-frames", "10", "--overlap", "2")
    sid = stdout.split()[-1]
    code, stdout, _ = run(capsys, "stop", sid, "--address", address)
    assert code == 0 and sid in stdout
    deadline = time.monotonic() + 60
    while (state := RemoteJobs(address).status(sid)) not in RemoteJobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "STOPPED" and not (tmp_path / "out.mp4").exists()
