"""The dreamer: a truncated network on a device, dreaming images by gradient ascent. No I/O.

The ascent's pieces (objective, jitter, step, octaves, tiles) are :mod:`distdream.ascent`.
:class:`Dreamer` ties them to a truncated feature extractor on a device.
:meth:`Dreamer.dream_batch` dreams several unrelated frames (the lanes of
:mod:`distdream.frames.lanes`) as one batch, each exactly as it would be dreamed alone, up to the
rounding of batched kernels; :func:`distdream.frames.sequence.dream_sequence` dreams video frames
in order with it, each starting from the previous dream carried onto it (pulled back toward it by
an :class:`Anchor`). Images are (1, 3, H, W) float tensors with RGB in [0, 1]; the dream runs in
the model's normalised space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .ascent import (
    Jitter,
    LayerObjective,
    Objective,
    SumObjective,
    feather,
    gradient_step,
    octave_sizes,
    resize,
    run_octaves,
    tile_starts,
)
from .compute import Compute, GradientEngine, resolve_compute, resolve_device
from .config import DreamConfig
from .errors import ConfigError
from .models import (
    LoadedModel,
    load_model,
)
from .models.layers import feature_extractor, list_layers, resolve_layers

__all__ = ["Anchor", "Dreamer", "FrameDreamer"]

# ---------------------------------------------------------------------------------------------
# The temporal term


@dataclass(frozen=True)
class Anchor:
    """What pulls a carried frame toward the previous dream, moved with the scene.

    After every normalised step the image moves ``weight · mask`` of the way back to ``target``
    (Ruder et al. 2016's temporal term, as one elementwise update): where the flow is reliable,
    the dream may not wander from what the previous frame showed; where the scene is new
    (``mask`` 0), it is free.
    """

    target: torch.Tensor  # (1, 3, H, W) RGB in [0, 1]: this frame plus the previous dream, warped onto it
    mask: torch.Tensor  # (1, 1, H, W) in [0, 1]: how far the warp can be trusted
    weight: float  # λ: the share of the gap closed per step
    # (1, 1, H, W) in [0, 1]: how still the scene is at each pixel; a step moves a pixel
    # (1 − still) of its way, so a dream that is already there stays (None: whole steps everywhere)
    still: torch.Tensor | None = None


# ---------------------------------------------------------------------------------------------
# The dreamer


class FrameDreamer(Protocol):
    """Anything that dreams one frame: a :class:`Dreamer`, or one lane of a shared batch."""

    def dream(
        self,
        image: torch.Tensor,
        *,
        generator: torch.Generator,
        num_iterations: int | None = None,
        progress: Callable[[int], None] | None = None,
        anchor: Anchor | None = None,
    ) -> torch.Tensor: ...


class Dreamer:
    """Dreams images with one model, layers and settings on one device.

    Build it once (it loads the model and traces the truncated extractor), then call
    :meth:`dream` for every image or frame, or :meth:`dream_batch` for several at once. It holds
    no randomness: pass a generator per image.
    """

    def __init__(
        self,
        config: DreamConfig,
        *,
        device: str | torch.device | None = None,
        model: LoadedModel | None = None,
        compute: Compute | None = None,
    ) -> None:
        self.config = config.validate()
        self.device = resolve_device(device)
        self.model = model or load_model(config.model, config.weights)
        self.layers = resolve_layers(self.model, config.dream_layers)
        self.objective = self._build_objective()
        self.extractor = feature_extractor(self.model, self.layers).to(self.device)
        # ``compute`` overrides the resolved precision/layout (tests run the autocast path on CPU)
        self.compute = compute or resolve_compute(self.config, self.device)
        self.engine = GradientEngine(self.extractor, self.objective, self.device, self.compute)
        self.jitter = Jitter(config.jitter)
        probe = torch.zeros(1, 3, 1, 1, device=self.device)
        self.low, self.high = self.model.preprocess.bounds(probe)  # each (1, 3, 1, 1)

    @property
    def notes(self) -> list[str]:
        """Settings that could not be honoured on this device (precision, compile), one line each."""
        return self.engine.notes

    def _build_objective(self) -> Objective:
        channels = {layer: self.config.channels_for(layer) for layer in self.layers}
        if any(c is not None for c in channels.values()):
            widths = {info.name: info.channels for info in list_layers(self.model) if info.name in channels}
            for layer, idx in channels.items():
                bad = [i for i in idx or () if i >= widths[layer]]
                if bad:
                    raise ConfigError(
                        f"channel {bad[0]} is out of range for layer {layer!r}, which has "
                        f"{widths[layer]} channels (0–{widths[layer] - 1})"
                    )
        terms = [LayerObjective(layer, channels[layer]) for layer in self.layers]
        return terms[0] if len(terms) == 1 else SumObjective(tuple(terms))

    def objective_value(self, image: torch.Tensor) -> float:
        """The objective of an RGB image (1, 3, H, W) in [0, 1], for tests and diagnostics."""
        with torch.no_grad():
            x = self.model.preprocess.normalize(image.to(self.device))
            return float(self.objective(self.extractor(x)).sum())

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """d objective / d x per sample for a normalised batch (B, 3, H, W), tiled when larger than tile_size."""
        tile = self.config.tile_size
        h, w = x.shape[-2:]
        if tile is None or (h <= tile and w <= tile):
            return self.engine(x)
        overlap = max(tile // 8, 8)
        th, tw = min(tile, h), min(tile, w)
        grad = torch.zeros_like(x)
        weight = torch.zeros((1, 1, h, w), dtype=x.dtype, device=x.device)
        for y0 in tile_starts(h, th, overlap):
            wy = feather(y0, th, h, overlap, x)
            for x0 in tile_starts(w, tw, overlap):
                wx = feather(x0, tw, w, overlap, x)
                ramp = wy[:, None] * wx[None, :]  # (th, tw)
                g = self.engine(x[..., y0 : y0 + th, x0 : x0 + tw])  # (B, 3, th, tw)
                grad[..., y0 : y0 + th, x0 : x0 + tw] += g * ramp
                weight[..., y0 : y0 + th, x0 : x0 + tw] += ramp
        return grad / weight

    def dream(
        self,
        image: torch.Tensor,
        *,
        generator: torch.Generator,
        num_iterations: int | None = None,
        progress: Callable[[int], None] | None = None,
        anchor: Anchor | None = None,
    ) -> torch.Tensor:
        """Dream an RGB image (1, 3, H, W) in [0, 1]; returns the same shape, in [0, 1], on the
        image's device (the network runs on this dreamer's).

        ``num_iterations`` overrides the config's per-octave count (keyframes and flow-warped
        frames of a video need different counts). ``progress(n)`` is called after every step.
        ``anchor`` adds the temporal term (see :class:`Anchor`).
        """
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ConfigError(f"dream expects an image tensor of shape (1, 3, H, W), got {tuple(image.shape)}")
        return self.dream_batch(
            [image], generators=[generator], num_iterations=[num_iterations], progress=[progress], anchors=[anchor]
        )[0]

    def dream_batch(
        self,
        images: Sequence[torch.Tensor],
        *,
        generators: Sequence[torch.Generator],
        num_iterations: Sequence[int | None] | None = None,
        progress: Sequence[Callable[[int], None] | None] | None = None,
        anchors: Sequence[Anchor | None] | None = None,
    ) -> list[torch.Tensor]:
        """Dream several same-sized images (each (1, 3, H, W)) as one batch; one result per image.

        Each image keeps its own generator, iteration count and progress callback, and gets the
        result :meth:`dream` would give it alone (up to batched-kernel rounding): the jitter is
        drawn per image in the same order, the step is normalised per image, and an image whose
        iterations for a level are done leaves the batch until the next level.
        """
        n = len(images)
        if not n or len(generators) != n:
            raise ValueError(f"dream_batch needs one generator per image, got {len(generators)} for {n}")
        if any(im.dim() != 4 or im.shape[:2] != (1, 3) for im in images):
            raise ConfigError(
                f"dream expects image tensors of shape (1, 3, H, W), got {[tuple(i.shape) for i in images]}"
            )
        if len({tuple(im.shape[-2:]) for im in images}) != 1:
            raise ConfigError(f"a batch needs images of one size, got {sorted({tuple(i.shape[-2:]) for i in images})}")
        cfg = self.config
        steps = [cfg.num_iterations if k is None else k for k in (num_iterations or [None] * n)]
        callbacks = list(progress or [None] * n)
        preprocess = self.model.preprocess
        base = preprocess.normalize(torch.cat(list(images)).to(self.device, torch.float32))  # (B, 3, H, W)
        sizes = octave_sizes(base.shape[-2], base.shape[-1], cfg.num_octaves, cfg.octave_scale)
        pulls = self._pulls(list(anchors or [None] * n), base, sizes)

        def optimise(x: torch.Tensor, level: int) -> torch.Tensor:
            for t in range(max(steps)):
                active = [i for i in range(n) if steps[i] > t]
                xa = x if len(active) == n else x[active]  # (A, 3, h, w)
                shifts = [self.jitter.sample(generators[i]) for i in active]
                rolled = torch.cat([self.jitter.apply(xa[j : j + 1], s) for j, s in enumerate(shifts)])
                grad = self.gradient(rolled)  # (A, 3, h, w)
                grad = torch.cat([self.jitter.undo(grad[j : j + 1], s) for j, s in enumerate(shifts)])
                stepped = gradient_step(xa, grad, cfg.learning_rate, self.low, self.high)
                if pulls is not None:  # the temporal term: back toward the warped previous output
                    target, pull, freedom = pulls[level]
                    idx = slice(None) if len(active) == n else active
                    if freedom is not None:  # still pixels keep the dream they carry
                        stepped = xa + freedom[idx] * (stepped - xa)
                    stepped = stepped - pull[idx] * (stepped - target[idx])
                xa = stepped
                if len(active) == n:
                    x = xa
                else:
                    x = x.clone()
                    x[active] = xa
                for i in active:
                    callback = callbacks[i]
                    if callback is not None:
                        callback(1)
            return x

        # no clamp here: every step clamps already, and an undreamed image (no steps) must come back
        # as it went in, out-of-gamut values included (a zero-dream render re-encodes exactly)
        out = preprocess.denormalize(run_octaves(base, sizes, optimise)).detach().to(images[0].device)
        return [out[i : i + 1] for i in range(n)]

    def _pulls(
        self, anchors: list[Anchor | None], base: torch.Tensor, sizes: Sequence[tuple[int, int]]
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] | None:
        """Per octave level: the targets (normalised), ``weight · mask`` and ``1 − still`` (the
        share of each step a pixel takes; None when no image has a still map) of a batch, or
        ``None`` when no image has an anchor. An image without one gets a zero pull and whole steps."""
        if all(a is None for a in anchors):
            return None
        targets = torch.cat(
            [
                base[i : i + 1]
                if a is None
                else self.model.preprocess.normalize(a.target.to(self.device, torch.float32))
                for i, a in enumerate(anchors)
            ]
        )
        weights = torch.cat(
            [
                torch.zeros_like(base[i : i + 1, :1]) if a is None else a.weight * a.mask.to(self.device, torch.float32)
                for i, a in enumerate(anchors)
            ]
        )
        freedom = None
        if any(a is not None and a.still is not None for a in anchors):
            freedom = torch.cat(
                [
                    torch.ones_like(base[i : i + 1, :1])
                    if a is None or a.still is None
                    else 1.0 - a.still.to(self.device, torch.float32)
                    for i, a in enumerate(anchors)
                ]
            )
        return [
            (resize(targets, size), resize(weights, size), None if freedom is None else resize(freedom, size))
            for size in sizes
        ]

    def total_steps(self, height: int, width: int, num_iterations: int | None = None) -> int:
        """How many gradient steps :meth:`dream` takes for an image of this size (for progress bars)."""
        steps = self.config.num_iterations if num_iterations is None else num_iterations
        return steps * len(octave_sizes(height, width, self.config.num_octaves, self.config.octave_scale))
