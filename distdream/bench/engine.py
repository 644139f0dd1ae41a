"""The engine on a local Ray instance: efficiency, scaling, driver memory, seams.

On a many-shot clip (a cut every few frames, the planner's default ``--seams auto``: boundaries on
the cuts, handoffs inside the shots) it measures pipeline efficiency — the same frames and
iterations dreamed in-process with no I/O, over a one-worker render end to end — and the speedup
of N workers over one, end to end and at the steady rate after each job's start-up. Beside them
the driver's peak memory for a clip and one ten times longer, and, on a one-shot pan forced to
crossfade seams, the warping error inside the seam windows over elsewhere and over the same
frames rendered as one chunk. One of the three sections that need Ray (with parity and
startup), which it imports when it runs. Steadiness against other ways of rendering is
:mod:`.coherence`'s, at equal strength.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..chunking import Chunk
from ..config import DreamConfig, Encoding, RenderConfig
from ..dream import Dreamer
from ..images import array_to_tensor
from ..options import JobOptions
from ..samples import pan_frames, shot_frames, write_clip
from ..video import read_frames
from .base import BenchRun, Echo, Figures, Panel, Parts, bars, recorded, row
from .watch import watched_render

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
    # Start-up (submit to the first frame dreamed: preflight, scan, plan, Ray workers, model) is
    # paid once per job; the steady rate (frames/s from then until the last frame is dreamed) is
    # what a long render runs at. On a short clip the start-up caps the end-to-end speedup.
    one_worker_startup_seconds: float
    n_workers_startup_seconds: float
    one_worker_steady_fps: float
    n_workers_steady_fps: float
    steady_speedup: float  # n_workers_steady_fps / one_worker_steady_fps
    lead_in_overhead: float  # extra frames dreamed for lead-ins / frames owned
    driver_rss_mib: float  # driver peak RSS while rendering a clip …
    driver_rss_mib_10x: float  # … and one ten times longer
    rss_frames: int
    shots: int
    seams: dict[str, int]  # boundaries of the many-shot plan by kind (cut, handoff, crossfade)
    warping_error_crossfaded: float  # the one-shot pan rendered with crossfade seams
    seam_ratio: float  # its warping error inside the crossfade windows / elsewhere
    # … / on the same frames of the pan rendered as one chunk (handoff seams: pixel-identical to
    # it). The controlled figure: "elsewhere" is other frames, and a pan's error varies along it
    # with its speed and texture (2× along an 80-frame one), so the first ratio also measures where the
    # windows fall.
    seam_ratio_one_chunk: float
    seam_strength_ratio: float  # its strength inside the windows / elsewhere

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bench_engine(*, quick: bool = False, workers: int | None = None) -> EngineBenchmark:
    """Pipeline efficiency and scaling on a many-shot clip, driver memory and crossfade seams."""
    from ..engine import connect, plan

    connect(None)
    cpus = int(ray_cpus())
    workers = workers or max(1, cpus)
    if quick:
        shots, per_shot, w, h = 4, 6, 96, 64
        dream = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",))
        chunk_frames, overlap = 4, 2
        rss_frames = 8
    else:
        shots, per_shot, w, h = 6, 12, 160, 90
        dream = DreamConfig()
        chunk_frames, overlap = 6, 4
        rss_frames = 120
    n = shots * per_shot
    # quick: the lightest dream (no keyframe settling); full: the default recipe
    config = RenderConfig(
        dream=dream,
        keyframe_settle=0 if quick else RenderConfig().keyframe_settle,
        encoding=Encoding(preset="veryfast"),
    )
    job = JobOptions(chunk_frames=chunk_frames, overlap=chunk_frames // 3, workers=workers)
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "shots.mp4", shot_frames(shots, per_shot, w, h), audio="aac")
        job_plan = plan(clip, config, job)
        pure = _pure_dream_seconds(clip, job_plan.chunks, config)

        one = watched_render(clip, d / "one.mp4", config, replace(job, workers=1))
        many = watched_render(clip, d / "many.mp4", config, job)

        crossfade = _crossfade_seams(d, n, w, h, config, workers, quick, chunk_frames, overlap)
        rss_short, rss_long = _driver_rss(d, rss_frames)
    return EngineBenchmark(
        frames=n,
        width=w,
        height=h,
        chunks=len(job_plan.chunks),
        workers=workers,
        shots=shots,
        seams={kind: sum(c.begins == kind for c in job_plan.chunks) for kind in ("cut", "handoff", "crossfade")},
        pure_dream_seconds=pure,
        one_worker_seconds=one.seconds,
        pipeline_efficiency=pure / one.seconds,
        n_workers_seconds=many.seconds,
        speedup=one.seconds / many.seconds,
        one_worker_startup_seconds=one.startup,
        n_workers_startup_seconds=many.startup,
        one_worker_steady_fps=one.steady_fps,
        n_workers_steady_fps=many.steady_fps,
        steady_speedup=many.steady_fps / one.steady_fps,
        lead_in_overhead=job_plan.lead_in_overhead,
        driver_rss_mib=rss_short,
        driver_rss_mib_10x=rss_long,
        rss_frames=rss_frames,
        **crossfade,
    )


def _crossfade_seams(
    d: Path, n: int, w: int, h: int, config: RenderConfig, workers: int, quick: bool, chunk_frames: int, overlap: int
) -> dict[str, float]:
    """One long shot forced to crossfade seams: is the window steadier or shakier than the rest,
    and than the same frames rendered as one chunk?"""
    from ..engine import plan, render
    from ..metrics import warping_error

    pan = write_clip(d / "pan.mp4", pan_frames(n, w, h), audio=None)
    # the default window (16 frames): a crossfade is a blend of two different dreams, so its
    # length sets how fast one turns into the other; chunks of 36 make room for it (one seam)
    faded = JobOptions(
        chunk_frames=2 * chunk_frames if quick else 36,
        workers=workers,
        scan_cuts=False,
        seams="crossfade",
        overlap=overlap if quick else JobOptions().overlap,
    )
    pan_plan = plan(pan, config, faded)
    render(pan, d / "faded.mp4", config, faded)
    seams = warping_error(pan, d / "faded.mp4", chunks=pan_plan.chunks)
    window = sorted(set(seams.seams.get("crossfade", [])))
    # the reference: the same frames dreamed as one chain (in this process: the same bytes as on Ray)
    render(pan, d / "whole.mp4", config, replace(faded, seams="handoff", workers=1, ray="never"))
    whole = warping_error(pan, d / "whole.mp4")
    inside = [s for i, s in enumerate(seams.strength) if i in window]
    outside = [s for i, s in enumerate(seams.strength) if i not in window]
    return dict(
        warping_error_crossfaded=seams.mean,
        seam_ratio=seams.seam_ratio("crossfade"),
        seam_ratio_one_chunk=seams.over(window) / whole.over(window),
        seam_strength_ratio=float(np.mean(inside) / np.mean(outside)) if inside else math.nan,
    )


def _driver_rss(d: Path, frames: int) -> tuple[float, float]:
    """The driver's peak RSS (MiB) rendering a clip and one ten times longer, with a cheap dream."""
    cheap = RenderConfig(
        dream=DreamConfig(num_iterations=1, num_octaves=1, dream_layers=("_blocks.3",)),
        encoding=Encoding(preset="ultrafast"),
    )
    short = write_clip(d / "short.mp4", pan_frames(frames, 64, 48), audio="aac")
    long = write_clip(d / "long.mp4", pan_frames(10 * frames, 64, 48), audio="aac")
    options = JobOptions(chunk_frames=30, overlap=4, scan_cuts=False)
    peaks = [watched_render(clip, d / f"{clip.stem}_out.mp4", cheap, options).peak_rss_mib for clip in (short, long)]
    return peaks[0], peaks[1]


def _pure_dream_seconds(clip: Path, chunks: Sequence[Chunk], config: RenderConfig) -> float:
    """The plan's frames and iterations dreamed in this process on one torch thread, no I/O."""

    frames = list(read_frames(clip))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one CPU worker runs
    try:
        dreamer = Dreamer(config.dream, device="cpu")
        t0 = time.perf_counter()
        for chunk in chunks:
            gen = torch.Generator().manual_seed(chunk.seed)
            for i in range(chunk.first, chunk.end):
                keyframe = i == chunk.first and chunk.begins != "handoff"
                steps = config.keyframe_steps if keyframe else config.frame_steps
                image = array_to_tensor(frames[i])
                dreamer.dream(image, generator=gen, num_iterations=steps)
                for _ in range(config.keyframe_settle if keyframe else 0):  # as the render settles it
                    dreamer.dream(image, generator=gen, num_iterations=config.frame_steps)
        return time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_engine(run: BenchRun) -> Any:
    return bench_engine(quick=run.plan.quick, workers=run.plan.workers)


def _show_engine(e: Mapping[str, Any], echo: Echo) -> None:
    kinds = ", ".join(f"{v} {k}s" for k, v in e["seams"].items() if v)
    echo(
        f"engine, {e['frames']} frames {e['width']}×{e['height']} in {e['shots']} shots, {e['chunks']} chunks "
        f"({kinds}), local Ray:"
    )
    row(echo, "pure dream compute (same frames, no I/O)", f"{e['pure_dream_seconds']:8.1f} s")
    row(
        echo,
        "render with 1 worker, end to end",
        f"{e['one_worker_seconds']:8.1f} s   (efficiency {e['pipeline_efficiency']:.2f})",
    )
    row(echo, f"render with {e['workers']} workers", f"{e['n_workers_seconds']:8.1f} s   (speedup {e['speedup']:.2f}×)")
    if "steady_speedup" in e:
        row(
            echo,
            "  start-up to the first frame, 1 vs N workers",
            f"{e['one_worker_startup_seconds']:8.1f} vs {e['n_workers_startup_seconds']:.1f} s",
        )
        row(
            echo,
            "  steady rate after it, 1 vs N workers",
            f"{e['one_worker_steady_fps']:8.2f} vs {e['n_workers_steady_fps']:.2f} frames/s "
            f"(speedup {e['steady_speedup']:.2f}×)",
        )
    row(echo, "lead-in overhead", f"{100 * e['lead_in_overhead']:8.1f} %")
    row(
        echo,
        f"driver peak RSS, {e['rss_frames']} vs {10 * e['rss_frames']} frames",
        f"{e['driver_rss_mib']:8.0f} vs {e['driver_rss_mib_10x']:.0f} MiB",
    )
    row(echo, "one shot, crossfade seams: warping error", f"{e['warping_error_crossfaded']:8.5f}")
    row(echo, "  in the seam windows / elsewhere", f"{e['seam_ratio']:8.2f}×")
    if "seam_ratio_one_chunk" in e:
        row(echo, "  … / the same frames as one chunk", f"{e['seam_ratio_one_chunk']:8.2f}×")
    row(echo, "  strength in the seam windows / elsewhere", f"{e['seam_strength_ratio']:8.2f}×")


def _panels_engine(figures: Figures) -> list[Panel]:
    if "engine" not in figures:
        return []
    e = figures["engine"]
    return [
        lambda ax: bars(
            ax,
            ["pure dream", "1 worker", f"{e['workers']} workers"],
            [e["pure_dream_seconds"], e["one_worker_seconds"], e["n_workers_seconds"]],
            f"render (s), {e['frames']} frames",
        )
    ]


PARTS = {
    "engine": Parts(recorded("engine", _run_engine), _show_engine, _panels_engine),
}
