"""Ray Jobs: submit, status, logs and stop against a real Ray head started on loopback."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distdream.cli import main
from distdream.engine import RemoteJobs
from distdream.errors import JobError
from distdream.samples import pan_frames, write_clip
from distdream.video import probe
from tests.conftest import free_port, own_ray

# a Ray head with its dashboard, and jobs submitted to it; its teardown's `ray stop` ends every Ray on the machine
pytestmark = [pytest.mark.ray, pytest.mark.own_ray]

# the `ray` command of the interpreter running the tests (a venv's bin need not be on PATH)
RAY = str(Path(sys.executable).with_name("ray"))
# the lightest dream a submitted job can run: these tests are about submission, not pixels
LIGHT = "--num-iterations 1 --num-octaves 1 --dream-layers _blocks.3 --no-scan-cuts --keyframe-settle 0".split()


@contextlib.contextmanager
def ray_head(env: dict[str, str]) -> Iterator[str]:
    """`ray start --head` on free ports with ``env``, its dashboard on 127.0.0.1; yields the
    dashboard's address, and `ray stop` ends it (and every other Ray on the machine: an
    ``own_ray`` module's). The shared instance of the tests goes first."""
    own_ray()
    port, dashboard = free_port(), free_port()
    # the head's jobs run `distdream` by name: find it beside this interpreter, activated or not
    env = {**env, "PATH": f"{Path(RAY).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            "--num-cpus=2",
            "--include-dashboard=true",
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def head() -> Iterator[str]:
    """A loopback test cluster (no token auth); yields its dashboard's address once it answers."""
    with ray_head({**os.environ, "RAY_AUTH_MODE": "disabled"}) as address:
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


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unreachable_address_is_a_clear_error(capsys) -> None:
    code, _, err = run(capsys, "status", "distdream-x", "--address", f"http://127.0.0.1:{free_port()}")
    assert code == 2 and "cannot reach the Ray dashboard" in err


@pytest.fixture()
def stalled() -> str:
    """A server on loopback that accepts connections and never answers (a wedged dashboard)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("command", [["status", "distdream-x"], ["submit", "/in.mp4", "-o", "/out.mp4", "--wait"]])
def test_a_dashboard_that_never_answers_costs_the_request_timeout_and_the_cli_exits(
    stalled: str, command: list[str]
) -> None:
    """In a fresh process: the error is printed and the process ends (no thread keeps it alive)."""
    exe = str(Path(sys.executable).with_name("distdream"))
    done = subprocess.run(
        [exe, *command, "--address", stalled, "--request-timeout", "2"], capture_output=True, text=True, timeout=120
    )  # a hang fails here
    assert done.returncode == 2, done.stderr
    assert f"no answer from the Ray dashboard at {stalled} within 2 s" in done.stderr


def test_submit_wait_status_logs_and_resubmit(head: str, capsys, tmp_path: Path) -> None:
    address = head
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(40, 64, 48))[:12], audio="aac")
    out = tmp_path / "out.mp4"
    args = ["submit", str(clip), "-o", str(out), "--address", address, *LIGHT, "--chunk-frames", "6", "--overlap", "2"]
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
    code, stdout, _ = run(
        capsys,
        "submit",
        str(clip),
        "-o",
        str(tmp_path / "out.mp4"),
        "--address",
        address,
        "--chunk-frames",
        "10",
        "--overlap",
        "2",
    )
    sid = stdout.split()[-1]
    code, stdout, _ = run(capsys, "stop", sid, "--address", address)
    assert code == 0 and sid in stdout
    deadline = time.monotonic() + 60
    while (state := RemoteJobs(address).status(sid)) not in RemoteJobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "STOPPED" and not (tmp_path / "out.mp4").exists()


def test_sigterm_to_submit_wait_stops_the_job_and_a_resubmit_resumes_it(head: str, tmp_path: Path) -> None:
    import json
    import signal

    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(60, 64, 48))[:36], audio=None)
    out = tmp_path / "out.mp4"
    exe = str(Path(sys.executable).with_name("distdream"))
    args = [
        exe,
        "submit",
        str(clip),
        "-o",
        str(out),
        "--address",
        head,
        "--num-iterations",
        "2",
        "--num-octaves",
        "2",
        "--dream-layers",
        "_blocks.5",
        "--chunk-frames",
        "6",
        "--no-scan-cuts",
        "--keyframe-settle",
        "0",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen([*args, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ledger = tmp_path / ".out.mp4.distdream" / "ledger.json"  # the default work directory, beside the output
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (ledger.exists() and json.loads(ledger.read_text())["chunks"]):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    sid = stdout.splitlines()[0].split()[-1]
    assert f"stopped by SIGTERM; stopped {sid}, its finished chunks are kept" in err
    deadline = time.monotonic() + 60
    while (state := RemoteJobs(head).status(sid)) not in RemoteJobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "STOPPED" and not out.exists()
    done = subprocess.run([*args, "--wait"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "from the ledger)" in done.stdout, done.stdout + done.stderr
    assert probe(out).frame_count == 36
