"""A testing aid, not public API: :func:`submit` and :func:`render` with failures injected into
the job's workers (:class:`~.faults.Fault`), so the suite can drive the failure paths of a real
job — a chunk raising, a worker exiting, a chunk held until the test says go.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..config import RenderConfig
from ..options import JobOptions
from .faults import Fault, checked_faults
from .job import Job
from .records import JobResult, Phase
from .start import render_job, start_job

__all__ = ["FaultyJob", "render", "submit"]


class FaultyJob(Job):
    """A :class:`~.job.Job` whose workers (and driver) meet the ``faults`` a test injects."""

    def __init__(
        self,
        input: str,
        output: str,
        config: RenderConfig,
        options: JobOptions,
        *,
        on_phase: Callable[[Phase], None] | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        super().__init__(input, output, config, options, on_phase=on_phase)
        # such a job runs on Ray, unless told ray="never"
        self._faults = checked_faults(faults, in_process=options.ray == "never")


def submit(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    options: JobOptions | None = None,
    *,
    on_phase: Callable[[Phase], None] | None = None,
    faults: Sequence[Fault] = (),
    **shorthand: Any,
) -> Job:
    """:func:`distdream.engine.submit`, with ``faults``."""
    return start_job(
        input, output, config, options, shorthand, on_phase=on_phase, make=partial(FaultyJob, faults=faults)
    )


def render(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RenderConfig | None = None,
    options: JobOptions | None = None,
    *,
    on_progress: Callable[[Job], None] | None = None,
    on_phase: Callable[[Phase], None] | None = None,
    faults: Sequence[Fault] = (),
    **shorthand: Any,
) -> JobResult:
    """:func:`distdream.engine.render`, with ``faults``."""
    return render_job(
        input,
        output,
        config,
        options,
        shorthand,
        on_progress=on_progress,
        on_phase=on_phase,
        make=partial(FaultyJob, faults=faults),
    )
