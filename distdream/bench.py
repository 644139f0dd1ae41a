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

**Lanes and precision.** Frames per second on one device (decode, flow and dream; no encode) for
lanes = 1, 2, 4, 8 and each precision the device runs, side by side on the same clip: lane *i*
dreams its own range with its own seed. Beside each figure, how far lane 0's frames are from the
fp32 one-lane frames (mean |Δ| in levels of 255) and how strong the dream is against them (mean
|dream − input|, as a ratio): lanes and precision may change detail, never strength.

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

import numpy as np
import torch

from .config import DreamConfig, RenderConfig
from .dream import Dreamer, Jitter, gradient_step
from .images import array_to_tensor
from .models import load_model
from .paths import temp_sibling
from .samples import pan_frames
from .video import (
    EncoderSettings,
    SegmentWriter,
    concat,
    probe,
    read_frames,
    write_clip,
)

__all__ = [
    "EngineBenchmark",
    "IOBenchmark",
    "LaneRow",
    "LanesBenchmark",
    "StepBenchmark",
    "bench_engine",
    "bench_io",
    "bench_lanes",
    "bench_step",
    "plot",
]


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


@dataclass(frozen=True)
class LaneRow:
    """One setting at one lane count."""

    setting: str  # the effective compute: precision, memory layout, compiled
    lanes: int
    seconds: float
    frames_per_s: float
    speedup: float  # frames_per_s over the first row's (fp32, one lane)
    mean_diff: float  # lane 0's frames against the reference's, mean |Δ| in levels of 255
    strength_ratio: float  # lane 0's mean |dream − input| over the reference's
    grad_cosine: float  # this setting's image gradient against the first setting's, on one frame


@dataclass(frozen=True)
class LanesBenchmark:
    """Throughput per device for lanes × precision, with how much each changes the frames."""

    device: str
    width: int
    height: int
    frames_per_lane: int
    torch_threads: int
    rows: tuple[LaneRow, ...]
    notes: tuple[str, ...]  # settings this device does not run, and why
    other_seed_diff: float  # the reference against a render with another seed: a different dream, Δ in levels

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _precisions(device: torch.device) -> list[str]:
    if device.type != "cuda":
        return ["fp32"]
    return ["fp32", "bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]


def bench_lanes(
    *,
    device: str | None = None,
    width: int | None = None,
    height: int | None = None,
    frames_per_lane: int = 6,
    lanes: tuple[int, ...] = (1, 2, 4, 8),
    compile: bool = False,
) -> LanesBenchmark:
    """Frames/s of one device for each lane count and precision, measured in one run.

    Sizes default to 1280×720 on CUDA and 160×90 on CPU. CPU runs with one torch thread, as one
    CPU worker does. ``compile`` adds rows with ``torch.compile`` (slow to warm up).
    """
    import threading

    from .dream import resolve_device
    from .lanes import LaneBatcher
    from .pipeline import dream_frames

    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    width, height = width or (1280 if cuda else 160), height or (720 if cuda else 90)
    config = RenderConfig()
    model = load_model(config.dream.model, config.dream.weights)
    n_lanes = max(lanes)
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
            clip = write_clip(Path(tmp) / "clip.mp4", pan_frames(n_lanes * frames_per_lane, width, height), crf=0)
            index = probe(clip)
            source = list(read_frames(clip, 0, frames_per_lane, index=index))

            def run(dreamer: Dreamer, count: int, seed: int = 0) -> tuple[float, list]:
                ranges = [(k * frames_per_lane, (k + 1) * frames_per_lane) for k in range(count)]
                out: dict[int, list] = {}
                errors: list[BaseException] = []

                def one(k: int, frame_dreamer: object) -> None:
                    gen = torch.Generator().manual_seed(seed + k)
                    out[k] = [rgb for _, rgb, _ in dream_frames(index, *ranges[k], config, frame_dreamer,  # type: ignore[arg-type]
                                                                   generator=gen)]

                t0 = time.perf_counter()
                if count == 1:
                    one(0, dreamer)
                else:
                    batcher = LaneBatcher(dreamer)

                    def lane_job(k: int) -> None:
                        try:
                            with batcher.lane() as lane:
                                one(k, lane)
                        except BaseException as exc:
                            errors.append(exc)

                    workers = [threading.Thread(target=lane_job, args=(k,)) for k in range(count)]
                    for w in workers:
                        w.start()
                    for w in workers:
                        w.join()
                    batcher.close()
                    if errors:
                        raise errors[0]
                return time.perf_counter() - t0, out[0]

            settings = [DreamConfig(precision=p) for p in _precisions(dev)]
            # the other memory layout at the default precision: what it adds, and (same arithmetic,
            # other kernels) how far rounding alone moves a dream
            settings.append(DreamConfig(channels_last=False))
            if compile:
                settings.append(DreamConfig(compile=True))
            rows: list[LaneRow] = []
            notes: list[str] = []
            if not cuda:
                notes.append(f"bf16 and fp16 run on CUDA only; on {dev.type} they fall back to fp32 (the fp32 rows)")
            # a model per setting: a layout conversion must not reach another setting's modules
            dreamers = [Dreamer(dream, device=dev, model=load_model(dream.model, dream.weights)) for dream in settings]
            for dreamer in dreamers:
                run(dreamer, 1)  # warm-up: kernels, allocator, compilation
                notes.extend(n for n in dreamer.notes if n not in notes)
            probe_frame = dreamers[0].model.preprocess.normalize(array_to_tensor(source[0])).to(dev)
            grads = [d.gradient(probe_frame).flatten().double().cpu() for d in dreamers]
            cosines = [float(torch.nn.functional.cosine_similarity(g, grads[0], dim=0)) for g in grads]
            measured: dict[tuple[int, int], tuple[float, list]] = {}
            for count in lanes:  # settings interleaved per lane count, so drift in load hits all alike
                for k, dreamer in enumerate(dreamers):
                    try:
                        measured[k, count] = run(dreamer, count)
                    except torch.OutOfMemoryError:  # a row this card cannot hold is a figure too
                        notes.append(f"{dreamer.compute.describe()}, {count} lanes: out of GPU memory")
                        torch.cuda.empty_cache()
            reference = measured[0, lanes[0]][1]

            def mean_diff(frames: list, other: list) -> float:
                return float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean()
                                      for a, b in zip(frames, other, strict=True)]))

            base_fps = lanes[0] * frames_per_lane / measured[0, lanes[0]][0]
            base_strength = mean_diff(reference, source)
            for k, dreamer in enumerate(dreamers):
                for count in lanes:
                    if (k, count) not in measured:
                        continue
                    seconds, frames = measured[k, count]
                    fps = count * frames_per_lane / seconds
                    rows.append(LaneRow(setting=dreamer.compute.describe(), lanes=count, seconds=seconds,
                                        frames_per_s=fps, speedup=fps / base_fps,
                                        mean_diff=mean_diff(frames, reference),
                                        strength_ratio=mean_diff(frames, source) / base_strength,
                                        grad_cosine=cosines[k]))
            _, other = run(Dreamer(DreamConfig(), device=dev, model=model), 1, seed=1000)
            seed_diff = mean_diff(other, reference)
    finally:
        torch.set_num_threads(threads)
    return LanesBenchmark(device=_device_name(dev), width=width, height=height, frames_per_lane=frames_per_lane,
                          torch_threads=torch.get_num_threads() if cuda else 1, rows=tuple(rows), notes=tuple(notes),
                          other_seed_diff=seed_diff)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} cores)"


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


def plot(figures: dict[str, dict[str, object]], path: str | os.PathLike[str]) -> Path:
    """A small figure of the benchmark: one panel per question, readable at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    panels: list[tuple[str, list[str], list[float]]] = []
    title = "distdream bench"
    if "step" in figures:
        step = figures["step"]
        panels.append(("dream iteration (ms)", ["distdream", "naive"], [step["distdream_ms"], step["naive_ms"]]))
    if "io" in figures:
        io = figures["io"]
        panels.append(("range read (frames/s)", ["seek", "from start"], [io["range_read_fps"], io["from_start_fps"]]))
    if "engine" in figures:
        engine = figures["engine"]
        panels.append((f"render (s), {engine['frames']} frames",
                       ["pure dream", "1 worker", f"{engine['workers']} workers"],
                       [engine["pure_dream_seconds"], engine["one_worker_seconds"], engine["n_workers_seconds"]]))
        panels.append(("warping error", ["independent", "default", "seams"],
                       [engine["warping_error_independent"], engine["warping_error_default"],
                        engine["warping_error_default"] * engine["seam_ratio"]]))
        title += (f" — driver RSS {engine['driver_rss_mib']:.0f} MiB ({engine['rss_frames']} frames) vs "
                  f"{engine['driver_rss_mib_10x']:.0f} MiB (10×); speedup {engine['speedup']:.2f}×")
    lanes_rows: list[dict] = list(figures.get("lanes", {}).get("rows", []))  # type: ignore[union-attr]
    fig, axes = plt.subplots(1, len(panels) + bool(lanes_rows), figsize=(3.5 * (len(panels) + 1.5 * bool(lanes_rows)), 3.4),
                             squeeze=False)
    colours = ["#4c72b0", "#dd8452", "#55a868"]
    for ax, (name, names, values) in zip(axes[0], panels):
        ax.bar(names, values, color=colours[: len(values)])
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
        for x, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
    if lanes_rows:
        ax = axes[0][-1]
        for setting in dict.fromkeys(r["setting"] for r in lanes_rows):
            rows = [r for r in lanes_rows if r["setting"] == setting]
            ax.plot([r["lanes"] for r in rows], [r["frames_per_s"] for r in rows], marker="o", label=setting)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lanes", fontsize=8)
        ax.set_title(f"frames/s, {figures['lanes']['device']}", fontsize=10)  # type: ignore[index]
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    tmp = temp_sibling(out)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
