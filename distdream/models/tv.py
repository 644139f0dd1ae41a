"""The torchvision family: every torchvision classification model by name, its layers by FX tracing.

Imported only when such a model is named (:mod:`.registry`): importing
torchvision costs seconds of every start, which the bundled model never pays. ``weights`` is
``"DEFAULT"``, a weights enum name, a local state-dict file, or ``None`` (random).
"""

from __future__ import annotations

import functools
import os
import urllib.error
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from ..errors import ModelError
from ..values import looks_like_path
from .base import DEFAULT_MODEL, Backend, Built, Preprocess, Weights, load_state_dict_file
from .fx import fx_extractor, fx_layer_infos, fx_node_names

__all__ = ["BACKEND", "build", "cached_weights_path", "torchvision_names", "weights_cached"]


# DeepDream's classic layers where we know them; other models get a stride-16 layer (see below).
_CLASSIC_LAYERS: Mapping[str, tuple[str, ...]] = {
    "googlenet": ("inception4c",),
    "inception_v3": ("Mixed_5d",),
    "vgg16": ("features.22",),
    "vgg19": ("features.26",),
    "resnet18": ("layer3",),
    "resnet34": ("layer3",),
    "resnet50": ("layer3",),
    "resnet101": ("layer3",),
    "resnet152": ("layer3",),
}


@functools.cache  # the names torchvision offers do not change while a process runs
def torchvision_names() -> tuple[str, ...]:
    """Every torchvision classification model's name."""
    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def build(name: str, weights: str | None) -> Built:
    """(module, preprocess, weights, default layers) of torchvision model ``name``."""
    if weights is None:
        module, preprocess, label = _random_torchvision(name), Preprocess(), None
    elif looks_like_path(weights):
        module = _random_torchvision(name)
        load_state_dict_file(module, weights)
        if hasattr(module, "transform_input"):
            # googlenet/inception_v3 ImageNet checkpoints expect their own input re-scaling,
            # which torchvision switches on only when it loads the weights itself.
            module.transform_input = True  # type: ignore[assignment]  # a plain flag; nn.Module annotates attributes as Tensor | Module
        preprocess, label = Preprocess(), Weights(str(weights), str(weights))
    else:
        enum = _weights_enum(name, weights)
        preprocess = Preprocess(
            mean=tuple(enum.transforms().mean),
            std=tuple(enum.transforms().std),
        )
        try:
            module = torchvision.models.get_model(name, weights=enum, progress=False)
        except (urllib.error.URLError, OSError, ConnectionError) as exc:
            cache = cached_weights_path(enum.url)
            raise ModelError(
                f"weights {enum} for {name} must be downloaded from {enum.url}, which failed "
                f"({exc.__class__.__name__}: {exc}), and {cache} does not exist. Offline? Pass a local "
                f"state-dict file with --weights PATH, or use the bundled model --model {DEFAULT_MODEL}"
            ) from exc
        label = Weights(str(enum))  # in torch's cache, under a name torchvision chooses
    module.eval()
    module.requires_grad_(False)  # the dream differentiates w.r.t. the image only
    return module, preprocess, label, _CLASSIC_LAYERS.get(name) or _mid_layer(name, module)


def _mid_layer(name: str, module: nn.Module) -> tuple[str, ...]:
    """DeepDream's sweet spot is mid-level: the deepest layer at stride 16, or the deepest at all."""
    layers = fx_layer_infos(module)
    if not layers:
        raise ModelError(f"model {name!r} has no convolutional feature maps to dream on")
    mid = [layer for layer in layers if layer.stride <= 16] or layers
    return (mid[-1].name,)


def weights_cached(name: str) -> bool:
    """Whether ``name``'s DEFAULT weights are in the torch cache (load without a download)."""
    try:
        url = torchvision.models.get_model_weights(name).DEFAULT.url
    except (ValueError, KeyError, AttributeError):
        return False
    return cached_weights_path(url).is_file()


def cached_weights_path(url: str) -> Path:
    """Where torchvision keeps the weights it downloads from ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _random_torchvision(name: str) -> nn.Module:
    with warnings.catch_warnings():
        # googlenet/inception_v3 warn that their default init will change; irrelevant here
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(name, weights=None)


def _weights_enum(name: str, weights: str) -> Any:
    enum_cls = torchvision.models.get_model_weights(name)
    key = weights.split(".")[-1]  # accept "IMAGENET1K_V1" and "GoogLeNet_Weights.IMAGENET1K_V1"
    try:
        return enum_cls[key.upper()]
    except KeyError:
        valid = ", ".join(["DEFAULT", *enum_cls.__members__])
        raise ModelError(
            f"unknown weights {weights!r} for {name}: use one of {valid}, a path to a state-dict file, or none"
        ) from None


BACKEND = Backend(
    family="torchvision",
    names=torchvision_names,
    build=build,
    layer_nodes=fx_node_names,
    layer_infos=fx_layer_infos,
    extractor=fx_extractor,
    weights_cached=weights_cached,
)
