"""Test media made on the fly: a camera panning and zooming over a real photo."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data


def pan_frames(n: int, width: int, height: int, *, photo: np.ndarray | None = None) -> list[np.ndarray]:
    """``n`` frames of a smooth pan with a slow zoom across a scikit-image photo."""
    photo = data.astronaut() if photo is None else photo
    ph, pw = photo.shape[:2]
    img = Image.fromarray(photo)
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        zoom = 1.0 - 0.25 * t  # crop shrinks: the camera zooms in
        cw = pw * 0.6 * zoom
        ch = cw * height / width
        x0 = (pw - cw) * (0.1 + 0.8 * t)
        y0 = (ph - ch) * (0.3 + 0.3 * np.sin(np.pi * t))
        crop = img.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        frames.append(np.asarray(crop))
    return frames


# x264 settings that force B-frames and a fixed, long GOP, so range reads cross real GOP structure
BFRAMES_GOP = "bframes=3:b-adapt=0:keyint={gop}:min-keyint={gop}:scenecut=0"
