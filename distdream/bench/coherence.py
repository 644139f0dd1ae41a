"""Temporal coherence at equal strength: how steady each way of carrying the dream is.

A weaker dream is trivially steadier, so every way is brought to the default's strength (mean
|output − input|) first: its learning rate is searched (secant steps on strength, which grows
about linearly with the rate) until its median strength is within ``tolerance`` of the default's.
Then E_warp (Lai et al., :mod:`distdream.metrics`) is compared on one clip, rendered in this
process (no Ray), beside the input's own E_warp and the 10-frame strength windows.

The ways: every frame dreamed on its own; the seed tool's rule (the previous dream warped in
whole, no mask, no decay, every frame at full iterations); distdream's previous default (settled
keyframes, but no held level and no temporal term); the default (held level, temporal term λ
0.1); the held level without the temporal term; and the default at each other given λ.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import RenderConfig
from ..metrics import WarpingError, warping_error
from ..samples import pan_frames, write_clip

__all__ = ["CoherenceBenchmark", "CoherenceRow", "bench_coherence", "coherence_ways"]


@dataclass(frozen=True)
class CoherenceRow:
    """One way of rendering, at the learning rate that matched the default's strength."""

    way: str
    learning_rate: float
    strength: float  # median per-frame mean |output − input|, levels of 255
    warping_error: float  # E_warp, MSE of [0, 1] RGB on reliable pixels
    l1: float
    detail: float  # median per-frame mean |Laplacian of the dream residual|: what smoothing costs
    steps_per_frame: float  # network steps per frame, octaves included
    windows: tuple[float, float]  # lowest and highest 10-frame strength window over the median
    matched: bool  # strength within the tolerance of the default's
    renders: int  # renders the search took
    seconds: float  # of the last render and its measurement
    strength_over_time: tuple[float, ...]


@dataclass(frozen=True)
class CoherenceBenchmark:
    frames: int
    width: int
    height: int
    input_warping_error: float  # the floor: E_warp of the input itself
    target_strength: float
    tolerance: float
    rows: tuple[CoherenceRow, ...]

    def row(self, way: str) -> CoherenceRow:
        return next(r for r in self.rows if r.way == way)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def coherence_ways(base: RenderConfig, temporal_weights: Sequence[float] = ()) -> dict[str, Callable[[float], RenderConfig]]:
    """Each way as a function of the learning rate; ``default`` is ``base`` itself."""

    def at(config: RenderConfig) -> Callable[[float], RenderConfig]:
        return lambda lr: replace(config, dream=replace(config.dream, learning_rate=lr))

    full = base.keyframe_steps
    unheld = replace(base, temporal_weight=0.0, hold_level=False)  # the ways before the held level
    ways = {
        "default": at(base),
        "independent": at(replace(unheld, decay=0.0, frame_iterations=full, occlusion_mask=False, keyframe_settle=0)),
        "seed tool's rule": at(replace(unheld, decay=1.0, frame_iterations=full, occlusion_mask=False,
                                       keyframe_settle=0)),
        "previous default": at(unheld),  # settled keyframes, no held level, no temporal term
        "held level, no temporal term": at(replace(base, temporal_weight=0.0)),
    }
    for weight in temporal_weights:
        ways[f"temporal term {weight:g}"] = at(replace(base, temporal_weight=weight))
    return ways


def _steps_per_frame(config: RenderConfig, frames: int) -> float:
    octaves = config.dream.num_octaves
    keyframe = config.keyframe_steps + config.keyframe_settle * config.frame_steps
    return octaves * (keyframe + (frames - 1) * config.frame_steps) / frames


def bench_coherence(
    *,
    frames: int = 36,
    width: int = 128,
    height: int = 72,
    config: RenderConfig | None = None,
    temporal_weights: Sequence[float] = (0.2,),
    tolerance: float = 0.05,
    max_renders: int = 4,
    device: str | None = None,
) -> CoherenceBenchmark:
    """Render a ``frames``-long pan each way at the default's strength and measure E_warp."""
    from ..pipeline import render_in_process

    base = (config or RenderConfig(crf=12)).validate()
    ways = coherence_ways(base, temporal_weights)
    rows: list[CoherenceRow] = []
    with tempfile.TemporaryDirectory(prefix="distdream-coherence-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "pan.mp4", pan_frames(frames, width, height), audio=None, crf=12)

        def measure(make: Callable[[float], RenderConfig], lr: float) -> tuple[WarpingError, float]:
            t0 = time.perf_counter()
            out = render_in_process(clip, d / "out.mp4", make(lr), device=device).output
            return warping_error(clip, out), time.perf_counter() - t0

        floor = math.nan
        target = math.nan
        for way, make in ways.items():
            lr = base.dream.learning_rate
            tried: list[tuple[float, float]] = []  # (learning rate, strength)
            while True:
                result, seconds = measure(make, lr)
                strength = float(np.median(result.strength))
                tried.append((lr, strength))
                if way == "default":
                    target, floor = strength, result.input_mean
                matched = abs(strength / target - 1) <= tolerance
                if matched or len(tried) >= max_renders:
                    break
                lr = _next_rate(tried, target)
            windows = result.strength_windows()
            rows.append(CoherenceRow(
                way=way, learning_rate=lr, strength=strength, warping_error=result.mean, l1=result.l1,
                detail=float(np.median(result.detail)),
                steps_per_frame=_steps_per_frame(make(lr), frames),
                windows=(min(windows), max(windows)), matched=matched, renders=len(tried), seconds=seconds,
                strength_over_time=tuple(round(s, 2) for s in result.strength),
            ))
    return CoherenceBenchmark(frames=frames, width=width, height=height, input_warping_error=floor,
                              target_strength=target, tolerance=tolerance, rows=tuple(rows))


def _next_rate(tried: list[tuple[float, float]], target: float) -> float:
    """A secant step toward ``target`` strength; the first step assumes strength ∝ rate."""
    (lr1, s1) = tried[-1]
    if len(tried) == 1 or tried[-2][1] == s1:
        return lr1 * target / max(s1, 1e-6)
    lr0, s0 = tried[-2]
    step = lr1 + (target - s1) * (lr1 - lr0) / (s1 - s0)
    return float(min(max(step, lr1 / 4), lr1 * 4))  # strength is not quite linear: keep the step sane

