"""Temporal quality, measured as the literature defines it, beside the dream's strength.

**Warping error** (Lai et al., 2018): for every frame t of the output, the previous output frame
is warped by the *input's* backward flow (the scene's real motion) and compared with output frame
t on the pixels that flow can be trusted on — forward–backward consistent and off motion
boundaries (the masks of Ruder et al., 2016):

    E_warp(t) = Σ_x M_t(x) · ‖O_t(x) − warp(O_{t−1})(x)‖² / Σ_x M_t(x),   RGB in [0, 1]

averaged over the frames (those that start a new shot are skipped). The same number on the input
itself is the floor set by flow and codec error. Beside it: the same comparison as a mean
absolute difference (the "L1" figure), and the **strength** of each frame, mean |output − input|
in levels of 255 — a weaker dream is trivially steadier, so settings are compared at equal
strength — with the output's brightness and saturation against the input's, whose drift over a
long shot :meth:`WarpingError.drift` reports, and the dream's **detail**, the mean |Laplacian| of
output − input (levels of 255 per pixel): steadiness bought by smoothing the dream shows there.
Given a plan, the frames around each chunk boundary are reported apart.

Both videos are streamed frame by frame: memory does not grow with their length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import FlowConfig
from .errors import VideoError
from .frames.chroma import chroma
from .frames.flow import MotionEstimator, warp
from .video import VideoIndex, is_sequence, probe, read_frames

__all__ = ["WarpingError", "dream_detail", "frame_warping_error", "plot_over_time", "warping_error"]


@dataclass(frozen=True)
class WarpingError:
    """Warping error of an output video (Lai et al.), overall and per frame, with its strength."""

    mean: float  # E_warp: mean squared error of [0, 1] RGB on reliable pixels, over measured frames
    input_mean: float  # the same on the input: what flow and codec error alone give
    per_frame: tuple[float | None, ...]  # None for frame 0 and frames after a scene cut
    cuts: tuple[int, ...]  # frames detected as starting a new shot
    l1: float = math.nan  # the same comparison as a mean absolute difference, levels of 255
    strength: tuple[float, ...] = ()  # per frame: mean |output − input|, levels of 255
    seams: dict[str, list[int]] = field(default_factory=dict)  # kind → the frames each seam touches
    brightness: tuple[float, ...] = ()  # per frame: the output's mean level over the input's
    saturation: tuple[float, ...] = ()  # per frame: the output's mean chroma (max − min of RGB) over the input's
    detail: tuple[float, ...] = ()  # per frame: mean |Laplacian of (output − input)|, levels of 255

    @property
    def ratio(self) -> float:
        """Output error over the input's own error (1.0 = as steady as the footage itself)."""
        return self.mean / self.input_mean if self.input_mean else math.inf

    def over(self, frames: Sequence[int]) -> float:
        """Mean error over the given frames (e.g. seam windows), skipping unmeasured ones."""
        values = [v for i in frames if 0 <= i < len(self.per_frame) and (v := self.per_frame[i]) is not None]
        return float(np.mean(values)) if values else math.nan

    def seam_ratio(self, kind: str) -> float:
        """E_warp on the frames of one kind of seam over E_warp elsewhere."""
        near = set(self.seams.get(kind, []))
        if not near:
            return math.nan
        rest = [i for i in range(len(self.per_frame)) if i not in near]
        return self.over(sorted(near)) / self.over(rest)

    def strength_windows(self, size: int = 10) -> list[float]:
        """Mean strength of each ``size``-frame window over the median strength."""
        median = float(np.median(self.strength)) if self.strength else math.nan
        return [float(np.mean(self.strength[i : i + size])) / median for i in range(0, len(self.strength), size)]

    def drift(self, window: int = 100) -> dict[str, float]:
        """How far brightness and saturation (each against the input's) and strength moved between
        the first and the last ``window`` frames (relative: +0.02 is 2 % more); a long shot
        should not wander."""
        window = max(1, min(window, len(self.strength) // 2))
        out = {}
        for name, values in (
            ("brightness", self.brightness),
            ("saturation", self.saturation),
            ("strength", self.strength),
        ):
            first, last = np.mean(values[:window]), np.mean(values[-window:])
            out[name] = float(last / first - 1) if first else math.nan
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "seam_ratios": {k: self.seam_ratio(k) for k in self.seams},
            "drift": self.drift() if self.strength else {},
        }


def frame_warping_error(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """Masked mean squared difference between ``cur`` and ``prev`` warped by ``backward`` (uint8 RGB)."""
    moved = warp(prev, backward).astype(np.float32) / 255.0
    diff = ((cur.astype(np.float32) / 255.0 - moved) ** 2).mean(-1)  # (H, W)
    weight = float(mask.sum())
    return float((diff * mask).sum() / weight) if weight > 0 else math.nan


def dream_detail(frame_in: np.ndarray, frame_out: np.ndarray) -> float:
    """Mean |Laplacian| of the dream residual (output − input, levels of 255): its fine structure."""
    import cv2

    residual = frame_out.astype(np.float32) - frame_in.astype(np.float32)
    return float(np.abs(cv2.Laplacian(residual, cv2.CV_32F)).mean())


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else math.nan


def _l1(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    moved = warp(prev, backward).astype(np.float32)
    diff = np.abs(cur.astype(np.float32) - moved).mean(-1)
    weight = float(mask.sum())
    return float((diff * mask).sum() / weight) if weight > 0 else math.nan


def seam_frames(chunks: Sequence[Any], span: int = 3) -> dict[str, list[int]]:
    """The frames each kind of chunk boundary touches: a crossfade window and the frames just
    after it, or ``span`` frames on either side of a handoff or a cut."""
    out: dict[str, list[int]] = {}
    for c in chunks:
        kind = getattr(c, "begins", "crossfade" if getattr(c, "lead_in", 0) else "cut")
        if kind == "start":
            continue
        start = int(c.start)
        lead = int(getattr(c, "lead_in", 0))
        frames = range(start - lead, start + span) if lead else range(start - span, start + span)
        out.setdefault(kind, []).extend(frames)
    return {k: sorted(set(v)) for k, v in out.items()}


def warping_error(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    flow: FlowConfig | None = None,
    *,
    chunks: Sequence[object] = (),
    frame_range: tuple[int, int] | None = None,
    fps: str | None = None,
) -> WarpingError:
    """Warping error of ``output`` (a render of ``input``, or of its ``frame_range``), with the
    input's own as the floor; ``chunks`` (a plan's) marks the seam frames. ``fps`` is the rate of
    an image-sequence input or output (a sequence carries none)."""
    source = probe(input, fps=fps if is_sequence(input) else None)
    rendered = probe(output, fps=fps if is_sequence(output) else None)
    a, b = frame_range or (0, source.frame_count)
    _check_is_render(source, rendered, a, b)
    estimator = MotionEstimator(flow or FlowConfig())
    per_frame: list[float | None] = [None]
    pairs: list[tuple[float, float, float]] = []  # (error, the input's own, L1) of each carried pair
    levels: list[tuple[float, float, float, float]] = []
    cuts: list[int] = []
    prev_in = prev_out = None
    frames = zip(read_frames(input, a, b, index=source), read_frames(output, index=rendered))
    for t, (frame_in, frame_out) in enumerate(frames):
        levels.append(_levels(frame_in, frame_out))
        if prev_in is not None:
            motion = estimator.motion(prev_in, frame_in)
            if motion.cut:
                cuts.append(t)
                per_frame.append(None)
            else:
                assert prev_out is not None and motion.reliable is not None  # set with prev_in; set unless a cut
                mask = motion.reliable.astype(np.float32)
                pairs.append(
                    (
                        frame_warping_error(prev_out, frame_out, motion.backward, mask),
                        frame_warping_error(prev_in, frame_in, motion.backward, mask),
                        _l1(prev_out, frame_out, motion.backward, mask),
                    )
                )
                per_frame.append(pairs[-1][0])
        prev_in, prev_out = frame_in, frame_out
    measured = [v for v in per_frame if v is not None and not math.isnan(v)]
    seams = {k: [f - a for f in v if a <= f < b] for k, v in seam_frames(chunks).items()}
    _, floor, l1 = zip(*pairs) if pairs else ((), (), ())
    strength, brightness, saturation, detail = zip(*levels)
    return WarpingError(
        mean=float(np.mean(measured)) if measured else math.nan,
        input_mean=float(np.nanmean(floor)) if floor else math.nan,
        per_frame=tuple(per_frame),
        cuts=tuple(cuts),
        l1=float(np.nanmean(l1)) if l1 else math.nan,
        strength=strength,
        seams={k: v for k, v in seams.items() if v},
        brightness=brightness,
        saturation=saturation,
        detail=detail,
    )


def _check_is_render(source: VideoIndex, rendered: VideoIndex, a: int, b: int) -> None:
    """Raise :class:`VideoError` unless ``rendered`` has the frames and size of ``source[a:b]``."""
    if rendered.frame_count != b - a:
        raise VideoError(
            f"{rendered.path} has {rendered.frame_count} frames but {source.path} has {b - a} (frames {a}:{b}); "
            "it is not a render of this input"
        )
    if (rendered.width, rendered.height) != (source.width, source.height):
        raise VideoError(
            f"{rendered.path} is {rendered.width}×{rendered.height} but {source.path} is {source.width}×{source.height}"
        )


def _levels(frame_in: np.ndarray, frame_out: np.ndarray) -> tuple[float, float, float, float]:
    """A dreamed frame against its input: strength, brightness ratio, saturation ratio, detail."""
    return (
        float(np.abs(frame_out.astype(np.int16) - frame_in.astype(np.int16)).mean()),
        _ratio(frame_out.mean(), frame_in.mean()),
        _ratio(chroma(frame_out, -1), chroma(frame_in, -1)),
        dream_detail(frame_in, frame_out),
    )


def plot_over_time(result: WarpingError, path: str | os.PathLike[str], title: str = "") -> Path:
    """Strength and warping error over time, seams and cuts marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .images import save_figure

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    top.plot(result.strength, color="#4c72b0", lw=1.2)
    top.set_ylabel("strength\n(mean |out − in|, /255)", fontsize=8)
    errors = [math.nan if v is None else v for v in result.per_frame]
    bottom.plot(errors, color="#dd8452", lw=1.2, label="E_warp")
    bottom.axhline(result.input_mean, color="#999999", lw=0.8, ls="--", label="input's own")
    bottom.set_ylabel("warping error\n(MSE, RGB 0–1)", fontsize=8)
    bottom.set_xlabel("frame", fontsize=8)
    colours = {"cut": "#c44e52", "handoff": "#55a868", "crossfade": "#8172b3"}
    for ax in (top, bottom):
        for kind, frames in result.seams.items():
            for k, run in enumerate(_runs(frames)):
                ax.axvspan(
                    run[0] - 0.5,
                    run[-1] + 0.5,
                    color=colours.get(kind, "#cccccc"),
                    alpha=0.2,
                    label=f"{kind} seams" if ax is bottom and k == 0 else None,
                )
        for cut in result.cuts:
            ax.axvline(cut, color=colours["cut"], lw=0.8)
        ax.tick_params(labelsize=8)
    bottom.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        title
        or f"E_warp {result.mean:.5f} ({result.ratio:.1f}× the input's); median strength "
        f"{np.median(result.strength):.1f}",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def _runs(frames: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for f in sorted(frames):
        if runs and f == runs[-1][-1] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs
