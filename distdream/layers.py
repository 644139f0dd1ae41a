"""Layers of a loaded model: their names, shapes and the truncated feature extractor a dream runs.

Layers are named as torchvision's feature extraction names graph nodes (``inception4c``,
``layer3.1.relu_1``, ``_blocks.10``); a module name stands for the last node inside it. The
extractor returned by :func:`feature_extractor` ends after the deepest requested layer, frozen and
in eval mode, with every batch norm folded into its convolution, so a dream step pays for no layer
it does not read. The bundled model's layers come from :mod:`.lite_layers` (no tracing, no
torchvision import); every other model's from FX tracing (:mod:`.fxlayers`, loaded on first use:
importing torchvision costs seconds).
"""

from __future__ import annotations

import difflib
import importlib
import types
from collections.abc import Sequence

from torch import nn

from .efficientnet_lite import EfficientNetLite0
from .errors import ConfigError
from .lite_layers import LiteExtractor, lite_nodes, node_shapes
from .netbase import LayerInfo, LoadedModel, all_names

__all__ = ["feature_extractor", "list_layers", "resolve_layers"]


def _fx() -> types.ModuleType:
    return importlib.import_module(".fxlayers", __package__)


def _lite(model: LoadedModel) -> EfficientNetLite0 | None:
    return model.module if isinstance(model.module, EfficientNetLite0) else None


def _node_names(model: LoadedModel) -> list[str]:
    lite = _lite(model)
    return [n.name for n in lite_nodes(lite)] if lite is not None else _fx().fx_node_names(model.module)


def list_layers(model: LoadedModel, size: int = 224) -> list[LayerInfo]:
    """Every layer whose output is a (B, C, H, W) feature map, in execution order, with its
    channels and its stride (``size / H`` at a ``size``×``size`` input)."""
    lite = _lite(model)
    if lite is None:
        return _fx().fx_layer_infos(model.module, size)
    nodes = lite_nodes(lite)
    shapes = node_shapes(nodes, size)
    return [
        LayerInfo(name, shapes[node][0], size / shapes[node][1])
        for name, node in all_names([n.name for n in nodes]).items()
    ]


def resolve_layers(model: LoadedModel, layers: Sequence[str] | None) -> tuple[str, ...]:
    """The requested layer names, or the model's defaults; unknown names raise :class:`ConfigError`."""
    if not layers:
        return model.default_layers
    known = all_names(_node_names(model))
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
    layers = resolve_layers(model, layers)
    lite = _lite(model)
    if lite is None:
        return _fx().fx_extractor(model.module, layers)
    names = all_names([n.name for n in lite_nodes(lite)])
    return LiteExtractor(lite, {layer: names[layer] for layer in layers})
