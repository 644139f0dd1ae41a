"""Sample footage made on the fly: a camera panning and zooming over a real photo.

The demo, the benchmark and the tests need video with real texture and real motion but must not
download or ship media; scikit-image ships a few photos, and a moving crop makes them footage.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from PIL import Image

__all__ = ["pan_frames", "sample_photo", "shot_frames"]

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def sample_photo(name: str = "astronaut") -> np.ndarray:
    """An RGB uint8 photo from ``skimage.data`` (astronaut, coffee, chelsea, rocket …)."""
    from skimage import data

    photo = getattr(data, name)()
    return np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]


def pan_frames(n: int, width: int, height: int, *, photo: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield ``n`` (height, width, 3) frames: a smooth pan with a slow zoom across ``photo``."""
    photo = sample_photo() if photo is None else photo
    ph, pw = photo.shape[:2]
    img = Image.fromarray(photo)
    for i in range(n):
        t = i / max(n - 1, 1)
        cw = min(pw * 0.6 * (1.0 - 0.25 * t), ph * 0.9 * width / height)  # crop shrinks: zoom in
        ch = cw * height / width
        x0 = (pw - cw) * (0.1 + 0.8 * t)
        y0 = (ph - ch) * (0.3 + 0.3 * np.sin(np.pi * t))
        yield np.asarray(img.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))


def shot_frames(shots: int, frames_per_shot: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Yield ``shots`` pans of ``frames_per_shot`` frames each, over different photos in turn: a
    clip with a hard cut every ``frames_per_shot`` frames (for shot-aware chunking)."""
    for k in range(shots):
        photo = sample_photo(PHOTOS[k % len(PHOTOS)])
        if k >= len(PHOTOS):  # photos repeat: mirror them so no two shots are alike
            photo = np.ascontiguousarray(photo[:, ::-1])
        # the start of a 48-frame pan: a camera speed footage has, whatever the shot's length
        # (a whole pan squeezed into a few frames moves so fast that flow loses track of it)
        yield from itertools.islice(pan_frames(max(frames_per_shot, 48), width, height, photo=photo), frames_per_shot)
