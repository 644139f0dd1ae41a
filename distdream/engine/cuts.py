"""The cut scan, the planner's first step: which frames of a slice start a new shot.

It runs on a Ray task per slice (:mod:`.worker`) or on threads of the driver
(:func:`~.planning.find_cuts`), so a plan can put chunk boundaries on cuts before any frame is
dreamed. No Ray here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..config import RenderConfig
from ..frames.flow import SCAN_SIDE, MotionEstimator, shrink
from ..video import VideoIndex, read_frames

__all__ = ["scan_cuts"]


def scan_cuts(
    index: VideoIndex, start: int, end: int, config: RenderConfig, progress: Callable[[int], None] | None = None
) -> list[int]:
    """Frames in ``(start, end)`` that start a new shot (compared with the frame before each).

    Decodes ``[start, end)`` and runs the dreamer's motion test on frames shrunk to
    :data:`~.flow.SCAN_SIDE`, so the planner can put chunk boundaries on cuts (a seam on a cut
    needs no lead-in) for a tenth of the test's cost at 720p. The workers still decide at full
    size whether to carry the dream into each frame. ``progress(n)`` hears of every 25 frames scanned.
    """
    estimator = MotionEstimator(replace(config.flow, flow_scale=1.0))  # the frames are small already
    cuts: list[int] = []
    prev: np.ndarray | None = None
    for i, frame in enumerate(read_frames(index.path, start, end, index=index), start=start):
        small = shrink(frame, SCAN_SIDE)
        if prev is not None and estimator.motion(prev, small).cut:
            cuts.append(i)
        prev = small
        if progress is not None and ((i - start + 1) % 25 == 0 or i == end - 1):
            progress((i - start) % 25 + 1)
    return cuts
