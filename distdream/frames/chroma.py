"""Chroma: how colourful an image is, measured one way for the whole project.

The drift figure's saturation (:mod:`distdream.metrics`, decoded uint8 frames, channels last) and
the held level's colour (:mod:`distdream.frames.sequence`, float tensors (1, 3, H, W) on the dreaming
device) must be the same measure, or the held level would hold something the figure does not
report. numpy only: a torch tensor is measured through its own methods, without importing torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chroma"]


def chroma(image: Any, channel_axis: int) -> float:
    """Mean over the pixels of max − min over the colour channels (at ``channel_axis``), in the
    image's own units: a numpy array (integers are widened first) or a torch tensor."""
    if isinstance(image, np.ndarray):
        spread = image.max(axis=channel_axis).astype(np.float64) - image.min(axis=channel_axis)
    else:  # a torch tensor: stays on its device until the mean
        spread = image.amax(dim=channel_axis) - image.amin(dim=channel_axis)
    return float(spread.mean())
