"""The engine on a local Ray instance: efficiency, scaling, driver memory, temporal quality.

Pipeline efficiency is the same frames and iterations dreamed in-process with no I/O, over a
one-worker render end to end; beside it the speedup of N workers over one, the driver's peak
memory for a clip and one ten times longer, and the warping error of the default render against
independent per-frame dreaming, and inside seam windows against elsewhere. The only part of the
benchmark that needs Ray, which it imports when it runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import DreamConfig, RenderConfig
from ..dream import Dreamer
from ..images import array_to_tensor
from ..samples import pan_frames
from ..video import read_frames, write_clip

__all__ = ["EngineBenchmark", "bench_engine"]


@dataclass(frozen=True)
class EngineBenchmark:
    """The engine end to end on a clip made on the fly, each figure beside its reference."""

    frames: int
    width: int
    height: int
    chunks: int
    workers: int
    pure_dream_seconds: float  # the same frames and iterations, dreamed in-process, one torch thread
    one_worker_seconds: float  # render with one worker: decode, flow, dream, encode, Ray, stitch
    pipeline_efficiency: float  # pure_dream_seconds / one_worker_seconds
    n_workers_seconds: float
    speedup: float  # one_worker_seconds / n_workers_seconds
    lead_in_overhead: float  # extra frames dreamed for lead-ins / frames owned
    driver_rss_mib: float  # driver peak RSS while rendering a clip …
    driver_rss_mib_10x: float  # … and one ten times longer
    rss_frames: int
    warping_error_default: float
    warping_error_independent: float  # every frame dreamed on its own, same settings
    seam_ratio: float  # warping error inside seam windows / elsewhere

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _render_peak_rss(clip: Path, out: Path, config: RenderConfig, **options: object) -> float:
    """Render and return the driver's peak RSS in MiB, sampled while the job runs."""
    from ..engine import submit

    job = submit(clip, out, config, **options)
    peak = _rss_bytes()
    while not job.wait(0.02):
        peak = max(peak, _rss_bytes())
    job.result()
    return peak / 2**20


def bench_engine(*, quick: bool = False, workers: int | None = None) -> EngineBenchmark:
    """Pipeline efficiency, scaling, driver memory and temporal quality on a local Ray instance."""
    import torch

    from ..engine import connect, plan, render
    from ..metrics import warping_error

    connect(None)
    cpus = int(ray_cpus())
    workers = workers or max(1, cpus)
    if quick:
        n, w, h = 16, 96, 64
        dream = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",))
        job = dict(chunk_frames=6, overlap=2, scan_cuts=False, seams="crossfade")
        rss_frames = 40
    else:
        n, w, h = 48, 160, 90
        dream = DreamConfig()
        job = dict(chunk_frames=12, overlap=4, scan_cuts=False, seams="crossfade")  # the seam figure needs windows
        rss_frames = 120
    # quick: the lightest dream (no keyframe settling); full: the default recipe
    config = RenderConfig(dream=dream, preset="veryfast", keyframe_settle=0 if quick else RenderConfig().keyframe_settle)
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip.mp4", pan_frames(n, w, h), audio="aac")
        job_plan = plan(clip, config, **job)

        # pure dream compute: the same frames, keyframe and carried iterations, no I/O, no Ray
        frames = list(read_frames(clip))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as one CPU worker runs
        try:
            dreamer = Dreamer(dream, device="cpu")
            t0 = time.perf_counter()
            for chunk in job_plan.chunks:
                gen = torch.Generator().manual_seed(chunk.seed)
                for i in range(chunk.first, chunk.end):
                    keyframe = i == chunk.first  # every chunk here begins with one (crossfade seams)
                    steps = config.keyframe_steps if keyframe else config.frame_steps
                    image = array_to_tensor(frames[i])
                    dreamer.dream(image, generator=gen, num_iterations=steps)
                    for _ in range(config.keyframe_settle if keyframe else 0):  # as the render settles it
                        dreamer.dream(image, generator=gen, num_iterations=config.frame_steps)
            pure = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)

        t0 = time.perf_counter()
        render(clip, d / "one.mp4", config, workers=1, **job)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        render(clip, d / "many.mp4", config, workers=workers, **job)
        many = time.perf_counter() - t0

        independent = RenderConfig(dream=dream, preset="veryfast", decay=0.0, frame_iterations=config.keyframe_steps,
                                   occlusion_mask=False)
        render(clip, d / "independent.mp4", independent, workers=workers, **job)
        default_err = warping_error(clip, d / "many.mp4")
        independent_err = warping_error(clip, d / "independent.mp4")
        seam = sorted({f for c in job_plan.chunks if c.lead_in for f in range(c.first, c.start + 1)})
        rest = [f for f in range(n) if f not in seam]

        cheap = RenderConfig(dream=DreamConfig(num_iterations=1, num_octaves=1, dream_layers=("_blocks.3",)),
                             preset="ultrafast")
        short = write_clip(d / "short.mp4", pan_frames(rss_frames, 64, 48), audio="aac")
        long = write_clip(d / "long.mp4", pan_frames(10 * rss_frames, 64, 48), audio="aac")
        rss_short = _render_peak_rss(short, d / "short_out.mp4", cheap, chunk_frames=30, overlap=4)
        rss_long = _render_peak_rss(long, d / "long_out.mp4", cheap, chunk_frames=30, overlap=4)
    return EngineBenchmark(
        frames=n, width=w, height=h, chunks=len(job_plan.chunks), workers=workers,
        pure_dream_seconds=pure, one_worker_seconds=one, pipeline_efficiency=pure / one,
        n_workers_seconds=many, speedup=one / many, lead_in_overhead=job_plan.lead_in_overhead,
        driver_rss_mib=rss_short, driver_rss_mib_10x=rss_long, rss_frames=rss_frames,
        warping_error_default=default_err.mean, warping_error_independent=independent_err.mean,
        seam_ratio=default_err.over(seam) / default_err.over(rest),
    )


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)
