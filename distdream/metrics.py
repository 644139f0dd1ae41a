"""Temporal quality, measured: the warping error of a rendered video against its input.

For every frame t of the output, the previous output frame is warped by the *input's* backward
flow (the scene's real motion) and compared with output frame t on pixels the flow can be trusted
on (forward–backward consistent); frames that start a new shot are skipped. A dream that moves
with the scene scores low; patterns that flicker or swim score high. The same number computed on
the input itself is the floor set by flow and codec error, reported alongside.

Both videos are streamed frame by frame: memory does not grow with their length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .config import FlowConfig
from .errors import VideoError
from .flow import MotionEstimator, warp
from .video import probe, read_frames

__all__ = ["WarpingError", "frame_warping_error", "warping_error"]


@dataclass(frozen=True)
class WarpingError:
    """Mean squared warping error (RGB in [0, 1]) of an output video, overall and per frame."""

    mean: float  # over all measured frames of the output
    input_mean: float  # the same measure on the input: what flow and codec error alone give
    per_frame: tuple[float | None, ...]  # None for frame 0 and frames after a scene cut
    cuts: tuple[int, ...]  # frames detected as starting a new shot

    @property
    def ratio(self) -> float:
        """Output error over the input's own error (1.0 = as steady as the footage itself)."""
        return self.mean / self.input_mean if self.input_mean else math.inf

    def over(self, frames: Sequence[int]) -> float:
        """Mean error over the given frames (e.g. seam windows), skipping unmeasured ones."""
        values = [self.per_frame[i] for i in frames if self.per_frame[i] is not None]
        return float(np.mean(values)) if values else math.nan

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def frame_warping_error(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """Masked mean squared difference between ``cur`` and ``prev`` warped by ``backward`` (uint8 RGB)."""
    moved = warp(prev, backward).astype(np.float32) / 255.0
    diff = ((cur.astype(np.float32) / 255.0 - moved) ** 2).mean(-1)  # (H, W)
    weight = float(mask.sum())
    return float((diff * mask).sum() / weight) if weight > 0 else math.nan


def warping_error(
    input: str | os.PathLike[str], output: str | os.PathLike[str], flow: FlowConfig | None = None
) -> WarpingError:
    """Warping error of ``output`` (a render of ``input``), with the input's own as the floor."""
    source, rendered = probe(input), probe(output)
    if rendered.frame_count != source.frame_count:
        raise VideoError(
            f"{output} has {rendered.frame_count} frames but {input} has {source.frame_count}; "
            "it is not a render of this input"
        )
    if (rendered.width, rendered.height) != (source.width, source.height):
        raise VideoError(
            f"{output} is {rendered.width}×{rendered.height} but {input} is {source.width}×{source.height}"
        )
    estimator = MotionEstimator(flow or FlowConfig())
    per_frame: list[float | None] = [None]
    floor: list[float] = []
    cuts: list[int] = []
    prev_in = prev_out = None
    for t, (frame_in, frame_out) in enumerate(zip(read_frames(input, index=source), read_frames(output, index=rendered))):
        if prev_in is not None:
            motion = estimator.motion(prev_in, frame_in)
            if motion.cut:
                cuts.append(t)
                per_frame.append(None)
            else:
                per_frame.append(frame_warping_error(prev_out, frame_out, motion.backward, motion.mask))
                floor.append(frame_warping_error(prev_in, frame_in, motion.backward, motion.mask))
        prev_in, prev_out = frame_in, frame_out
    measured = [v for v in per_frame if v is not None and not math.isnan(v)]
    return WarpingError(
        mean=float(np.mean(measured)) if measured else math.nan,
        input_mean=float(np.nanmean(floor)) if floor else math.nan,
        per_frame=tuple(per_frame),
        cuts=tuple(cuts),
    )
