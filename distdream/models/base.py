"""What every model shares, whoever builds it: preprocessing, the loaded-model record, layer info
and naming, reading a state-dict file, folding a batch norm, and the :class:`Backend` record each
model family registers (:mod:`.registry`). Plain torch: the bundled family (:mod:`.lite`) and the
torchvision one (:mod:`.tv`) both build on it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError

__all__ = [
    "Backend",
    "DEFAULT_MODEL",
    "LayerInfo",
    "LoadedModel",
    "Preprocess",
    "Weights",
    "all_names",
    "fuse_conv_bn",
    "load_state_dict_file",
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
class Weights:
    """Which weights a model loaded, as torchvision's weights enums name them: a ``name`` to show
    (``IMAGENET1K (bundled)``, ``GoogLeNet_Weights.IMAGENET1K_V1``, a file's path) and the
    ``file`` they came from where there is one on this machine (a job's plan fingerprints it)."""

    name: str
    file: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A classifier in eval mode with frozen parameters, plus what the dream needs to know of it."""

    name: str
    module: nn.Module
    preprocess: Preprocess
    default_layers: tuple[str, ...]
    weights: Weights | None = None  # None: random
    family: str = "efficientnet_lite"  # its Backend's (see registry)


@dataclass(frozen=True)
class LayerInfo:
    """One dreamable layer: its name, channel count and spatial stride relative to the input."""

    name: str
    channels: int
    stride: float


def load_state_dict_file(module: nn.Module, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        raise ModelError(
            f"weights file {path} is not a PyTorch state dict ({first}); give a file saved with "
            "torch.save(model.state_dict(), PATH)"
        ) from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # training checkpoints often wrap the weights
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        lines = str(exc).strip().splitlines()[0:2]
        raise ModelError(f"weights file {path} does not fit this model: {' '.join(lines)}") from exc


def all_names(nodes: Sequence[str]) -> dict[str, str]:
    """Every accepted layer name → the graph node whose output it denotes, in graph order.

    A module that is not itself a node (a block, a stage) stands for the last node inside it,
    the same rule torchvision applies to ``return_nodes``.
    """
    node_set = set(nodes)
    names: dict[str, str] = {}
    for node in nodes:
        names[node] = node
        parts = node.split(".")
        for depth in range(len(parts) - 1, 0, -1):  # innermost module first
            prefix = ".".join(parts[:depth])
            if prefix not in node_set:
                names.pop(prefix, None)  # re-insert so a module sorts right after its last node
                names[prefix] = node
    return names


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` that computes ``bn(conv(x))`` of an eval-mode batch norm: a fixed
    per-channel affine map, folded into the weights and a bias."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
    return fused


Built = tuple[nn.Module, Preprocess, Weights | None, tuple[str, ...]]  # module, preprocess, weights, default layers


@dataclass(frozen=True)
class Backend:
    """One model family, as :mod:`.registry` dispatches to it (as torchvision's model registry does):
    the names it builds, how it builds one with given weights, and how it lists, names and cuts
    the layers of a module it built."""

    family: str
    names: Callable[[], tuple[str, ...]]
    build: Callable[[str, str | None], Built]  # (name, weights: DEFAULT, an enum name, a file, or None)
    layer_nodes: Callable[[nn.Module], list[str]]  # graph nodes in execution order (see all_names)
    layer_infos: Callable[[nn.Module, int], list[LayerInfo]]  # (module, input size)
    extractor: Callable[[nn.Module, Sequence[str]], nn.Module]  # (module, resolved layer names)
    weights_cached: Callable[[str], bool]  # DEFAULT weights load without a download
