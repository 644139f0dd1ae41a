"""The pieces of a dream's gradient ascent, each a small value testable on its own (lucent's style).

- an **objective** says what to maximise: the mean squared activation of a layer, optionally
  restricted to channels; objectives add up (:class:`LayerObjective`, :class:`SumObjective`);
- a **jitter** says how the image is disturbed: a random roll before the forward pass, undone
  after the step, so the network's grid artefacts do not accumulate;
- a **step** says how the image moves: gradient over its mean absolute value, times the learning
  rate, then a per-channel clamp to the valid pixel range;
- the **octave loop** (:func:`run_octaves`) dreams a pyramid coarse to fine, carrying the dream
  detail (dreamed minus base) up each level, so patterns grow large while the source stays sharp;
- **tiles** (:func:`tile_starts`, :func:`feather`) let a large image be dreamed in overlapping parts.

Every piece works on a batch (B, 3, H, W) *per sample*: objectives return one value per sample,
the step normalises each sample by its own gradient, each sample has its own jitter shift from its
own generator. Pure torch, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .compute import Features

__all__ = [
    "Jitter",
    "LayerObjective",
    "Objective",
    "SumObjective",
    "feather",
    "gradient_step",
    "octave_sizes",
    "resize",
    "run_octaves",
    "tile_starts",
]

Objective = Callable[[Features], torch.Tensor]

_MIN_OCTAVE_SIDE = 8  # a coarser level has too few pixels to hold a pattern


# ---------------------------------------------------------------------------------------------
# Objectives


@dataclass(frozen=True)
class LayerObjective:
    """``weight · mean(activation²)`` of one layer, over ``channels`` (all when ``None``), per sample (B,)."""

    layer: str
    channels: tuple[int, ...] | None = None
    weight: float = 1.0

    def __call__(self, features: Features) -> torch.Tensor:
        act = features[self.layer]  # (B, C, h, w)
        if self.channels is not None:
            act = act[:, list(self.channels)]  # (B, len(channels), h, w)
        return self.weight * act.pow(2).mean(dim=(1, 2, 3))  # (B,)

    def __add__(self, other: Objective) -> SumObjective:
        return SumObjective((self, other))


@dataclass(frozen=True)
class SumObjective:
    """The sum of several objectives (per sample)."""

    terms: tuple[Objective, ...]

    def __call__(self, features: Features) -> torch.Tensor:
        total = self.terms[0](features)
        for term in self.terms[1:]:
            total = total + term(features)
        return total

    def __add__(self, other: Objective) -> SumObjective:
        return SumObjective((*self.terms, other))


# ---------------------------------------------------------------------------------------------
# Jitter and step


@dataclass(frozen=True)
class Jitter:
    """A random circular shift of up to ``max_shift`` pixels in each direction, exactly invertible."""

    max_shift: int

    def sample(self, generator: torch.Generator) -> tuple[int, int]:
        if self.max_shift == 0:
            return 0, 0
        dy, dx = torch.randint(-self.max_shift, self.max_shift + 1, (2,), generator=generator).tolist()
        return int(dy), int(dx)

    @staticmethod
    def apply(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
        return torch.roll(x, shifts=shift, dims=(-2, -1))

    @staticmethod
    def undo(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
        return torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(-2, -1))


def gradient_step(
    x: torch.Tensor, grad: torch.Tensor, learning_rate: float, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Ascend by ``learning_rate · grad / mean|grad|``, then clamp each channel to [low, high].

    Normalising by the mean magnitude makes the step size independent of the layer's scale, so
    one learning rate works for every model and layer. Each sample of a batch (B, C, H, W) is
    normalised by its own gradient.
    """
    scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)  # (B, 1, 1, 1)
    return torch.maximum(torch.minimum(x + (learning_rate / scale) * grad, high), low)


# ---------------------------------------------------------------------------------------------
# Octaves


def octave_sizes(height: int, width: int, num_octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """Pyramid sizes coarse → fine; the last is (height, width). Levels below 8 px are dropped."""
    sizes = []
    for level in range(num_octaves - 1, -1, -1):
        factor = octave_scale**level
        h, w = round(height / factor), round(width / factor)
        if level and min(h, w) < _MIN_OCTAVE_SIDE:
            continue
        sizes.append((max(h, 1), max(w, 1)))
    return sizes


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w) to ``size`` = (H, W), antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    # antialias when shrinking, or the coarse levels alias the source's fine texture
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def run_octaves(
    base: torch.Tensor,
    sizes: Sequence[tuple[int, int]],
    optimise: Callable[[torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """Dream ``base`` (B, C, H, W) over a pyramid of ``sizes`` (coarse → fine, last = full size).

    ``optimise(start, level)`` dreams one level from ``start``. Each level starts from the base
    resized to that level plus the detail dreamed so far, upsampled; the result at full size is
    ``base + detail``.
    """
    detail = torch.zeros_like(resize(base, sizes[0]))
    x = base
    for level, size in enumerate(sizes):
        level_base = resize(base, size)  # (B, C, h, w)
        detail = resize(detail, size)
        x = optimise(level_base + detail, level)
        detail = x - level_base
    return x


# ---------------------------------------------------------------------------------------------
# Tiles


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of equal tiles of ``tile`` px covering ``length`` px, neighbours overlapping ≥ ``overlap``.

    Equal tiles keep the per-tile objective (a mean) on one scale across the image.
    """
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def feather(start: int, size: int, total: int, overlap: int, like: torch.Tensor) -> torch.Tensor:
    """1-D weights for one tile: linear ramps on sides that overlap a neighbour, 1 elsewhere."""
    w = torch.ones(size, dtype=like.dtype, device=like.device)
    ramp = torch.arange(1, overlap + 1, dtype=like.dtype, device=like.device) / (overlap + 1)
    if start > 0:
        w[:overlap] = ramp
    if start + size < total:
        w[size - overlap :] = torch.minimum(w[size - overlap :], ramp.flip(0))
    return w
