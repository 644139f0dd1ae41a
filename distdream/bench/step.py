"""The dream step against the naive loop, at every precision the device runs.

The naive reference is how DeepDream is usually written: the whole classifier runs forward (head
included), activations are caught by forward hooks, parameters still require grad (so backward
also computes weight gradients nobody uses). distdream's step runs the traced graph cut after the
deepest layer, with frozen parameters and batch norms folded into their convolutions. Both are
timed interleaved, in one process, on the same model, layers, image and device, and must produce
the same image gradient.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import torch

from ..ascent import Jitter, gradient_step
from ..config import DreamConfig
from ..dream import Dreamer
from ..models import load_model
from .base import BenchRun, Echo, Figures, Panel, Parts, bars, row
from .common import device_name, precisions, sync

__all__ = ["StepBenchmark", "bench_step"]


@dataclass(frozen=True)
class StepBenchmark:
    """Median milliseconds per dream iteration, distdream against the naive loop."""

    model: str
    layers: tuple[str, ...]
    size: int
    device: str
    repeats: int
    distdream_ms: float  # at the default settings (precision auto: bf16 on most GPUs, fp32 on CPU)
    naive_ms: float  # fp32, as a naive script runs
    speedup: float  # naive_ms / distdream_ms
    grad_rel_error: float  # ‖ours − naive‖ / ‖naive‖ of the image gradients
    setting: str = "fp32, channels-last"  # the default settings' network as run
    precision_ms: dict[str, float] = field(default_factory=dict)  # distdream's step at each precision the device runs

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
        loss = torch.stack([caught[name].pow(2).mean() for name in layers]).sum()
        loss.backward()
        assert x.grad is not None
        return x.grad

    return gradient


def bench_step(
    config: DreamConfig | None = None, *, size: int = 256, repeats: int = 20, device: str | None = None
) -> StepBenchmark:
    """Time one dream iteration (jitter, gradient, normalised step) at ``size``×``size``.

    distdream's step runs at the config's precision and at every precision the device runs
    (CUDA: fp32, bf16 where the card has it, fp16), the naive loop in fp32; all interleaved.
    Layers must be module names (the naive loop hooks modules); the default model's defaults are.
    """
    config = (config or DreamConfig()).validate()
    dreamer = Dreamer(config, device=device)
    naive_gradient = _naive_step_factory(config, dreamer.layers, dreamer.device)
    others = [p for p in precisions(dreamer.device) if p != dreamer.compute.precision]
    variants = {dreamer.compute.precision: dreamer}
    for precision in others:  # a model each: a layout conversion must not reach another's modules
        variants[precision] = Dreamer(replace(config, precision=precision), device=dreamer.device)
    generator = torch.Generator().manual_seed(0)
    x0 = dreamer.model.preprocess.normalize(torch.rand(1, 3, size, size, generator=generator)).to(dreamer.device)

    reference = naive_gradient(x0)
    ours = dreamer.gradient(x0)
    rel_error = float((reference - ours).norm() / reference.norm().clamp_min(1e-12))

    def iteration(gradient: Callable[[torch.Tensor], torch.Tensor]) -> float:
        shift = Jitter(config.jitter).sample(generator)
        sync(dreamer.device)
        t0 = time.perf_counter()
        grad = Jitter.undo(gradient(Jitter.apply(x0, shift)), shift)
        gradient_step(x0, grad, config.learning_rate, dreamer.low, dreamer.high)
        sync(dreamer.device)
        return (time.perf_counter() - t0) * 1000.0

    timed = {name: v.gradient for name, v in variants.items()} | {"naive": naive_gradient}
    for _ in range(3):  # warm-up: allocator, kernels, caches
        for gradient in timed.values():
            iteration(gradient)
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeats):  # interleaved, so drift in machine load hits all alike
        for name, gradient in timed.items():
            times[name].append(iteration(gradient))
    medians = {name: statistics.median(values) for name, values in times.items()}
    d, n = medians[dreamer.compute.precision], medians["naive"]
    return StepBenchmark(
        model=config.model,
        layers=dreamer.layers,
        size=size,
        device=device_name(dreamer.device),
        repeats=repeats,
        distdream_ms=d,
        naive_ms=n,
        speedup=n / d,
        grad_rel_error=rel_error,
        setting=dreamer.compute.describe(),
        precision_ms={p: medians[p] for p in precisions(dreamer.device)},
    )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_step(run: BenchRun) -> None:
    for size in run.plan.step_sizes:
        if run.in_time(f"step {size}"):
            result = bench_step(size=size, repeats=5 if run.plan.quick else 20, device=run.plan.device)
            run.record("step", result.to_dict(), many=True)


def _show_step(figures: list[Mapping[str, Any]], echo: Echo) -> None:
    for r in figures:
        echo(
            f"dream iteration, {r['model']} [{','.join(r['layers'])}], {r['size']}×{r['size']}, {r['device']}, "
            f"median of {r['repeats']}:"
        )
        for precision, ms in r["precision_ms"].items():
            row(echo, f"distdream, {precision} network", f"{ms:8.2f} ms")
        row(echo, "naive (full forward, hooks, grads; fp32)", f"{r['naive_ms']:8.2f} ms")
        row(
            echo,
            f"speedup at the default ({r['setting']})",
            f"{r['speedup']:8.2f}×   (image gradients differ by {r['grad_rel_error']:.1e}, relative L2)",
        )
        fp32 = r["precision_ms"].get("fp32")
        for precision in ("bf16", "fp16"):
            if fp32 and precision in r["precision_ms"]:
                row(echo, f"{precision} over fp32", f"{fp32 / r['precision_ms'][precision]:8.2f}×")


def _panels_step(figures: Figures) -> list[Panel]:
    panels: list[Panel] = []
    for step in figures.get("step", []):
        names = [*step["precision_ms"], "naive"]
        values = [*step["precision_ms"].values(), step["naive_ms"]]
        panels.append(partial(bars, names=names, values=values, title=f"dream iteration (ms), {step['size']}²"))
    return panels


PARTS = {
    "step": Parts(_run_step, _show_step, _panels_step),
}
