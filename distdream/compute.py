"""How the network runs on its device: precision, memory layout, compilation.

None of this changes *what* is dreamed, only how fast and with how much rounding:

- **precision**: the truncated extractor runs under ``torch.autocast`` in bf16 or fp16 on CUDA.
  The image, the gradient step, the clamp and the per-sample objective stay fp32 (activations are
  cast up before they are squared, so ``act²`` cannot overflow fp16). fp16 has a narrow exponent
  range: the gradient of a *mean* of squares is tiny per pixel (≈ 2·act/N) and would underflow
  in the backward pass, so the loss is multiplied by a dynamic scale (halved and the step redone
  when the gradient overflows, doubled after a run of good steps). The scale cancels exactly: the
  step divides the gradient by its own mean magnitude anyway. bf16 has fp32's exponent range and
  needs no scaling.
- **channels-last** (NHWC) lets oneDNN use its fastest kernels on CPU, where it is on. On CUDA it
  is off by default: cuDNN's NHWC depthwise kernels make batches several times *slower* than
  NCHW at every precision (figures for both: docs/benchmarks/gpu.md).
- **compile**: ``torch.compile`` of the extractor; if compiling fails (no C++ compiler, an
  unsupported op), the engine says so once and runs eager from then on. Experimental on CUDA:
  slow to compile there, and it has aborted the process inside torch with lanes (a C++ error no
  fallback can catch; docs/benchmarks/gpu.md).

``auto`` precision is fp32 on every device: on the GPU measured, autocast was not worth its
rounding for this network (bf16 about as fast, fp16 far slower with lanes, and bf16's image
gradient points elsewhere; docs/benchmarks/gpu.md). A dream step of a depthwise-separable network is bound by
kernel launches and memory traffic, which reduced precision does not shorten much. bf16 and fp16
stay available (they halve the memory per lane).

CPU falls back cleanly: bf16/fp16 requests run fp32 there (CPU autocast is slower than fp32 for
this network on machines without AMX), with a note saying so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .config import DreamConfig
from .errors import ConfigError

__all__ = ["Compute", "Features", "GradientEngine", "resolve_compute", "resolve_device"]

log = logging.getLogger("distdream")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Compute:
    """The effective settings on one device, after ``auto`` and fallbacks are resolved."""

    precision: str  # "fp32", "bf16" or "fp16"
    channels_last: bool
    compile: bool
    notes: tuple[str, ...] = ()  # why a request was not honoured, one line each

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, or ``None`` for plain fp32."""
        return _DTYPES.get(self.precision)

    def describe(self) -> str:
        parts = [self.precision, "channels-last" if self.channels_last else "NCHW"]
        if self.compile:
            parts.append("compiled")
        return ", ".join(parts)


def resolve_compute(config: DreamConfig, device: torch.device, *, bf16_supported: bool | None = None) -> Compute:
    """What ``config``'s precision, channels-last and compile settings mean on ``device``.

    ``bf16_supported`` overrides the device query (tests resolve CUDA settings without a GPU).
    """
    notes: list[str] = []
    cuda = device.type == "cuda"
    if bf16_supported is None:
        bf16_supported = cuda and torch.cuda.is_bf16_supported()
    wanted = config.precision
    if not cuda:
        if wanted in _DTYPES:
            notes.append(f"precision {wanted} runs on CUDA only; using fp32 on {device.type}")
        precision = "fp32"
    elif wanted == "auto":
        precision = "fp32"  # measured: see the module docstring
    elif wanted == "bf16" and not bf16_supported:
        notes.append("this GPU has no bf16; using fp16 (with loss scaling)")
        precision = "fp16"
    else:
        precision = wanted
    channels_last = (not cuda) if config.channels_last is None else config.channels_last
    return Compute(precision=precision, channels_last=channels_last, compile=config.compile, notes=tuple(notes))


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` picks CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device {device!r} is not a torch device (cpu, cuda, cuda:1 …): {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for CUDA, but torch sees no GPU; use --device cpu")
    return resolved


Features = Mapping[str, torch.Tensor]  # layer name → activations, what an objective reads


class GradientEngine:
    """d objective / d image for a batch, through the extractor at the chosen precision.

    ``objective`` maps features to one value per sample, shape (B,); the gradient of their sum
    gives every sample the gradient of its own objective (the extractor mixes nothing across
    the batch: eval mode, batch norms folded).
    """

    # fp16 loss scaling, as torch.amp.GradScaler does it for training
    INITIAL_SCALE = 2.0**16
    GROWTH_INTERVAL = 200
    MAX_SCALE = 2.0**24

    def __init__(
        self,
        extractor: nn.Module,
        objective: Callable[[Features], torch.Tensor],
        device: torch.device,
        compute: Compute,
        *,
        initial_scale: float | None = None,
        compile_backend: str | Callable = "inductor",
    ) -> None:
        self.device, self.compute, self.objective = device, compute, objective
        if compute.channels_last:
            extractor = extractor.to(memory_format=torch.channels_last)
        self.eager = extractor
        self.forward: Callable[[torch.Tensor], Features] = extractor
        if compute.compile:
            self.forward = torch.compile(extractor, backend=compile_backend)
        self.dtype = compute.dtype  # None after fp16 had to be given up
        self.scale = initial_scale or (self.INITIAL_SCALE if compute.precision == "fp16" else 1.0)
        self._good_steps = 0
        self.notes: list[str] = list(compute.notes)

    def _features(self, x: torch.Tensor) -> Features:
        if self.forward is self.eager:
            return self.eager(x)
        try:
            return self.forward(x)
        except Exception as exc:  # compiling happens at the first call of each shape: fall back once
            first = str(exc).strip().splitlines()[0][:160]
            note = f"torch.compile failed ({exc.__class__.__name__}: {first}); running eager"
            log.warning(note)
            self.notes.append(note)
            self.forward = self.eager
            return self.eager(x)

    def _scaled_gradient(
        self, x: torch.Tensor, scale: float, dtype: torch.dtype | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gradient, loss) with the loss multiplied by ``scale`` for the backward pass only."""
        x = x.detach().requires_grad_(True)
        inp = x.contiguous(memory_format=torch.channels_last) if self.compute.channels_last else x
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            features = self._features(inp)
        # per-sample objectives in fp32: squaring fp16 activations could overflow
        loss = self.objective({k: v.float() for k, v in features.items()}).sum()  # (B,) → ()
        (grad,) = torch.autograd.grad(loss * scale if scale != 1.0 else loss, x)
        return (grad.contiguous() / scale if scale != 1.0 else grad.contiguous()), loss.detach()

    def _leave_fp16(self, why: str) -> None:
        note = f"fp16 {why}; this worker's network runs fp32 from here"
        log.warning(note)
        self.notes.append(note)
        self.dtype = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The image gradient (B, 3, h, w) in fp32 for a normalised fp32 batch ``x``."""
        if self.dtype is not torch.float16:
            return self._scaled_gradient(x, 1.0, self.dtype)[0]
        while True:
            grad, loss = self._scaled_gradient(x, self.scale, torch.float16)
            if not bool(torch.isfinite(loss)):  # activations overflowed fp16: no loss scale helps
                self._leave_fp16("activations overflow (a model without bounded activations?)")
                return self._scaled_gradient(x, 1.0, None)[0]
            if bool(torch.isfinite(grad).all()):
                self._good_steps += 1
                if self._good_steps >= self.GROWTH_INTERVAL and self.scale < self.MAX_SCALE:
                    self.scale, self._good_steps = self.scale * 2.0, 0
                return grad
            self._good_steps = 0
            if self.scale <= 1.0:
                self._leave_fp16("gradients overflow even unscaled")
                return self._scaled_gradient(x, 1.0, None)[0]
            self.scale /= 2.0
