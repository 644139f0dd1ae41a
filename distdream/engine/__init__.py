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

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import import_module
from typing import Any

from .. import storage
from ..config import JobOptions, RenderConfig, looks_like_path
from ..errors import ConfigError, InputError, JobError, OutputError
from ..stops import signals_stop
from .faults import Fault
from .job import Job, job_chunks, scan_slices
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus, Phase
from .sizing import chunk_slots, local_totals, size_workers

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


def _options(job_options: dict[str, Any]) -> JobOptions:
    try:
        return JobOptions(**job_options).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown job option: {exc}") from None


def plan(input: str | os.PathLike[str], config: RenderConfig | None = None, **job_options: Any) -> JobPlan:
    """The chunks a render of ``input`` would use and how each begins. Nothing is dreamed. A long
    video's cut scan (``scan_cuts``, the default) runs as Ray tasks when this process is connected
    to Ray, or when ``address`` is given; otherwise here. The plan's chains assume ``slots`` =
    workers × lanes of that cluster, or of this machine."""
    from ..video import probe

    config = (config or RenderConfig()).validate()
    options = _options(job_options)
    index = probe(storage.resolve(input, "input", InputError))
    slots = _slots(options)
    if options.address or (options.scan_cuts and options.ray == "always" and len(scan_slices(index, options)) > 1):
        __getattr__("connect")(options.address, options.connect_timeout)
    chunks = job_chunks(index, config, options, slots)
    digest = hashlib.sha256(json.dumps([config.to_dict(), [c.to_dict() for c in chunks]], sort_keys=True).encode())
    return JobPlan(str(input), index, tuple(chunks), digest.hexdigest()[:16])


def _slots(options: JobOptions) -> int:
    """Chunks dreamed at once on the cluster this process is connected to, or on this machine."""
    from .job import on_ray

    if on_ray():
        sizing = import_module(".cluster", __name__).resources(options)
    else:
        sizing = size_workers(options, *local_totals())
    return chunk_slots(options, sizing, on_ray())


def submit(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    *,
    on_phase: Callable[[Phase], None] | None = None,
    faults: Sequence[Fault] = (),
    **job_options: Any,
) -> Job:
    """Check everything, then start rendering ``input`` into ``output``; returns a running :class:`Job`.

    Bad input fails here, before a frame is dreamed, with a typed error from
    :mod:`distdream.errors`. Local paths are made absolute here (workers on other nodes have other
    working directories); a node-local URI (``memory://``) is refused. ``on_phase`` hears of each
    :class:`Phase` as it begins (the start-up's ones in this thread). One worker runs in this
    process when that is all the job can use (``ray="auto"``); more run on Ray. ``faults`` is a
    testing aid: failures to inject into the workers (:class:`~distdream.engine.faults.Fault`).
    """
    options = _options(job_options)
    if options.workdir is not None:
        options = replace(options, workdir=storage.resolve(options.workdir, "work directory", JobError))
    job = Job(
        storage.resolve(input, "input", InputError),
        storage.resolve(output, "output", OutputError),
        _files_resolved((config or RenderConfig()).validate()),
        options,
        on_phase=on_phase,
        faults=faults,
    )
    job.start()
    return job


def _files_resolved(config: RenderConfig) -> RenderConfig:
    """``config`` with the files a worker opens by name (a weights file, the start image) made
    absolute here, as the input and output are: a worker on another node has another working
    directory."""
    dream, files = config.dream, {}
    if dream.predefined_start is not None:
        files["predefined_start"] = storage.resolve(dream.predefined_start, "predefined_start", ConfigError)
    if dream.weights is not None and looks_like_path(dream.weights):
        files["weights"] = storage.resolve(dream.weights, "weights", ConfigError)
    return replace(config, dream=replace(dream, **files)) if files else config


def render(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    *,
    on_progress: Callable[[Job], None] | None = None,
    on_phase: Callable[[Phase], None] | None = None,
    faults: Sequence[Fault] = (),
    **job_options: Any,
) -> JobResult:
    """Render ``input`` into ``output`` and wait. Ctrl-C, SIGTERM and SIGHUP cancel it cleanly,
    keeping finished chunks, and raise :class:`~distdream.stops.Stopped` (a ``KeyboardInterrupt``)."""
    with signals_stop() as stops:
        job = submit(input, output, config, on_phase=on_phase, faults=faults, **job_options)
        return job.follow(None if on_progress is None else stops.deferring(on_progress))
