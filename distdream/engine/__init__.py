"""The distributed engine: Ray actors dream chunks, seam tasks crossfade, the driver stitches.

The only package that imports Ray. Its modules, in the order a render meets them:

- :mod:`.records`   options, plan, result and state records (plain data, no Ray);
- :mod:`.preflight` every check that can run before the first frame, and what makes the pixels;
- :mod:`.connect`   joining a cluster within a timeout, sizing workers;
- :mod:`.workdir`   plan.json, the ledger, the lock; :mod:`.pieces` where each chunk's pieces live (by codec)
  and how a finished one is recognised;
- :mod:`.pool`      the workers: slots, lanes, incarnations, pings, bounded start-up;
- :mod:`.worker`    the Ray actor and tasks that dream, crossfade and scan;
- :mod:`.lease`     the lock on a work directory (or an output) as a lease: atomic, aged by the storage
  (:mod:`.lockfiles`: the storage-specific halves);
- :mod:`.job`       the :class:`Job`; :mod:`.loop` its chunk loop (retries), :mod:`.watchdog` its limits;
- :mod:`.stitch`    crossfades and the lossless join;
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
from dataclasses import replace
from typing import Any

from .. import storage
from ..config import Fault, JobOptions, RenderConfig
from ..errors import ConfigError, InputError, JobError, OutputError
from ..stops import signals_stop
from .connect import connect
from .job import Job, job_chunks
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus
from .remote import RemoteJobs, submission_id

__all__ = [
    "ChunkState",
    "ChunkStatus",
    "Fault",
    "Job",
    "JobOptions",
    "JobPlan",
    "JobResult",
    "JobStatus",
    "RemoteJobs",
    "connect",
    "plan",
    "render",
    "submission_id",
    "submit",
]


def _options(job_options: dict[str, Any]) -> JobOptions:
    try:
        return JobOptions(**job_options).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown job option: {exc}") from None


def plan(input: str | os.PathLike[str], config: RenderConfig | None = None, **job_options: Any) -> JobPlan:
    """The chunks a render of ``input`` would use and how each begins. Nothing is dreamed, but
    with ``scan_cuts`` (the default) the cut scan runs as Ray tasks, and a local Ray instance is
    started if none is connected. The plan's chains assume ``slots`` = workers × lanes of the
    cluster it connects to, or of this machine's CPUs."""
    from ..video import probe

    config = (config or RenderConfig()).validate()
    options = _options(job_options)
    index = probe(storage.resolve(input, "input", InputError))
    if options.scan_cuts:
        connect(options.address, options.connect_timeout)
    chunks = job_chunks(index, config, options, _slots(options))
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps([config.to_dict(), [c.to_dict() for c in chunks]], sort_keys=True).encode())
    return JobPlan(str(input), index, tuple(chunks), digest.hexdigest()[:16])


def _slots(options: JobOptions) -> int:
    """Chunks dreamed at once on the cluster this process is connected to (or would start)."""
    import ray

    if ray.is_initialized():
        from .connect import resources

        workers, *_, lanes = resources(options)
        return workers * lanes
    return (options.workers or os.cpu_count() or 1) * (options.lanes or 1)


def submit(
    input: str | os.PathLike[str], output: str | os.PathLike[str], config: RenderConfig | None = None,
    **job_options: Any,
) -> Job:
    """Check everything, then start rendering ``input`` into ``output`` on Ray; returns a running :class:`Job`.

    Bad input fails here, before a frame is dreamed, with a typed error from
    :mod:`distdream.errors`. Local paths are made absolute here (workers on other nodes have other
    working directories); a node-local URI (``memory://``) is refused.
    """
    options = _options(job_options)
    if options.workdir is not None:
        options = replace(options, workdir=storage.resolve(options.workdir, "work directory", JobError))
    job = Job(storage.resolve(input, "input", InputError), storage.resolve(output, "output", OutputError),
              (config or RenderConfig()).validate(), options)
    job.start()
    return job


def render(
    input: str | os.PathLike[str], output: str | os.PathLike[str], config: RenderConfig | None = None,
    *, on_progress: Callable[[Job], None] | None = None, **job_options: Any,
) -> JobResult:
    """Render ``input`` into ``output`` and wait. Ctrl-C, SIGTERM and SIGHUP cancel it cleanly,
    keeping finished chunks, and raise :class:`~distdream.stops.Stopped` (a ``KeyboardInterrupt``)."""
    with signals_stop():
        job = submit(input, output, config, **job_options)
        try:
            while not job.wait(0.25):
                if on_progress is not None:
                    on_progress(job)
        except KeyboardInterrupt:
            job.stop(10)
            raise
        return job.result()
