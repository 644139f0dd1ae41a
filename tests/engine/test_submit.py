"""Ray Jobs: submit, status, logs and stop against a real Ray head started on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from distdream.cli import main
from distdream.engine import RemoteJobs
from distdream.errors import JobError
from distdream.samples import pan_frames, write_clip
from distdream.video import probe
from tests.conftest import free_port, own_ray
from tests.engine.gated import ROOT, default_signals, gate

# a Ray head with its dashboard, and jobs submitted to it (the shared instance goes first)
pytestmark = [pytest.mark.ray, pytest.mark.own_ray]

# the `ray` command of the interpreter running the tests (a venv's bin need not be on PATH)
RAY = str(Path(sys.executable).with_name("ray"))
# the lightest dream a submitted job can run: these tests are about submission, not pixels
LIGHT = "--num-iterations 1 --num-octaves 1 --dream-layers _blocks.3 --no-scan-cuts --keyframe-settle 0".split()
# `distdream` on the tests' head: the real command line, with the faults the running test wrote
# into FAULTS (tests.engine.gated), none when it wrote none
SHIM = """#!/bin/sh
faults=$(cat '{faults}' 2>/dev/null || echo '[]')
PYTHONPATH='{root}'${{PYTHONPATH:+:$PYTHONPATH}} exec '{python}' -m tests.engine.gated "$faults" "$@"
"""


def end_processes_of(temp_dir: str, port: int) -> None:
    """End the processes of the Ray head started with ``--temp-dir temp_dir --port port``, and
    theirs; no other Ray on the machine (`ray stop` would end every one: another test run's too)."""

    def its(p: psutil.Process) -> bool:
        return any(temp_dir in a or a.endswith(f":{port}") for a in p.info["cmdline"] or ())

    family: dict[int, psutil.Process] = {}
    for p in [p for p in psutil.process_iter(["cmdline"]) if its(p)]:
        with contextlib.suppress(psutil.Error):
            family |= {q.pid: q for q in [p, *p.children(recursive=True)]}
    for p in family.values():
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(family.values()), timeout=5)  # what ignores SIGTERM is killed
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def free_ports() -> list[str]:
    """`ray start` flags that put every port a node would otherwise take at a fixed number (the job
    agent's 52365, the client server's 10001) on a free one: one taken by another Ray on the
    machine (another test run's) leaves the node without a job agent ("No available agent to
    submit job")."""
    names = (
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
        "ray-client-server-port",
    )
    return [f"--{name}={free_port()}" for name in names]


@contextlib.contextmanager
def ray_head(env: dict[str, str], bin_first: Path | None = None) -> Iterator[str]:
    """`ray start --head` on free ports with ``env`` (``bin_first`` first on its PATH), its
    dashboard on 127.0.0.1 and a temp dir of its own; yields the dashboard's address, and ends
    the head's processes, no other Ray's. The shared instance of the tests goes first."""
    own_ray()
    port, dashboard = free_port(), free_port()
    # the head's jobs run `distdream` by name: find it beside this interpreter, activated or not
    path = [str(p) for p in (bin_first, Path(RAY).parent) if p is not None]
    env = {**env, "PATH": os.pathsep.join([*path, os.environ["PATH"]])}
    temp_dir = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths live in it
    try:
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
                f"--temp-dir={temp_dir}",
                *free_ports(),
            ],
            check=True,
            env=env,
            capture_output=True,
            timeout=180,
        )
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        end_processes_of(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder with the head's `distdream` (SHIM), and the faults file it reads."""
    folder = tmp_path_factory.mktemp("bin")
    faults = folder / "faults.json"
    script = folder / "distdream"
    script.write_text(SHIM.format(faults=faults, root=ROOT, python=sys.executable))
    script.chmod(0o755)
    return folder, faults


@pytest.fixture(scope="module")
def head(shim: tuple[Path, Path]) -> Iterator[str]:
    """A loopback test cluster (no token auth); yields its dashboard's address once it answers."""
    with ray_head({**os.environ, "RAY_AUTH_MODE": "disabled"}, bin_first=shim[0]) as address:
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


@pytest.fixture()
def held_jobs(shim: tuple[Path, Path]) -> Iterator[Callable[..., None]]:
    """``held_jobs(*faults)``: the head's renders started from now on take ``faults``; none after the test."""
    faults = shim[1]
    yield lambda *fs: faults.write_text(json.dumps([asdict(f) for f in fs]))
    faults.unlink(missing_ok=True)


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


def test_stop(head: str, held_jobs, capsys, tmp_path: Path) -> None:
    address = head
    held_jobs(gate(tmp_path / "never", 0))  # the render cannot end before the stop (tests.engine.gated)
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
    # a render that is running: its plan is written, and it waits at chunk 0 (Ray stops the job's
    # processes it finds at the stop; a render still starting up would be missed and orphaned)
    plan_file, deadline = tmp_path / ".out.mp4.distdream" / "plan.json", time.monotonic() + 240
    while not plan_file.exists():
        assert time.monotonic() < deadline and RemoteJobs(address).status(sid) not in RemoteJobs.TERMINAL
        time.sleep(0.2)
    code, stdout, _ = run(capsys, "stop", sid, "--address", address)
    assert code == 0 and sid in stdout
    deadline = time.monotonic() + 60
    while (state := RemoteJobs(address).status(sid)) not in RemoteJobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "STOPPED" and not (tmp_path / "out.mp4").exists()
    deadline = time.monotonic() + 60  # and the render is gone: it stopped, it did not hold on
    while rendering(clip):
        assert time.monotonic() < deadline, rendering(clip)
        time.sleep(0.2)


def rendering(clip: Path) -> list[int]:
    """The processes rendering ``clip`` on this machine."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if "render" in (p.info["cmdline"] or ()) and str(clip) in (p.info["cmdline"] or ()):
            found.append(p.pid)
    return found


def test_sigterm_to_submit_wait_stops_the_job_and_a_resubmit_resumes_it(head: str, held_jobs, tmp_path: Path) -> None:
    import signal

    held_jobs(gate(tmp_path / "never", 5))  # the last of 6 chunks: the render cannot end before the signal

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
    proc = subprocess.Popen(
        [*args, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals
    )
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
    # the render stopped itself, as a stop signal stops it, before Ray's supervisor would kill it:
    # its stop said so, and it released its lock
    assert "stopped by SIGTERM; finished chunks are kept" in RemoteJobs(head).logs(sid)
    assert not (tmp_path / ".out.mp4.distdream" / "lock.json").exists()
    # … and however long a stop takes within its 25 s grace: the supervisor waits longer (3 s by default)
    env = RemoteJobs(head).client.get_job_info(sid).runtime_env["env_vars"]
    assert float(env["RAY_JOB_STOP_WAIT_TIME_S"]) > 25
    held_jobs()  # the resubmitted render runs as users' do
    done = subprocess.run([*args, "--wait"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "from the ledger)" in done.stdout, done.stdout + done.stderr
    assert probe(out).frame_count == 36
