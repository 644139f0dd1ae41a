"""Built-in benchmark: the dream step against a naive loop, and video I/O against naive I/O.

Every figure is measured side by side with its reference in the same run, on the same data.


**Dream step.** The naive reference is how DeepDream is usually written: the whole classifier runs forward
(head included), activations are caught by forward hooks, parameters still require grad (so
backward also computes weight gradients nobody uses). distdream's step runs the traced graph cut
after the deepest layer, with frozen parameters and batch norms folded into their convolutions. Both are timed interleaved, in one process, on
the same model, layers, image and device, and must produce the same image gradient.

**Video I/O.** On a clip with long GOPs: reading a range from the middle (seek to the keyframe,
decode forward) against decoding from the start to the same point; and joining N segments by
remuxing against re-encoding them into one file (what a naive stitcher does).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import torch

from .config import DreamConfig
from .dream import Dreamer, Jitter, gradient_step
from .models import load_model
from .samples import pan_frames
from .video import EncoderSettings, SegmentWriter, concat, probe, read_frames, write_clip

__all__ = ["IOBenchmark", "StepBenchmark", "bench_io", "bench_step"]


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


@dataclass(frozen=True)
class IOBenchmark:
    """Video I/O figures: range reads against decoding from the start, joins against re-encodes."""

    frames: int
    width: int
    height: int
    gop: int
    probe_seconds: float  # demux-only index of the whole clip
    range_start: int
    range_frames: int
    range_read_fps: float  # wanted frames per second, seeking to the keyframe before the range
    from_start_fps: float  # wanted frames per second, decoding everything before the range too
    segments: int
    join_seconds: float  # remux N segments + copy audio
    reencode_seconds: float  # decode N segments and encode them again into one file

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bench_io(
    *, frames: int = 1500, width: int = 320, height: int = 180, gop: int = 250, segments: int = 8, range_frames: int = 50
) -> IOBenchmark:
    """Measure range reads and segment joins on a clip made on the fly (pan over a real photo)."""
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip.mp4", pan_frames(frames, width, height), x264_params=f"keyint={gop}:min-keyint={gop}")
        t0 = time.perf_counter()
        index = probe(clip)
        probe_s = time.perf_counter() - t0
        start = frames // 2 + gop // 2  # mid-GOP in the middle: the keyframe lies gop/2 back
        start = min(start, frames - range_frames)

        t0 = time.perf_counter()
        got = sum(1 for _ in read_frames(clip, start, start + range_frames, index=index))
        range_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        everything = sum(1 for _ in read_frames(clip, 0, start + range_frames, index=index))
        from_start_s = time.perf_counter() - t0
        assert got == range_frames and everything == start + range_frames

        bounds = [round(k * frames / segments) for k in range(segments + 1)]
        paths = []
        settings = EncoderSettings(crf=18, preset="veryfast")
        for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
            with SegmentWriter(d / f"{k:05d}.mp4", width=width, height=height, rate=index.average_rate,
                               settings=settings) as writer:
                for frame in read_frames(clip, a, b, index=index):
                    writer.write(frame)
            paths.append(writer.path)

        t0 = time.perf_counter()
        concat(paths, d / "joined.mp4", index)
        join_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with SegmentWriter(d / "reencoded.mp4", width=width, height=height, rate=index.average_rate,
                           settings=settings) as writer:
            for path in paths:
                for frame in read_frames(path):
                    writer.write(frame)
        reencode_s = time.perf_counter() - t0
        return IOBenchmark(
            frames=frames, width=width, height=height, gop=gop, probe_seconds=probe_s, range_start=start, range_frames=range_frames,
            range_read_fps=range_frames / range_s, from_start_fps=range_frames / from_start_s,
            segments=segments, join_seconds=join_s, reencode_seconds=reencode_s,
        )
