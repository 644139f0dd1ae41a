"""Signals are stops, not crashes: real SIGTERM, SIGHUP and SIGINT sent to a real `distdream render`.

What a batch scheduler does on preemption: the render is cancelled, finished chunks stay, the exact
resume command is printed, no process of the job is left, and it exits 128 + the signal within
30 s; a second signal exits at once. The resumed render equals an uninterrupted one.

The render's last chunk waits for a go-ahead that never comes (tests.engine.gated), so a signal
sent once the first chunk is finished always lands mid-render, however fast the rest would go.
Each render starts with the signals' default actions, as a scheduler starts a job, whatever this
suite inherited (``nohup`` ignores SIGHUP, a background job of a non-interactive shell SIGINT;
a render keeps an ignored signal ignored, by design).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from distdream.engine.faults import Fault
from distdream.video import read_frames
from tests.engine.gated import gate, spawn
from tests.engine.test_job import clip, reference  # noqa: F401 - the same clip and reference render

pytestmark = pytest.mark.usefixtures("local_ray")

EXE = str(Path(sys.executable).with_name("distdream"))
# tests.engine.test_job's CFG and JOB as flags
FLAGS = (
    "--num-iterations 2 --num-octaves 2 --dream-layers _blocks.5 --jitter 4 --crf 0 --preset "
    "ultrafast --keyframe-settle 0 --chunk-frames 12 --overlap 3 --no-scan-cuts --seams "
    "crossfade --workers 1 --ray always -q"
).split()


def render_process(clip: Path, tmp_path: Path, *args: str, faults: tuple[Fault, ...] = ()) -> subprocess.Popen:
    """`distdream render CLIP -o OUT ARGS FLAGS` in a session of its own, its last chunk held."""
    held = gate(tmp_path / "never", chunk=2)  # the clip plans into 3 chunks (tests.engine.test_job)
    return spawn(["render", str(clip), "-o", str(tmp_path / "out.mp4"), *args, *FLAGS], held, *faults)


def started(clip: Path, tmp_path: Path, *faults: Fault) -> tuple[subprocess.Popen, Path, list[psutil.Process]]:
    """A render, once its first chunk is in the ledger; and its processes."""
    workdir = tmp_path / "work"
    proc = render_process(clip, tmp_path, "--workdir", str(workdir), faults=faults)
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (ledger.exists() and json.loads(ledger.read_text())["chunks"]):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family  # a local Ray instance: GCS, raylet, the worker …
    return proc, workdir, family


def named(p: psutil.Process) -> str:
    """A process's name, or "" once it has ended (a short-lived child may end after it was listed)."""
    try:
        return p.name()
    except psutil.Error:
        return ""


def running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # ended between the two questions
        return False


def left(family: list[psutil.Process], within: float = 10.0) -> list[str]:
    """The job's processes still running after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in family if running(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [f"{p.pid} {named(p)}" for p in alive]


@pytest.mark.parametrize(("signum", "group"), [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGHUP, False)])
def test_a_stop_signal_cancels_keeps_chunks_prints_the_resume_command_and_leaves_nothing(
    clip: Path, reference, tmp_path: Path, signum: int, group: bool
) -> None:
    proc, workdir, family = started(clip, tmp_path)
    t0 = time.monotonic()
    if group:  # as Slurm does: every process of the job step, Ray's included
        os.killpg(proc.pid, signum)
    else:  # as Kubernetes, `timeout` or `kill` do: the driver only
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 128 + signum, err
    assert took < 30, took
    assert "SIGTERM received" not in err and "Traceback" not in err, err  # a stop, not a crash
    assert f"stopping ({signal.Signals(signum).name}): cancelling" in err, err  # said at once
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"stopped by {signal.Signals(signum).name}; finished chunks are kept"), last
    assert left(family) == []
    finished = json.loads((workdir / "ledger.json").read_text())["chunks"]
    assert finished and not (tmp_path / "out.mp4").exists()
    assert not (workdir / "lock.json").exists(), err  # released on the way out
    again = shlex.split(last.split("resume with: ", 1)[1])
    assert again[:2] == ["distdream", "render"] and "--resume" in again
    if group or signum != signal.SIGTERM:
        return  # the resume itself, once
    # the command as printed, finished in its own process rather than on a Ray of its own (the same
    # bytes: tests/engine/test_local.py); the last --ray given counts
    done = subprocess.run([EXE, *again[1:], "--ray", "never"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"({len(finished)} from the ledger)" in done.stdout  # only what was missing
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(tmp_path / "out.mp4"), reference, strict=True))


def test_a_second_signal_while_the_job_stops_exits_at_once_and_still_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc, workdir, family = started(clip, tmp_path, Fault(kind="stop-wait", go=str(go)))
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while not Path(f"{go}.held").exists():  # the job is stopping, held there
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    # the exit code is the stop's, never Ray's (its driver ends the process with 1 when its
    # instance dies first), and the process ends by its own exit, not by the signal's default action
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, err
    assert "SIGTERM again; exiting at once" in err  # the second signal's doing, not the first's stop
    assert left(family) == []
    assert json.loads((workdir / "ledger.json").read_text())["chunks"]  # what was finished stays


def test_a_stop_while_ray_starts_is_a_stop_too(clip: Path, tmp_path: Path) -> None:
    """SIGTERM while `ray.init` starts the local instance (its own handler is in place then)."""
    proc = render_process(clip, tmp_path)
    me, family = psutil.Process(proc.pid), []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("gcs_server" in named(p) for p in family):
        assert proc.poll() is None, proc.communicate()
        family = me.children(recursive=True)
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    seen = {p.pid: p for p in family}
    while proc.poll() is None:  # every process it has, up to its exit (Ray may start more meanwhile)
        with contextlib.suppress(psutil.Error):
            seen |= {p.pid: p for p in me.children(recursive=True)}
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1].startswith("stopped by SIGTERM"), err
    assert left(list(seen.values())) == []


def test_a_handler_of_the_caller_stays_through_rays_shutdown() -> None:
    """Ray's driver crash handler, once uninstalled by ``ray.shutdown``, left SIGTERM at its default
    action while Python still named its own handler: a second SIGTERM during the shutdown that
    follows a stop killed the process outright. After connect and shutdown, a SIGTERM reaches
    the handler the caller installed (in a process of its own: its own local instance)."""
    script = (
        "import os, signal, ray\n"
        "from distdream.engine.cluster import connect\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('handled', flush=True))\n"
        "connect(None)\n"
        "ray.shutdown()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('alive', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["handled", "alive"], (done.returncode, done.stderr[-2000:])
