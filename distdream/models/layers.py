"""Layers of a loaded model: their names, shapes and the truncated feature extractor a dream runs.

Layers are named as torchvision's feature extraction names graph nodes (``inception4c``,
``layer3.1.relu_1``, ``_blocks.10``); a module name stands for the last node inside it. The
extractor returned by :func:`feature_extractor` ends after the deepest requested layer, frozen and
in eval mode, with every batch norm folded into its convolution, so a dream step pays for no layer
it does not read. Each model family's backend (:mod:`.registry`) does the listing and the cutting:
the bundled model without tracing, torchvision's by FX.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import nn

from ..errors import ConfigError
from .base import LayerInfo, LoadedModel, all_names
from .registry import backend

__all__ = ["feature_extractor", "list_layers", "resolve_layers"]


def list_layers(model: LoadedModel, size: int = 224) -> list[LayerInfo]:
    """Every layer whose output is a (B, C, H, W) feature map, in execution order, with its
    channels and its stride (``size / H`` at a ``size``×``size`` input)."""
    return backend(model.family).layer_infos(model.module, size)


def resolve_layers(model: LoadedModel, layers: Sequence[str] | None) -> tuple[str, ...]:
    """The requested layer names, or the model's defaults; unknown names raise :class:`ConfigError`."""
    if not layers:
        return model.default_layers
    known = all_names(backend(model.family).layer_nodes(model.module))
    for layer in layers:
        if layer not in known:
            close = difflib.get_close_matches(layer, known, n=5, cutoff=0.5)
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise ConfigError(
                f"unknown layer {layer!r} for model {model.name}.{hint} "
                f"Run `distdream layers {model.name}` to list them."
            )
    return tuple(layers)


def feature_extractor(model: LoadedModel, layers: Sequence[str]) -> nn.Module:
    """A frozen, eval-mode module mapping an input batch to ``{layer: (B, C, H, W)}``, computing
    nothing past the deepest requested layer."""
    return backend(model.family).extractor(model.module, resolve_layers(model, layers))
