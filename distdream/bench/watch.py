"""A job watched while it runs: end to end, start-up, the steady rate and the driver's memory.

The engine and parity sections time renders the same way: submit, poll the job's progress, and
split its time at the first frame dreamed (before it: preflight, plan, workers and model; after
it: the steady rate a long render runs at).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import RenderConfig
from ..options import JobOptions

__all__ = ["Watched", "rss_bytes", "watched_render"]


def rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Watched:
    seconds: float  # submit to output written
    startup: float  # submit to the first frame dreamed
    steady_fps: float  # frames dreamed after the first, over the time they took
    peak_rss_mib: float  # the driver's, sampled while the job ran


def watched_render(clip: Path, out: Path, config: RenderConfig, options: JobOptions) -> Watched:
    """Render, polling the job: end to end, start-up, the steady rate and the driver's peak RSS."""
    from ..engine import submit

    t0 = time.perf_counter()
    job = submit(clip, out, config, options)
    peak = rss_bytes()
    first: tuple[float, int] | None = None
    last = t0
    while not job.wait(0.02):
        peak = max(peak, rss_bytes())
        done, total = job.progress()
        now = time.perf_counter()
        if done and first is None:
            first = (now, done)
        if total and done < total:
            last = now  # dreaming still (stitching once done == total)
    job.result()
    end = time.perf_counter()
    total = job.progress()[1]
    if first is None:  # a job too quick for the polling: no steady part to measure
        return Watched(end - t0, end - t0, math.nan, peak / 2**20)
    steady = last - first[0]
    return Watched(end - t0, first[0] - t0, (total - first[1]) / steady if steady > 0 else math.nan, peak / 2**20)
