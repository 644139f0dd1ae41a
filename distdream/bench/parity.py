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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import RenderConfig
from ..samples import pan_frames, shot_frames, write_clip
from ..video import read_frames
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
    here = watched_render(clip, clip.with_name("here.mp4"), config, workers=1, ray="never")
    ray = watched_render(clip, clip.with_name("ray.mp4"), config, workers=1, ray="always")
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
