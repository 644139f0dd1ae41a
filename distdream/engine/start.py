"""Starting a job from what a caller gives: paths made absolute, options merged, the job started.

:func:`~distdream.engine.submit` and :func:`~distdream.engine.render` are this; :mod:`.testing`
is this with a job that injects faults into its workers (a testing aid, not public API).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .. import storage
from ..config import RenderConfig
from ..errors import ConfigError, InputError, JobError, OutputError
from ..options import JobOptions, job_options_of
from ..stops import signals_stop
from ..values import looks_like_path
from .job import Job
from .records import JobResult, Phase

__all__ = ["render_job", "start_job"]


def start_job(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None,
    options: JobOptions | None,
    shorthand: Mapping[str, Any],
    *,
    on_phase: Callable[[Phase], None] | None = None,
    make: Callable[..., Job] = Job,
) -> Job:
    """Check everything, then start the job (see :func:`~distdream.engine.submit`). Local paths
    are made absolute here: workers on other nodes have other working directories. ``make``
    builds the job (a :class:`~.job.Job`)."""
    merged = job_options_of(options, shorthand)
    if merged.workdir is not None:
        merged = replace(merged, workdir=storage.resolve(merged.workdir, "work directory", JobError))
    job = make(
        storage.resolve(input, "input", InputError),
        storage.resolve(output, "output", OutputError),
        files_resolved((config or RenderConfig()).validate()),
        merged,
        on_phase=on_phase,
    )
    job.start()
    return job


def render_job(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None,
    options: JobOptions | None,
    shorthand: Mapping[str, Any],
    *,
    on_progress: Callable[[Job], None] | None = None,
    on_phase: Callable[[Phase], None] | None = None,
    make: Callable[..., Job] = Job,
) -> JobResult:
    """Start the job and follow it to its end under :func:`~distdream.stops.signals_stop`."""
    with signals_stop() as stops:
        job = start_job(input, output, config, options, shorthand, on_phase=on_phase, make=make)
        return job.follow(None if on_progress is None else stops.deferring(on_progress))


def files_resolved(config: RenderConfig) -> RenderConfig:
    """``config`` with the files a worker opens by name (a weights file, the start image) made
    absolute here, as the input and output are: a worker on another node has another working
    directory."""
    dream = config.dream
    if dream.predefined_start is not None:
        dream = replace(
            dream, predefined_start=storage.resolve(dream.predefined_start, "predefined_start", ConfigError)
        )
    if dream.weights is not None and looks_like_path(dream.weights):
        dream = replace(dream, weights=storage.resolve(dream.weights, "weights", ConfigError))
    return config if dream is config.dream else replace(config, dream=dream)
