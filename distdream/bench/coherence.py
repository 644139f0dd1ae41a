"""Temporal coherence at equal strength: how steady each way of carrying the dream is.

A weaker dream is trivially steadier, so every way is brought to the default's strength (mean
|output − input|) first: its learning rate is searched (secant steps on strength, which grows
about linearly with the rate) until its median strength is within ``tolerance`` of the default's.
Then E_warp (Lai et al., :mod:`distdream.metrics`) is compared on one clip, rendered in this
process (no Ray), beside the input's own E_warp and the 10-frame strength windows.

The ways: every frame dreamed on its own; the seed tool's rule (the previous dream warped in
whole, no mask, no decay, every frame at full iterations); distdream's previous default (settled
keyframes, but no held level and no temporal term); the default (held level, temporal term λ
0.1, bicubic carry); the held level without the temporal term; the default with the bilinear
carry; and the default at each other given λ. The ways before the held level carry the dream
bilinearly, as they did.

Last comes a reference that no renderer of real footage can reach: **the dream painted on the
scene**. The photo under the pan is dreamed once (at about the frames' scale, default dream
settings), and the camera pans over the dreamed photo, so its dream is perfectly steady by
construction; its residual is scaled to the default's strength. Its E_warp is not zero: the
metric warps the previous frame bilinearly, and resampling costs fine texture its detail, so
E_warp at equal strength also rewards a smoother dream. The same painted dream, measured at
several scales, gives the E_warp a perfectly steady dream has *at each detail*; every row's
``over_steady`` is its E_warp over that — the flicker that detail does not explain.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DreamConfig, Encoding, RenderConfig
from ..engine import render
from ..metrics import WarpingError, warping_error
from ..options import JobOptions
from ..samples import pan_frames, pan_zoom, sample_photo, write_clip
from .base import BenchRun, Echo, Figures, Panel, Parts, recorded, times

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
    # E_warp over a perfectly steady (painted) dream's of the same detail; None outside their range
    over_steady: float | None = None


PAINTED = "painted on the scene (perfectly steady)"
# scales of the painted residual (1: as dreamed) that map E_warp against detail for a steady dream
PAINTED_SCALES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


@dataclass(frozen=True)
class CoherenceBenchmark:
    frames: int
    width: int
    height: int
    input_warping_error: float  # the floor: E_warp of the input itself
    target_strength: float
    tolerance: float
    rows: tuple[CoherenceRow, ...]
    # (detail, E_warp) of the painted dream at each of PAINTED_SCALES, by detail
    steady_curve: tuple[tuple[float, float], ...] = ()

    def row(self, way: str) -> CoherenceRow:
        return next(r for r in self.rows if r.way == way)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def coherence_ways(
    base: RenderConfig, temporal_weights: Sequence[float] = ()
) -> dict[str, Callable[[float], RenderConfig]]:
    """Each way as a function of the learning rate; ``default`` is ``base`` itself."""

    def at(config: RenderConfig) -> Callable[[float], RenderConfig]:
        return lambda lr: replace(config, dream=replace(config.dream, learning_rate=lr))

    full = base.keyframe_steps
    # the ways before the held level, with the bilinear carry they had
    unheld = replace(base, temporal_weight=0.0, hold_level=False, carry_resampling="bilinear")
    ways = {
        "default": at(base),
        "independent": at(replace(unheld, decay=0.0, frame_iterations=full, occlusion_mask=False, keyframe_settle=0)),
        "seed tool's rule": at(
            replace(unheld, decay=1.0, frame_iterations=full, occlusion_mask=False, keyframe_settle=0)
        ),
        "previous default": at(unheld),  # settled keyframes, no held level, no temporal term
        "held level, no temporal term": at(replace(base, temporal_weight=0.0)),
        "default with the bilinear carry": at(replace(base, carry_resampling="bilinear")),
    }
    for weight in temporal_weights:
        ways[f"temporal term {weight:g}"] = at(replace(base, temporal_weight=weight))
    return ways


def one_worker(device: str | None) -> JobOptions:
    """A one-worker render in this process, on ``device`` (None: the engine's choice)."""
    gpus = None if device is None else 0.0 if device == "cpu" else 1.0
    return JobOptions(workers=1, ray="never", gpus_per_worker=gpus)


def _steps_per_frame(config: RenderConfig, frames: int) -> float:
    octaves = config.dream.num_octaves
    keyframe = config.keyframe_steps + config.keyframe_settle * config.frame_steps
    return octaves * (keyframe + (frames - 1) * config.frame_steps) / frames


def _at_strength(
    measure: Callable[[float], tuple[WarpingError, float]],
    lr: float,
    target: float,
    tolerance: float,
    max_renders: int,
) -> tuple[float, list[tuple[float, float]], WarpingError, float]:
    """Render one way, moving its learning rate (or scale) until its median strength is within
    ``tolerance`` of ``target`` (NaN: the first render sets it) or ``max_renders`` were made.
    Returns the last rate, every ``(rate, strength)`` tried, and the last render's error and seconds."""
    tried: list[tuple[float, float]] = []
    while True:
        result, seconds = measure(lr)
        strength = float(np.median(result.strength))
        tried.append((lr, strength))
        if math.isnan(target) or abs(strength / target - 1) <= tolerance or len(tried) >= max_renders:
            return lr, tried, result, seconds
        lr = _next_rate(tried, target)


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
    base = (config or RenderConfig(encoding=Encoding(crf=12))).validate()
    ways = coherence_ways(base, temporal_weights)
    rows: list[CoherenceRow] = []
    with tempfile.TemporaryDirectory(prefix="distdream-coherence-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "pan.mp4", pan_frames(frames, width, height), audio=None, crf=12)

        def measure(make: Callable[[float], RenderConfig], lr: float) -> tuple[WarpingError, float]:
            t0 = time.perf_counter()
            out = render(clip, d / "out.mp4", make(lr), one_worker(device)).output
            return warping_error(clip, out), time.perf_counter() - t0

        floor = target = math.nan
        for way, make in ways.items():
            lr, tried, result, seconds = _at_strength(
                partial(measure, make), base.dream.learning_rate, target, tolerance, max_renders
            )
            if way == "default":
                target, floor = tried[-1][1], result.input_mean
            matched = abs(tried[-1][1] / target - 1) <= tolerance
            rows.append(_row(way, lr, tried, result, _steps_per_frame(make(lr), frames), matched, seconds))
        painted, curve = _painted(base, clip, d, frames, width, height, target, tolerance, max_renders, device)
    rows.append(painted)
    rows = [replace(r, over_steady=_over(r, curve)) for r in rows]
    return CoherenceBenchmark(
        frames=frames,
        width=width,
        height=height,
        input_warping_error=floor,
        target_strength=target,
        tolerance=tolerance,
        rows=tuple(rows),
        steady_curve=curve,
    )


def _painted(
    base: RenderConfig,
    clip: Path,
    d: Path,
    frames: int,
    width: int,
    height: int,
    target: float,
    tolerance: float,
    max_tries: int,
    device: str | None,
) -> tuple[CoherenceRow, tuple[tuple[float, float], ...]]:
    """The painted reference row at the target strength, and (detail, E_warp) of it at PAINTED_SCALES."""
    import cv2

    from ..still import dream_array

    t0 = time.perf_counter()
    photo = sample_photo()  # the photo pan_frames pans over
    ph, pw = photo.shape[:2]
    zoom = pan_zoom(width, height, photo=photo)
    small = cv2.resize(photo, (round(pw * zoom), round(ph * zoom)), interpolation=cv2.INTER_AREA)
    dreamed = dream_array(small, base.dream, device=device).astype(np.float32) - small
    residual = cv2.resize(dreamed, (pw, ph), interpolation=cv2.INTER_CUBIC)  # back onto the photo

    def measure(scale: float) -> WarpingError:
        painted = np.clip(photo + scale * residual, 0, 255).round().astype(np.uint8)
        out = write_clip(d / "painted.mp4", pan_frames(frames, width, height, photo=painted), audio=None, crf=12)
        return warping_error(clip, out)

    curve = sorted((float(np.median(r.detail)), r.mean) for r in map(measure, PAINTED_SCALES))
    # a try costs an encode, not a render
    _, tried, result, _ = _at_strength(lambda x: (measure(x), 0.0), 1.0, target, tolerance, max(max_tries, 6))
    steps = base.dream.num_octaves * base.keyframe_steps / frames  # one dream for the whole clip
    matched = abs(tried[-1][1] / target - 1) <= tolerance
    row = _row(PAINTED, base.dream.learning_rate, tried, result, steps, matched, time.perf_counter() - t0)
    return row, tuple(curve)


def _row(
    way: str,
    lr: float,
    tried: list[tuple[float, float]],
    result: WarpingError,
    steps_per_frame: float,
    matched: bool,
    seconds: float,
) -> CoherenceRow:
    windows = result.strength_windows()
    return CoherenceRow(
        way=way,
        learning_rate=lr,
        strength=tried[-1][1],
        warping_error=result.mean,
        l1=result.l1,
        detail=float(np.median(result.detail)),
        steps_per_frame=steps_per_frame,
        windows=(min(windows), max(windows)),
        matched=matched,
        renders=len(tried),
        seconds=seconds,
        strength_over_time=tuple(round(s, 2) for s in result.strength),
    )


def _over(row: CoherenceRow, curve: Sequence[tuple[float, float]]) -> float | None:
    """``row``'s E_warp over the painted dream's at the row's detail (interpolated; None outside)."""
    details = [c[0] for c in curve]
    if not curve or not details[0] <= row.detail <= details[-1]:
        return None
    return row.warping_error / float(np.interp(row.detail, details, [c[1] for c in curve]))


def _next_rate(tried: list[tuple[float, float]], target: float) -> float:
    """A secant step toward ``target`` strength; the first step assumes strength ∝ rate."""
    (lr1, s1) = tried[-1]
    if len(tried) == 1 or tried[-2][1] == s1:
        return lr1 * target / max(s1, 1e-6)
    lr0, s0 = tried[-2]
    step = lr1 + (target - s1) * (lr1 - lr0) / (s1 - s0)
    return float(min(max(step, lr1 / 4), lr1 * 4))  # strength is not quite linear: keep the step sane


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_coherence(run: BenchRun) -> Any:
    if run.plan.quick:  # a light dream on a short clip: the table's shape, in a minute
        light = RenderConfig(dream=DreamConfig(num_iterations=2, num_octaves=2), encoding=Encoding(crf=12))
        return bench_coherence(frames=12, width=64, height=48, config=light, device=run.plan.device, max_renders=2)
    w, h = (320, 180) if run.cuda else (128, 72)
    return bench_coherence(frames=48 if run.cuda else 36, width=w, height=h, device=run.plan.device)


def _show_coherence(c: Mapping[str, Any], echo: Echo) -> None:
    echo(
        f"temporal coherence at equal strength, {c['frames']} frames {c['width']}×{c['height']} (strength matched "
        f"to the default's {c['target_strength']:.1f} within {100 * c['tolerance']:.0f} %; the input's own E_warp "
        f"{c['input_warping_error']:.5f}):"
    )
    width = max(24, *(len(r["way"]) + 2 for r in c["rows"]))
    echo(
        f"  {'rendering':<{width}}{'rate':>8}{'strength':>10}{'E_warp':>10}{'× input':>9}{'× indep.':>9}"
        f"{'detail':>8}{'× steady':>10}{'steps/frame':>12}{'windows':>12}"
    )
    independent = next((r["warping_error"] for r in c["rows"] if r["way"] == "independent"), math.nan)
    for r in c["rows"]:
        flag = "" if r["matched"] else "  (strength not matched)"
        echo(
            f"  {r['way']:<{width}}{r['learning_rate']:>8.4f}{r['strength']:>10.1f}{r['warping_error']:>10.5f}"
            f"{r['warping_error'] / c['input_warping_error']:>9.1f}{r['warping_error'] / independent:>9.2f}"
            f"{r.get('detail', math.nan):>8.1f}{times(r.get('over_steady')):>10}"
            f"{r['steps_per_frame']:>12.3g}{r['windows'][0]:>7.2f}–{r['windows'][1]:.2f}{flag}"
        )
    echo(
        "  detail: median mean |Laplacian| of the dream residual (what smoothing costs); × steady: E_warp over a "
        "perfectly steady (painted) dream's of the same detail, the flicker detail does not explain; windows: the "
        "lowest and highest 10-frame strength over the median"
    )


def _panels_coherence(figures: Figures) -> list[Panel]:
    if "coherence" not in figures:
        return []
    rows = figures["coherence"]["rows"]

    def strength_panel(ax: Any) -> None:
        for r in rows:
            ax.plot(r["strength_over_time"], lw=1.2, label=f"{r['way']} (E_warp {r['warping_error']:.4f})")
        ax.set_xlabel("frame", fontsize=8)
        ax.set_title("strength over time, equal strength", fontsize=10)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=8)

    def error_panel(ax: Any) -> None:  # horizontal: ten ways' names do not fit under bars
        names = [r["way"] for r in rows][::-1]
        values = [r["warping_error"] for r in rows][::-1]
        ax.barh(names, values, color=["#8172b3" if n.startswith("painted") else "#4c72b0" for n in names])
        for y, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (v, y), va="center", ha="left", fontsize=7)
        ax.set_title("E_warp at equal strength", fontsize=10)
        ax.tick_params(labelsize=7)

    return [error_panel, strength_panel]


PARTS = {
    "coherence": Parts(recorded("coherence", _run_coherence), _show_coherence, _panels_coherence),
}
