"""Still-image files: read as RGB, write atomically, convert to and from tensors.

Pillow does the decoding (it ships with torchvision). Writes go through
:func:`~distdream.storage.atomic_output`, so a failed or interrupted run never leaves a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import storage
from .errors import InputError, OutputError

__all__ = ["array_to_tensor", "load_image", "save_figure", "save_image", "tensor_to_array", "tensor_to_frame"]


def load_image(path: str | os.PathLike[str], *, what: str = "image") -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 RGB array; :class:`InputError` if it cannot be."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a file")
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{what} {path} is not an image Pillow can read ({exc.__class__.__name__}: {exc})") from None


def save_image(array: np.ndarray, path: str | os.PathLike[str]) -> Path | str:
    """Write an (H, W, 3) uint8 array to ``path`` (a file or an object-storage URI; format from the
    extension), atomically."""
    path = storage.check_writable(path, OutputError)
    ext = os.path.splitext(str(path))[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise OutputError(f"output {path} has no image extension Pillow can write (use .png or .jpg)")
    try:
        with storage.atomic_output(path) as tmp, open(tmp, "wb") as fh:
            Image.fromarray(array).save(fh, format=fmt)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    return path


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib figure to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    try:
        with storage.atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(path)


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) RGB → (1, 3, H, W) float32, 1.0 full scale: uint8 and uint16 are scaled, float
    arrays (the pipeline's frames, which may hold out-of-gamut values) are taken as they are."""
    # np.require copies only when needed (read-only arrays, e.g. from PIL, cannot back a tensor)
    tensor = torch.from_numpy(np.require(array, requirements=["C", "W"])).permute(2, 0, 1).unsqueeze(0)
    if array.dtype == np.uint8:
        return tensor.float().div_(255.0)
    if array.dtype == np.uint16:
        return tensor.float().div_(65535.0)
    return tensor.float()


def tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] → (H, W, 3) uint8, rounded."""
    return tensor[0].clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def tensor_to_frame(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float → (H, W, 3) float32 as it is (the writer quantizes it to its format)."""
    return np.ascontiguousarray(tensor[0].detach().float().permute(1, 2, 0).cpu().numpy())
