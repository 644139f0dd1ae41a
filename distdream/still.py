"""Dream one still image, end to end: read, dream, write atomically.

This is the single-image path behind ``distdream dream`` and :func:`distdream.dream_image`; the
video engine reuses :class:`~distdream.dream.Dreamer` directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import storage
from .ascent import resize
from .config import DreamConfig
from .dream import Dreamer
from .images import array_to_tensor, load_image, save_image, tensor_to_array

__all__ = ["StillResult", "dream_array", "dream_image"]


@dataclass(frozen=True)
class StillResult:
    """What :func:`dream_image` did: where it wrote, the image size, and how long the dream took."""

    output: Path | str  # a str when it is an object-storage URI
    width: int
    height: int
    seconds: float
    device: str
    compute: str = ""  # how the network ran: precision, memory layout, compiled or not
    notes: tuple[str, ...] = ()  # settings this device could not honour


def dream_array(
    image: np.ndarray,
    config: DreamConfig | None = None,
    *,
    dreamer: Dreamer | None = None,
    device: str | torch.device | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Dream an (H, W, 3) uint8 RGB array and return one of the same shape.

    Pass a ``dreamer`` to reuse a loaded model across calls; otherwise one is built from
    ``config``. ``config.predefined_start``, when set, replaces the image as the starting point
    (resized to the image's size).
    """
    dreamer = dreamer or Dreamer(config or DreamConfig(), device=device)
    cfg = dreamer.config
    start = array_to_tensor(image)  # (1, 3, H, W)
    if cfg.predefined_start is not None:
        start = resize(
            array_to_tensor(load_image(cfg.predefined_start, what="predefined_start")),
            (start.shape[-2], start.shape[-1]),
        )
    generator = torch.Generator().manual_seed(cfg.seed)
    return tensor_to_array(dreamer.dream(start, generator=generator, progress=progress))


def dream_image(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: DreamConfig | None = None,
    *,
    device: str | torch.device | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[Dreamer, int], None] | None = None,
) -> StillResult:
    """Dream the image file ``input`` and write the result to ``output`` (format from its extension).

    Everything that can be checked before the dream is checked first (settings, output directory,
    input and start image), so a bad argument fails in seconds, not after the work.
    ``on_start(dreamer, total_steps)`` is called once the model is ready (to size a progress bar).
    """
    config = (config or DreamConfig()).validate()
    out = storage.check_writable(output)
    image = load_image(input)
    if config.predefined_start is not None:
        load_image(config.predefined_start, what="predefined_start")
    dreamer = Dreamer(config, device=device)
    if on_start is not None:
        on_start(dreamer, dreamer.total_steps(image.shape[0], image.shape[1]))
    t0 = time.perf_counter()
    result = dream_array(image, dreamer=dreamer, progress=progress)
    seconds = time.perf_counter() - t0
    save_image(result, out)
    return StillResult(
        out,
        image.shape[1],
        image.shape[0],
        seconds,
        str(dreamer.device),
        dreamer.compute.describe(),
        tuple(dreamer.notes),
    )
