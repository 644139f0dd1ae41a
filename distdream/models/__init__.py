"""Models: what a dream runs on, by name, with its layers.

- :mod:`.registry`  a name → its family's :class:`Backend`, and :func:`load_model`;
- :mod:`.base`      what every family shares (:class:`LoadedModel`, :class:`Weights`, layer naming);
- :mod:`.lite`      the bundled EfficientNet-Lite0 family (:mod:`.efficientnet_lite`: the network);
- :mod:`.tv`        every torchvision classifier, its layers by FX tracing (:mod:`.fx`), imported
  only when one is named;
- :mod:`.layers`    a loaded model's layers and the truncated extractor a dream runs.
"""

from __future__ import annotations

from .base import DEFAULT_MODEL, Backend, LayerInfo, LoadedModel, Preprocess, Weights, load_state_dict_file
from .layers import feature_extractor, list_layers, resolve_layers
from .registry import available_models, backend, backend_for, load_model, weights_cached

__all__ = [
    "DEFAULT_MODEL",
    "Backend",
    "LayerInfo",
    "LoadedModel",
    "Preprocess",
    "Weights",
    "available_models",
    "backend",
    "backend_for",
    "feature_extractor",
    "list_layers",
    "load_model",
    "load_state_dict_file",
    "resolve_layers",
    "weights_cached",
]
