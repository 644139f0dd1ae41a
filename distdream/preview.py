"""Preview grids: one frame dreamed per layer (a layer atlas) or per value of one setting.

Picking layers and settings by looking takes seconds this way instead of a full render. The
frame is scaled down to ``size`` on its longer side; the model is loaded once for all tiles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import storage
from .ascent import resize
from .config import DreamConfig
from .dream import Dreamer
from .errors import ConfigError
from .images import array_to_tensor, load_image, tensor_to_array
from .models import load_model, resolve_layers
from .sheets import save_grid
from .video import probe, read_frames

__all__ = ["parse_vary", "preview"]

_IMAGE_EXTENSIONS = set(Image.registered_extensions())


def _frame(input: str | os.PathLike[str], frame: int) -> np.ndarray:
    if Path(input).suffix.lower() in _IMAGE_EXTENSIONS:
        return load_image(input)
    index = probe(input)
    if not 0 <= frame < index.frame_count:
        raise ConfigError(f"--frame {frame} is outside {input}, which has frames 0–{index.frame_count - 1}")
    return next(read_frames(input, frame, frame + 1, index=index))


def parse_vary(text: str) -> tuple[str, list[object]]:
    """``"learning_rate=0.01,0.02"`` → ("learning_rate", [0.01, 0.02]), typed like the field."""
    name, _, values = text.partition("=")
    name = name.strip().replace("-", "_")
    known = {f.name: f for f in fields(DreamConfig)}
    if name not in known or name in ("channels", "dream_layers"):
        choices = ", ".join(n for n in known if n not in ("channels", "dream_layers"))
        raise ConfigError(f"--vary {text!r}: {name!r} is not a setting to vary; use one of {choices}")
    default = getattr(DreamConfig(), name)
    kind = type(default) if default is not None else str
    try:
        parsed = [
            kind(v.strip()) if kind is not bool else v.strip().lower() in ("1", "true", "yes")
            for v in values.split(",")
            if v.strip()
        ]
    except ValueError:
        raise ConfigError(f"--vary {text!r}: values must be {kind.__name__}s") from None
    if not parsed:
        raise ConfigError(f"--vary {text!r}: give NAME=v1,v2,…")
    return name, list(parsed)


def preview(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: DreamConfig | None = None,
    *,
    frame: int = 0,
    vary: tuple[str, Sequence[object]] | None = None,
    size: int = 320,
    device: str | torch.device | None = None,
) -> Path | str:
    """Write a labelled grid: ``frame`` of ``input`` dreamed once per layer, or per value of ``vary``.

    Without ``vary``, every layer of ``config.dream_layers`` (or the model's defaults) gets a
    tile of its own; with ``vary=(name, values)``, every value does, with the configured layers.
    """
    config = (config or DreamConfig()).validate()
    out = storage.check_writable(output)
    image = _frame(input, frame)
    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    tensor = resize(array_to_tensor(image), (max(8, round(h * scale)), max(8, round(w * scale))))
    shared = None if vary and vary[0] in ("model", "weights") else load_model(config.model, config.weights)
    if vary:
        name, values = vary
        variants = [(f"{name}={v}", replace(config, **dict[str, Any]({name: v}))) for v in values]
    else:
        assert shared is not None  # loaded above unless the model itself varies
        layers = resolve_layers(shared, config.dream_layers)
        variants = [
            (
                layer,
                replace(
                    config,
                    dream_layers=(layer,),
                    channels=((layer, chans),) if (chans := config.channels_for(layer)) else (),
                ),
            )
            for layer in layers
        ]
    tiles, labels = [], []
    for label, variant in variants:
        dreamer = Dreamer(variant.validate(), device=device, model=shared)
        dreamed = dreamer.dream(tensor, generator=torch.Generator().manual_seed(variant.seed))
        tiles.append(tensor_to_array(dreamed))
        labels.append(label)
    return save_grid(out, tiles, labels)
