"""Is the engine a tax? The same clip, job and device rendered in this process and through Ray.

One worker renders each clip twice with the same chunks, lanes and settings: in this process
(``ray="never"``: the lanes are threads beside the driver) and as a Ray actor (``ray="always"``:
the path a cluster runs). The figure is the rate while dreaming (frames/s from the first frame
dreamed to the last); start-up (submit to the first frame: preflight, plan, Ray and the worker's
model) and end to end are kept apart, since a long render pays the start-up once. Each clip is
a part of its own, so a run cut off by its time limit keeps the clips it finished. Beside them,
how far the two outputs' frames differ. Both paths dream the same frames on a CPU, but x264 now
and then encodes the same frames differently (docs: "What the same frames means"), so only a
lossless render (``crf=0``, as the quick run uses) shows nothing; on a GPU the dream's own
rounding differs between runs as well. Two clips: one
long shot (a pan), which the planner splits into crossfaded chunks to fill the lanes, and a clip
of 8 short shots, whose chunks begin on the cuts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DreamConfig, Encoding, RenderConfig
from ..options import JobOptions
from ..samples import pan_frames, shot_frames, write_clip
from ..video import read_frames
from .base import BenchRun, Echo, Figures, Panel, Parts, row
from .watch import watched_render

__all__ = ["CLIPS", "ParityRow", "bench_parity"]

CLIPS = ("one shot", "8 shots")


@dataclass(frozen=True)
class ParityRow:
    """One clip rendered both ways."""

    clip: str  # one of CLIPS
    width: int
    height: int
    frames: int
    in_process_fps: float  # while dreaming
    ray_fps: float
    ratio: float  # ray_fps / in_process_fps: the target is at least 0.9
    in_process_startup_seconds: float
    ray_startup_seconds: float
    in_process_seconds: float  # end to end
    ray_seconds: float
    frames_differ: float  # mean |Δ| between the two renders' frames, 8-bit levels (0: the same frames)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _both(clip: Path, name: str, size: tuple[int, int], frames: int, config: RenderConfig) -> ParityRow:
    here = watched_render(clip, clip.with_name("here.mp4"), config, JobOptions(workers=1, ray="never"))
    ray = watched_render(clip, clip.with_name("ray.mp4"), config, JobOptions(workers=1, ray="always"))
    differ = [
        np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()
        for a, b in zip(read_frames(clip.with_name("here.mp4")), read_frames(clip.with_name("ray.mp4")), strict=True)
    ]
    return ParityRow(
        clip=name,
        width=size[0],
        height=size[1],
        frames=frames,
        in_process_fps=here.steady_fps,
        ray_fps=ray.steady_fps,
        ratio=ray.steady_fps / here.steady_fps,
        in_process_startup_seconds=here.startup,
        ray_startup_seconds=ray.startup,
        in_process_seconds=here.seconds,
        ray_seconds=ray.seconds,
        frames_differ=float(np.mean(differ)),
    )


def bench_parity(clip: str, *, width: int, height: int, frames: int, config: RenderConfig | None = None) -> ParityRow:
    """One clip rendered both ways (see the module docstring): ``"one shot"``, a ``frames``-frame
    pan, or ``"8 shots"``, 8 pans of ``frames // 8`` frames each."""
    if clip not in CLIPS:
        raise ValueError(f"unknown parity clip {clip!r}; choose from {', '.join(CLIPS)}")
    config = config or RenderConfig()
    with tempfile.TemporaryDirectory(prefix="distdream-parity-") as tmp:
        if clip == "8 shots":
            frames = frames // 8 * 8
            pictures = shot_frames(8, frames // 8, width, height)
        else:
            pictures = pan_frames(frames, width, height)
        made = write_clip(Path(tmp) / "clip.mp4", pictures, audio=None)
        return _both(made, clip, (width, height), frames, config)


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_parity(run: BenchRun) -> None:
    """The engine against the in-process path: a pan at each render size, then 8 shots at the
    frame size (quick: the 8 shots only, tiny, light and lossless, where both paths give the
    same frames)."""
    plan = run.plan
    if plan.quick:
        light = RenderConfig(
            dream=DreamConfig(num_iterations=2, num_octaves=2), keyframe_settle=0, encoding=Encoding(crf=0)
        )
        clips = [("8 shots", (64, 48), 16)]  # cuts, several chunks: the engine's whole path, once
    else:
        light = None
        frames = plan.render_frames or (120 if run.cuda else 24)
        clips = [("one shot", size, frames) for size in plan.render_sizes or (run.frame_size,)]
        clips.append(("8 shots", run.frame_size, 2 * frames))
    for clip, (w, h), frames in clips:
        if run.in_time(f"parity {clip} {w}x{h}"):
            row = bench_parity(clip, width=w, height=h, frames=frames, config=light)
            run.record("parity", row.to_dict(), many=True)


def _show_parity(rows: list[Mapping[str, Any]], echo: Echo) -> None:
    echo("one worker, in this process against through Ray (frames/s while dreaming; target: Ray ≥ 0.9×):")
    for r in rows:
        row(
            echo,
            f"{r['clip']}, {r['frames']} frames {r['width']}×{r['height']}",
            f"{r['in_process_fps']:8.2f} vs {r['ray_fps']:.2f} frames/s   ({r['ratio']:.2f}×; start-up "
            f"{r['in_process_startup_seconds']:.1f} vs {r['ray_startup_seconds']:.1f} s, end to end "
            f"{r['in_process_seconds']:.1f} vs {r['ray_seconds']:.1f} s; "
            f"frames differ by {r['frames_differ']:.2f} levels)",
        )


def _panels_parity(figures: Figures) -> list[Panel]:
    if "parity" not in figures:
        return []
    rows = figures["parity"]

    def rates(ax: Any) -> None:
        names = [f"{r['clip']}\n{r['width']}×{r['height']}" for r in rows]
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r["in_process_fps"] for r in rows], 0.4, label="in process", color="#4c72b0")
        ax.bar([i + 0.2 for i in x], [r["ray_fps"] for r in rows], 0.4, label="through Ray", color="#dd8452")
        ax.set_xticks(list(x), names, fontsize=7)
        ax.set_title("one worker: frames/s while dreaming", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)

    return [rates]


PARTS = {
    "parity": Parts(_run_parity, _show_parity, _panels_parity),
}
