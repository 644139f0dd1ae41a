"""The engine: chunks dreamed on Ray actors (or, for a job on this machine's CPUs, on threads of
this process), seam tasks crossfade, the driver stitches.

Ray is imported here (and by the benchmark's engine section) only where a job runs on it. Its modules, in the order a
render meets them:

- :mod:`.records`   options, plan, result, phase and state records (plain data, no Ray);
- :mod:`.preflight` every check that can run before the first frame, and what makes the pixels;
- :mod:`.sizing`    how many workers, with what each (no Ray); :mod:`.cluster` joining a cluster
  within a timeout;
- :mod:`.workdir`   plan.json, the ledger, the lock; :mod:`.pieces` where each chunk's pieces live (by codec)
  and how a finished one is recognised;
- :mod:`.chunkrun`  dreaming one chunk and crossfading one window (no Ray), which both loops run;
- :mod:`.pool`      the Ray workers: slots, lanes, incarnations, pings, bounded start-up;
- :mod:`.worker`    the Ray actor and tasks that dream, crossfade and scan;
- :mod:`.lease`     the lock on a work directory (or an output) as a lease: atomic, aged by the storage
  (:mod:`.lockfiles`: the storage-specific halves);
- :mod:`.job`       the :class:`Job`; :mod:`.schedule` what its loop keeps (queue, retries, ledger);
  :mod:`.loop` the loop on Ray, :mod:`.watchdog` its limits; :mod:`.local` the loop in this process;
- :mod:`.stitch`    crossfades and the lossless join; :mod:`.faults` failures injected by tests;
- :mod:`.remote`    the Ray Jobs client behind ``distdream submit``.

Failures: actors restart (``max_restarts``); a chunk whose worker died or raised is resubmitted
up to ``max_attempts``; a watchdog kills an actor whose chunk runs far past its time so a lost
node cannot hang the job; a chunk that fails every attempt fails the job with
:class:`~distdream.errors.ChunkFailed`, and the output path is never touched before the final
rename. Frames never travel through the driver or the object store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..config import RenderConfig
from ..options import JobOptions
from .job import Job
from .planning import plan
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus, Phase
from .start import render_job, start_job

__all__ = [
    "ChunkState",
    "ChunkStatus",
    "Job",
    "JobOptions",
    "JobPlan",
    "JobResult",
    "JobStatus",
    "Phase",
    "RemoteJobs",
    "connect",
    "plan",
    "render",
    "submission_id",
    "submit",
]

# Ray's side loads on first use: a render that one worker in this process suffices for never imports Ray
_LAZY = {"connect": "cluster", "RemoteJobs": "remote", "submission_id": "remote"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'distdream.engine' has no attribute {name!r}")


def submit(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    options: JobOptions | None = None,
    *,
    on_phase: Callable[[Phase], None] | None = None,
    **shorthand: Any,
) -> Job:
    """Check everything, then start rendering ``input`` into ``output``; returns a running :class:`Job`.

    ``options`` says how the job is split and run (a :class:`JobOptions`); keyword ``shorthand``
    (``workers=2``) sets single fields over it. Bad input fails here, before a frame is dreamed,
    with a typed error from :mod:`distdream.errors`. Local paths are made absolute here (workers
    on other nodes have other working directories); a node-local URI (``memory://``) is refused.
    ``on_phase`` hears of each :class:`Phase` as it begins (the start-up's ones in this thread).
    The workers run in this process when that is all the job can use (``ray="auto"``), else on Ray.
    """
    return start_job(input, output, config, options, shorthand, on_phase=on_phase)


def render(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    options: JobOptions | None = None,
    *,
    on_progress: Callable[[Job], None] | None = None,
    on_phase: Callable[[Phase], None] | None = None,
    **shorthand: Any,
) -> JobResult:
    """Render ``input`` into ``output`` and wait (arguments as :func:`submit`; ``on_progress(job)``
    every quarter second). Ctrl-C, SIGTERM and SIGHUP cancel it cleanly, keeping finished chunks,
    and raise :class:`~distdream.stops.Stopped` (a ``KeyboardInterrupt``)."""
    return render_job(input, output, config, options, shorthand, on_progress=on_progress, on_phase=on_phase)
