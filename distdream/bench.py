"""Built-in benchmark: what one dream iteration costs, against the naive way to write it.

The naive reference is how DeepDream is usually written: the whole classifier runs forward
(head included), activations are caught by forward hooks, parameters still require grad (so
backward also computes weight gradients nobody uses). distdream's step runs the traced graph cut
after the deepest layer, with frozen parameters and batch norms folded into their convolutions. Both are timed interleaved, in one process, on
the same model, layers, image and device, and must produce the same image gradient.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .config import DreamConfig
from .dream import Dreamer, Jitter, gradient_step
from .models import load_model

__all__ = ["StepBenchmark", "bench_step"]


@dataclass(frozen=True)
class StepBenchmark:
    """Median milliseconds per dream iteration, distdream against the naive loop."""

    model: str
    layers: tuple[str, ...]
    size: int
    device: str
    repeats: int
    distdream_ms: float
    naive_ms: float
    speedup: float  # naive_ms / distdream_ms
    grad_rel_error: float  # ‖ours − naive‖ / ‖naive‖ of the image gradients

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _naive_step_factory(config: DreamConfig, layers: tuple[str, ...], device: torch.device) -> Callable:
    # A fresh copy of the model, as a naive script would hold it: whole network, params trainable.
    model = load_model(config.model, config.weights)
    net = model.module.to(device).eval()
    net.requires_grad_(True)
    caught: dict[str, torch.Tensor] = {}
    for layer in layers:
        net.get_submodule(layer).register_forward_hook(lambda _m, _i, out, name=layer: caught.__setitem__(name, out))

    def gradient(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        caught.clear()
        net.zero_grad(set_to_none=True)
        net(x)
        loss = sum(caught[name].pow(2).mean() for name in layers)
        loss.backward()
        return x.grad

    return gradient


def bench_step(
    config: DreamConfig | None = None, *, size: int = 256, repeats: int = 20, device: str | None = None
) -> StepBenchmark:
    """Time one dream iteration (jitter, gradient, normalised step) at ``size``×``size``.

    Layers must be module names (the naive loop hooks modules); the default model's defaults are.
    """
    config = (config or DreamConfig()).validate()
    dreamer = Dreamer(config, device=device)
    naive_gradient = _naive_step_factory(config, dreamer.layers, dreamer.device)
    generator = torch.Generator().manual_seed(0)
    x0 = dreamer.model.preprocess.normalize(torch.rand(1, 3, size, size, generator=generator)).to(dreamer.device)

    reference = naive_gradient(x0)
    ours = dreamer.gradient(x0)
    rel_error = float((reference - ours).norm() / reference.norm().clamp_min(1e-12))

    def iteration(gradient: Callable[[torch.Tensor], torch.Tensor]) -> float:
        shift = Jitter(config.jitter).sample(generator)
        if dreamer.device.type == "cuda":
            torch.cuda.synchronize(dreamer.device)
        t0 = time.perf_counter()
        grad = Jitter.undo(gradient(Jitter.apply(x0, shift)), shift)
        gradient_step(x0, grad, config.learning_rate, dreamer.low, dreamer.high)
        if dreamer.device.type == "cuda":
            torch.cuda.synchronize(dreamer.device)
        return (time.perf_counter() - t0) * 1000.0

    for _ in range(3):  # warm-up: allocator, kernels, caches
        iteration(dreamer.gradient)
        iteration(naive_gradient)
    ours_ms, naive_ms = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        ours_ms.append(iteration(dreamer.gradient))
        naive_ms.append(iteration(naive_gradient))
    d, n = statistics.median(ours_ms), statistics.median(naive_ms)
    return StepBenchmark(
        model=config.model,
        layers=dreamer.layers,
        size=size,
        device=str(dreamer.device),
        repeats=repeats,
        distdream_ms=d,
        naive_ms=n,
        speedup=n / d,
        grad_rel_error=rel_error,
    )
