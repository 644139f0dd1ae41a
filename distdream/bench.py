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

**Engine.** On a local Ray instance: pipeline efficiency (the same frames and iterations dreamed
in-process with no I/O, over a one-worker render end to end), the speedup of N workers over one,
the driver's peak memory for a clip and one ten times longer, and temporal quality (warping
error of the default render against independent per-frame dreaming, and inside seam windows
against elsewhere).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .config import DreamConfig, RenderConfig
from .dream import Dreamer, Jitter, gradient_step
from .images import array_to_tensor
from .models import load_model
from .paths import temp_sibling
from .samples import pan_frames
from .video import EncoderSettings, SegmentWriter, concat, probe, read_frames, write_clip

__all__ = ["EngineBenchmark", "IOBenchmark", "StepBenchmark", "bench_engine", "bench_io", "bench_step", "plot"]


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


@dataclass(frozen=True)
class EngineBenchmark:
    """The engine end to end on a clip made on the fly, each figure beside its reference."""

    frames: int
    width: int
    height: int
    chunks: int
    workers: int
    pure_dream_seconds: float  # the same frames and iterations, dreamed in-process, one torch thread
    one_worker_seconds: float  # render with one worker: decode, flow, dream, encode, Ray, stitch
    pipeline_efficiency: float  # pure_dream_seconds / one_worker_seconds
    n_workers_seconds: float
    speedup: float  # one_worker_seconds / n_workers_seconds
    lead_in_overhead: float  # extra frames dreamed for lead-ins / frames owned
    driver_rss_mib: float  # driver peak RSS while rendering a clip …
    driver_rss_mib_10x: float  # … and one ten times longer
    rss_frames: int
    warping_error_default: float
    warping_error_independent: float  # every frame dreamed on its own, same settings
    seam_ratio: float  # warping error inside seam windows / elsewhere

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _render_peak_rss(clip: Path, out: Path, config: RenderConfig, **options: object) -> float:
    """Render and return the driver's peak RSS in MiB, sampled while the job runs."""
    from .job import submit

    job = submit(clip, out, config, **options)
    peak = _rss_bytes()
    while job._thread.is_alive():
        peak = max(peak, _rss_bytes())
        time.sleep(0.02)
    job.result()
    return peak / 2**20


def bench_engine(*, quick: bool = False, workers: int | None = None) -> EngineBenchmark:
    """Pipeline efficiency, scaling, driver memory and temporal quality on a local Ray instance."""
    import torch

    from .job import _connect, plan, render
    from .metrics import warping_error

    _connect(None)
    cpus = int(ray_cpus())
    workers = workers or max(1, cpus)
    if quick:
        n, w, h = 16, 96, 64
        dream = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",))
        job = dict(chunk_frames=6, overlap=2)
        rss_frames = 40
    else:
        n, w, h = 48, 160, 90
        dream = DreamConfig()
        job = dict(chunk_frames=12, overlap=4)
        rss_frames = 120
    config = RenderConfig(dream=dream, preset="veryfast")
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip.mp4", pan_frames(n, w, h), audio="aac")
        job_plan = plan(clip, config, **job)

        # pure dream compute: the same frames, keyframe and carried iterations, no I/O, no Ray
        frames = list(read_frames(clip))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as one CPU worker runs
        try:
            dreamer = Dreamer(dream, device="cpu")
            t0 = time.perf_counter()
            for chunk in job_plan.chunks:
                gen = torch.Generator().manual_seed(chunk.seed)
                for i in range(chunk.first, chunk.end):
                    steps = config.keyframe_steps if i == chunk.first else config.frame_steps
                    dreamer.dream(array_to_tensor(frames[i]), generator=gen, num_iterations=steps)
            pure = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)

        t0 = time.perf_counter()
        render(clip, d / "one.mp4", config, workers=1, **job)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        render(clip, d / "many.mp4", config, workers=workers, **job)
        many = time.perf_counter() - t0

        independent = RenderConfig(dream=dream, preset="veryfast", decay=0.0, frame_iterations=config.keyframe_steps,
                                   occlusion_mask=False)
        render(clip, d / "independent.mp4", independent, workers=workers, **job)
        default_err = warping_error(clip, d / "many.mp4")
        independent_err = warping_error(clip, d / "independent.mp4")
        seam = sorted({f for c in job_plan.chunks if c.lead_in for f in range(c.first, c.start + 1)})
        rest = [f for f in range(n) if f not in seam]

        cheap = RenderConfig(dream=DreamConfig(num_iterations=1, num_octaves=1, dream_layers=("_blocks.3",)),
                             preset="ultrafast")
        short = write_clip(d / "short.mp4", pan_frames(rss_frames, 64, 48), audio="aac")
        long = write_clip(d / "long.mp4", pan_frames(10 * rss_frames, 64, 48), audio="aac")
        rss_short = _render_peak_rss(short, d / "short_out.mp4", cheap, chunk_frames=30, overlap=4)
        rss_long = _render_peak_rss(long, d / "long_out.mp4", cheap, chunk_frames=30, overlap=4)
    return EngineBenchmark(
        frames=n, width=w, height=h, chunks=len(job_plan.chunks), workers=workers,
        pure_dream_seconds=pure, one_worker_seconds=one, pipeline_efficiency=pure / one,
        n_workers_seconds=many, speedup=one / many, lead_in_overhead=job_plan.lead_in_overhead,
        driver_rss_mib=rss_short, driver_rss_mib_10x=rss_long, rss_frames=rss_frames,
        warping_error_default=default_err.mean, warping_error_independent=independent_err.mean,
        seam_ratio=default_err.over(seam) / default_err.over(rest),
    )


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


def plot(figures: dict[str, dict[str, object]], path: str | os.PathLike[str]) -> Path:
    """A small figure of the benchmark: one panel per question, readable at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    step, io, engine = figures["step"], figures["io"], figures["engine"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    panels = [
        ("dream iteration (ms)", ["distdream", "naive"], [step["distdream_ms"], step["naive_ms"]]),
        ("range read (frames/s)", ["seek", "from start"], [io["range_read_fps"], io["from_start_fps"]]),
        (f"render (s), {engine['frames']} frames",
         ["pure dream", "1 worker", f"{engine['workers']} workers"],
         [engine["pure_dream_seconds"], engine["one_worker_seconds"], engine["n_workers_seconds"]]),
        ("warping error", ["independent", "default", "seams"],
         [engine["warping_error_independent"], engine["warping_error_default"],
          engine["warping_error_default"] * engine["seam_ratio"]]),
    ]
    colours = ["#4c72b0", "#dd8452", "#55a868"]
    for ax, (title, names, values) in zip(axes, panels):
        ax.bar(names, values, color=colours[: len(values)])
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        for x, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"distdream bench — driver RSS {engine['driver_rss_mib']:.0f} MiB ({engine['rss_frames']} frames) vs "
                 f"{engine['driver_rss_mib_10x']:.0f} MiB (10×); speedup {engine['speedup']:.2f}×", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    tmp = temp_sibling(out)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
