"""The in-process path: a job on this machine's CPUs (or with one worker) runs its workers as
threads, without Ray, with the Ray path's bytes, work directory, resume and progress, and shows
its phases as they happen.

The tests that decide ``ray="auto"`` run first, before this module starts Ray (for the comparison).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import JobOptions, Phase, render, submit, testing
from distdream.engine.sizing import (
    SHARED_STEP_PIXELS,
    THREAD_WORKERS,
    check_fits,
    in_process,
    size_workers,
    workers_here,
)
from distdream.errors import ConfigError, JobCancelled
from distdream.samples import pan_frames, write_clip
from distdream.video import read_frames
from tests.engine.gated import command, default_signals, gate, spawn

CFG = RenderConfig(
    dream=DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",), jitter=4),
    keyframe_settle=1,
    encoding=Encoding(crf=0, preset="ultrafast"),
)
# handoff and crossfade seams both: the in-process loop runs the crossfade tasks too
JOB = dict(chunk_frames=10, overlap=3, scan_cuts=False, seams="auto", cpus_per_worker=2)
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("local") / "pan.mp4", pan_frames(34, 64, 48), audio="aac")


def frames_of(path: Path) -> list[np.ndarray]:
    return list(read_frames(path))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_render_on_this_machine_imports_neither_ray_nor_torchvision(clip: Path, tmp_path: Path, workers: int) -> None:
    out = tmp_path / "out.mp4"
    script = (
        "import sys; from distdream.engine import render; from tests.engine.test_local import CFG, JOB;"
        f"r = render({str(clip)!r}, {str(out)!r}, CFG, workers={workers}, **(JOB | dict(cpus_per_worker=1)));"
        "print(r.workers, r.rendered, r.chunks, 'ray' in sys.modules, 'torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got, rendered, chunks, *imported = done.stdout.split()
    assert (
        got == str(workers) and rendered == chunks != "1" and imported == ["False", "False"]
    )  # no Ray, no torchvision
    assert len(frames_of(out)) == 34


def test_the_command_shows_each_phase_as_it_happens(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    flags = (
        "--num-iterations 2 --num-octaves 2 --dream-layers _blocks.5 --keyframe-settle 0 "
        "--chunk-frames 10 --workers 1 --seams crossfade"
    ).split()
    done = subprocess.run(
        [sys.executable, "-m", "distdream", "render", str(clip), "-o", str(out), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    heads = list(dict.fromkeys(re.match(r"[^\d:/]*", line).group().strip() for line in lines))  # "joining 4 …"
    wanted = [
        "loading PyTorch …",
        "probing",
        "checking the model",
        "scanning cuts",
        "plan",
        "starting workers",
        "dreaming",
        "joining",
    ]
    assert [h for h in heads if h in wanted] == wanted, heads
    assert any(line.startswith("scanning cuts: 100%") and "34/34" in line for line in lines)
    assert "1 worker(s) × 1 lane(s) in this process" in done.stdout and out.exists()


def test_phases_arrive_in_order_and_the_job_says_where_it_ran(clip: Path, tmp_path: Path) -> None:
    seen: list[Phase] = []
    job = submit(clip, tmp_path / "out.mp4", CFG, on_phase=seen.append, workers=1, **{**JOB, "scan_cuts": True})
    job.result(timeout=300)
    assert job.in_process
    names = [p.name for p in seen]
    # the plan is told in the caller's thread before the loop's starts: it always precedes the workers
    order = ["probing", "checking the model", "scanning cuts", "planned", "starting workers", "joining"]
    assert [n for n in dict.fromkeys(names) if n in order] == order
    scans = [p for p in seen if p.name == "scanning cuts"]
    assert scans[-1].done == scans[-1].total == 34  # every frame of the range scanned, counted up to it
    assert seen[-1] == Phase("joining", 0, len(job.plan.chunks), str(tmp_path / "out.mp4"))


def test_a_stopped_in_process_job_resumes_what_is_missing(clip: Path, tmp_path: Path) -> None:
    whole = render(clip, tmp_path / "whole.mp4", CFG, ray="never", **JOB)
    workdir, out = tmp_path / "work", tmp_path / "out.mp4"
    held = gate(tmp_path / "never", chunk=whole.chunks - 1)  # it cannot end before the cancel
    job = testing.submit(clip, out, CFG, ray="never", workdir=str(workdir), faults=(held,), **JOB)
    while not any(c.state == "done" for c in job.chunks()):
        assert not job.wait(0.05)
    job.cancel()
    with pytest.raises(JobCancelled):
        job.result(timeout=60)
    kept = json.loads((workdir / "ledger.json").read_text())["chunks"]
    assert 1 <= len(kept) < whole.chunks and not out.exists() and not (workdir / "lock.json").exists()
    result = render(clip, out, CFG, ray="never", workdir=str(workdir), resume=True, **JOB)
    assert result.rendered == whole.chunks - len(kept)
    again = render(clip, tmp_path / "again.mp4", CFG, ray="never", workdir=str(workdir), resume=True, **JOB)
    assert again.rendered == 0  # every chunk kept: nothing dreamed, no model built, the join alone
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(again.output), frames_of(whole.output), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(whole.output), strict=True))


def test_in_process_workers_share_the_cpus_by_frame_size() -> None:
    options = JobOptions()
    sizing = size_workers(options, cpus=8, gpus=0)
    assert (sizing.workers, sizing.threads) == (8, 1)  # on Ray: a thread per worker
    lone = size_workers(JobOptions(workers=1), cpus=8, gpus=0)
    small = workers_here(options, lone, 8, SHARED_STEP_PIXELS - 1)
    large = workers_here(options, lone, 8, SHARED_STEP_PIXELS)
    assert (small.workers, small.threads, large.threads) == (1, 1, 8)
    pair = workers_here(options, size_workers(JobOptions(workers=2), cpus=8, gpus=0), 8, SHARED_STEP_PIXELS)
    assert (pair.workers, pair.threads) == (2, 4)  # the machine shared
    assert workers_here(JobOptions(cpus_per_worker=3), lone, 8, 10**6).threads == 3  # asked for


def test_which_jobs_run_in_this_process() -> None:
    def here(
        chunks: int | None = None, cpus: float = 64, gpus: float = 0, on_ray: bool = False, **options: object
    ) -> bool:
        job = JobOptions(**options)  # type: ignore[arg-type]
        return in_process(job, size_workers(job, cpus, gpus), chunks, on_ray)

    assert THREAD_WORKERS >= 2
    assert here(workers=1) and here(workers=2) and here(workers=THREAD_WORKERS)  # CPU workers as threads
    assert here(cpus=2) and not here(cpus=THREAD_WORKERS + 1)  # one worker per CPU by default
    assert not here(workers=THREAD_WORKERS + 1) and here(chunks=1, workers=THREAD_WORKERS + 1)
    assert here(gpus=1) and not here(gpus=2) and here(chunks=1, gpus=2)  # a GPU each: Ray, unless one would do
    assert (
        not here(workers=2, ray="always") and not here(workers=1, address="auto") and not here(workers=1, on_ray=True)
    )
    assert here(workers=8, ray="never")


def test_workers_that_a_machine_cannot_all_host_at_once_are_refused_with_the_fix() -> None:
    one_gpu = size_workers(JobOptions(workers=2), cpus=8, gpus=1)  # a GPU each, as on a one-GPU notebook
    with pytest.raises(
        ConfigError,
        match=r"--workers 2 with 1 GPU each needs 2 GPUs, and this machine has 1: .* "
        r"use --workers 1, or let workers share a GPU with --gpus-per-worker 0\.5",
    ):
        check_fits(one_gpu, 8, 1)
    check_fits(size_workers(JobOptions(workers=2, gpus_per_worker=0.5), cpus=8, gpus=1), 8, 1)  # shared: fits
    with pytest.raises(ConfigError, match=r"--workers 3 with 1 CPU each needs 3 CPUs, and this machine has 2"):
        check_fits(size_workers(JobOptions(workers=3), cpus=2, gpus=0), 2, 0)
    check_fits(size_workers(JobOptions(), cpus=2, gpus=0), 2, 0)  # the default fits by construction
    check_fits(size_workers(JobOptions(gpus_per_worker=1), cpus=2, gpus=0), 2, 0)  # none fits: the wait says so


STOPPED_FROM_PYTHON = """
import faulthandler, json, os, signal, sys, threading, time
faulthandler.dump_traceback_later(240, exit=True)  # a hang fails with every thread's stack
from pathlib import Path
from distdream.engine import testing
from distdream.stops import Stopped
from tests.engine.gated import gate
from tests.engine.test_local import CFG, JOB
clip, tmp = sys.argv[1], Path(sys.argv[2])
def ctrl_c_once_a_chunk_is_done():
    ledger = tmp / "work" / "ledger.json"
    while not (ledger.exists() and json.loads(ledger.read_text())["chunks"]):
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=ctrl_c_once_a_chunk_is_done, daemon=True).start()
caller = signal.getsignal(signal.SIGINT)
try:  # the last chunk held: the render cannot end before the Ctrl-C (tests.engine.gated)
    testing.render(
        clip, tmp / "out.mp4", CFG, ray="never", workdir=str(tmp / "work"), faults=(gate(tmp / "never", 2),), **JOB
    )
except Stopped as stop:
    print("stopped by", stop.name)
for timer in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
    timer.join(5)
print(signal.getsignal(signal.SIGINT) is caller, any(isinstance(t, threading.Timer) for t in threading.enumerate()))
"""


def test_a_stop_caught_from_the_python_api_leaves_the_caller_as_it_was(clip: Path, tmp_path: Path) -> None:
    """A notebook catches the stop and carries on: its Ctrl-C handler is back, no timer will end it later."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_FROM_PYTHON, str(clip), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # the script ends itself at 240 s, with its threads' stacks
        # Ctrl-C's default action, whatever this suite inherited: run as a background job of a
        # non-interactive shell (`nohup … &`, as CI may), it has SIGINT ignored, and so would the
        # script, which then never stops
        preexec_fn=default_signals,
    )
    assert done.returncode == 0 and done.stdout.split("\n")[:2] == ["stopped by SIGINT", "True False"], done
    assert json.loads((tmp_path / "work" / "ledger.json").read_text())["chunks"]  # what was done is kept


def test_a_sigterm_stops_an_in_process_render_and_its_resume_command_finishes_it(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(40, 64, 48), audio=None)  # 4 chunks
    flags = (
        "--num-iterations 2 --num-octaves 2 --dream-layers _blocks.5 --keyframe-settle 0 "
        "--chunk-frames 10 --workers 1 --crf 0 --preset ultrafast -q --ray never"
    ).split()
    whole = tmp_path / "whole.mp4"
    done = subprocess.run(
        [sys.executable, "-m", "distdream", "render", str(clip), "-o", str(whole), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    workdir, out = tmp_path / "work", tmp_path / "out.mp4"
    held = gate(tmp_path / "never", chunk=3)  # the render cannot end before the signal (tests.engine.gated)
    proc = subprocess.Popen(
        [*command(held), "render", str(clip), "-o", str(out), "--workdir", str(workdir), *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (ledger.exists() and json.loads(ledger.read_text())["chunks"]):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert not psutil.Process(proc.pid).children(recursive=True)  # no Ray, no worker process
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM; finished chunks are kept"), last
    kept = json.loads(ledger.read_text())["chunks"]
    assert 1 <= len(kept) < 4 and not out.exists() and not (workdir / "lock.json").exists()
    again = shlex.split(last.split("resume with: ", 1)[1])
    done = subprocess.run(
        [sys.executable, "-m", "distdream", *again[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert f"({len(kept)} from the ledger)" in done.stdout and "in this process" in done.stdout
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(whole), strict=True))


def test_a_stop_during_a_frame_longer_than_the_stop_wait_still_exits_with_the_stops_code(tmp_path: Path) -> None:
    """A lane cannot be interrupted inside the network: a frame that outlasts the stop's wait is
    still running when the process exits, which must not abort it (an interpreter shutting down
    under a running torch op ends in "terminate called …", exit 134) or hang it."""
    clip = write_clip(tmp_path / "clip.mp4", pan_frames(2, 640, 480), audio=None)
    flags = "--num-iterations 400 --num-octaves 1 --keyframe-settle 0 --no-scan-cuts --workers 1 -q --ray never"
    proc = spawn(
        ["render", str(clip), "-o", str(tmp_path / "out.mp4"), "--workdir", str(tmp_path / "w"), *flags.split()]
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "w" / "plan.json").exists():  # then the first frame's 400 steps have begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.monotonic() - t0 < 30, err
    assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM; finished chunks are kept"), err
    assert not (tmp_path / "w" / "lock.json").exists()


def test_ray_never_cannot_use_a_cluster() -> None:
    with pytest.raises(ConfigError, match="--ray never"):
        render("in.mp4", "out.mp4", CFG, ray="never", address="auto")


@pytest.mark.parametrize("workers, threads", [(1, 2), (2, 1)])
def test_in_process_and_ray_give_the_same_bytes(
    clip: Path, tmp_path: Path, local_ray: None, workers: int, threads: int
) -> None:
    # the same plan and the same torch threads per worker: frame for frame equal, seams included
    job = JOB | dict(workers=workers, cpus_per_worker=threads)
    here = render(clip, tmp_path / "here.mp4", CFG, ray="never", **job)
    there = render(clip, tmp_path / "ray.mp4", CFG, ray="always", **job)
    assert here.chunks == there.chunks > 1 and here.workers == there.workers == workers
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(here.output), frames_of(there.output), strict=True))
