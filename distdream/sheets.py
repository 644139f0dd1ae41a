"""Pictures people look at: labelled tile grids (contact sheets, layer atlases). Pillow only."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .images import save_image

__all__ = ["grid", "save_grid"]

_LABEL_HEIGHT = 22


def _labelled(tile: np.ndarray, label: str) -> np.ndarray:
    """The tile with a dark caption strip above it."""
    h, w = tile.shape[:2]
    canvas = Image.new("RGB", (w, h + _LABEL_HEIGHT), (20, 20, 20))
    canvas.paste(Image.fromarray(tile), (0, _LABEL_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    text = label
    while text and draw.textlength(text, font=font) > w - 8:  # shorten what does not fit
        text = text[:-2] + "…" if len(text) > 2 else ""
    draw.text((4, 3), text, fill=(235, 235, 235), font=font)
    return np.asarray(canvas)


def grid(tiles: Sequence[np.ndarray], labels: Sequence[str], columns: int | None = None, gap: int = 4) -> np.ndarray:
    """Arrange equally sized (H, W, 3) tiles with captions in rows of ``columns`` (default: squarish)."""
    if not tiles or len(tiles) != len(labels):
        raise ValueError("grid needs as many labels as tiles, and at least one tile")
    cells = [_labelled(t, label) for t, label in zip(tiles, labels)]
    columns = columns or math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / columns)
    ch, cw = cells[0].shape[:2]
    out = np.full((rows * ch + (rows + 1) * gap, columns * cw + (columns + 1) * gap, 3), 10, np.uint8)
    for k, cell in enumerate(cells):
        r, c = divmod(k, columns)
        y, x = gap + r * (ch + gap), gap + c * (cw + gap)
        out[y : y + ch, x : x + cw] = cell
    return out


def save_grid(
    path: str | os.PathLike[str], tiles: Sequence[np.ndarray], labels: Sequence[str], columns: int | None = None
) -> Path | str:
    """Write :func:`grid` of the tiles to ``path`` (PNG/JPEG by extension), atomically."""
    return save_image(grid(tiles, labels, columns), path)
