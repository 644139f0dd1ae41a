"""Test media helpers."""

from __future__ import annotations

import os

import numpy as np

from distdream.config import RenderConfig
from distdream.engine import JobResult, render
from distdream.samples import pan_frames as _pan


def render_here(input: str | os.PathLike[str], output: str | os.PathLike[str], config: RenderConfig) -> JobResult:
    """A whole render as one worker in this process (no Ray): one chunk on the tests' short clips."""
    return render(input, output, config, workers=1, ray="never")


def pan_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """``n`` frames of a camera panning over a real photo, as a list."""
    return list(_pan(n, width, height))


# x264 settings that force B-frames and a fixed, long GOP, so range reads cross real GOP structure
BFRAMES_GOP = "bframes=3:b-adapt=0:keyint={gop}:min-keyint={gop}:scenecut=0"
