"""Lanes × precision: frames per second of one device, and how much each setting changes the frames.

Decode, flow and dream (no encode) for lanes = 1, 2, 4, 8 and each precision the device runs,
side by side on the same clip: lane *i* dreams its own range with its own seed. Beside each
figure, how far lane 0's frames are from the fp32 one-lane frames (mean |Δ| in levels of 255), how
strong the dream is against them (mean |dream − input|, as a ratio) and the peak device memory
per lane: lanes and precision may change detail, never strength.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..compute import resolve_compute, resolve_device
from ..config import DreamConfig, RenderConfig
from ..dream import Dreamer, FrameDreamer
from ..frames.pipeline import DreamedFrames
from ..images import array_to_tensor
from ..models import load_model
from ..samples import pan_frames, write_clip
from ..video import VideoIndex, probe, read_frames
from .base import BenchRun, Echo, Figures, Panel, Parts, no_panels, recorded
from .common import device_name, in_lanes, precisions

__all__ = ["LaneRow", "LanesBenchmark", "bench_lanes"]


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
    peak_mib_per_lane: float | None = None  # peak device memory of the run / lanes (CUDA only)
    warmup_seconds: float | None = None  # compiled settings: the untimed first run at this lane count


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


def bench_lanes(
    *,
    device: str | None = None,
    width: int | None = None,
    height: int | None = None,
    frames_per_lane: int = 6,
    lanes: tuple[int, ...] = (1, 2, 4, 8),
    compile: bool = False,
    settings: Sequence[DreamConfig] | None = None,
) -> LanesBenchmark:
    """Frames/s of one device for each lane count and precision, measured in one run.

    Sizes default to 1280×720 on CUDA and 160×90 on CPU. CPU runs with one torch thread, as one
    CPU worker does. The settings default to every precision the device runs plus the other
    memory layout; ``compile`` adds ``torch.compile`` rows, whose first run at each lane count
    (compiling for that batch) is timed apart as ``warmup_seconds``. The first setting and lane
    count are the reference of the Δ, strength and speedup columns.
    """
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    width, height = width or (1280 if cuda else 160), height or (720 if cuda else 90)
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
            clip = write_clip(Path(tmp) / "clip.mp4", pan_frames(max(lanes) * frames_per_lane, width, height), crf=0)
            runner = _Runner(probe(clip), frames_per_lane, dev)
            settings = _settings(dev, settings, compile)
            notes = (
                []
                if cuda
                else [f"bf16 and fp16 run on CUDA only; on {dev.type} they fall back to fp32 (the fp32 rows)"]
            )
            # a model per setting: a layout conversion must not reach another setting's modules
            dreamers = [Dreamer(dream, device=dev, model=load_model(dream.model, dream.weights)) for dream in settings]
            measured, warmups = _measure(runner, dreamers, lanes, notes)
            if (0, lanes[0]) not in measured:
                raise torch.OutOfMemoryError(
                    f"the reference row ({settings[0].precision}, {lanes[0]} lanes) does not fit"
                )
            reference = measured[0, lanes[0]][1]
            rows = _rows(runner, dreamers, lanes, measured, warmups, reference)
            model = load_model(DreamConfig().model, DreamConfig().weights)
            _, other, _ = runner.run(Dreamer(DreamConfig(), device=dev, model=model), 1, seed=1000)
            seed_diff = _mean_diff(other, reference)
    finally:
        torch.set_num_threads(threads)
    return LanesBenchmark(
        device=device_name(dev),
        width=width,
        height=height,
        frames_per_lane=frames_per_lane,
        torch_threads=torch.get_num_threads() if cuda else 1,
        rows=tuple(rows),
        notes=tuple(notes),
        other_seed_diff=seed_diff,
    )


_Measured = tuple[float, list, "float | None"]  # seconds, lane 0's frames, peak device MiB per lane


class _Runner:
    """Renders ``count`` lanes of ``frames_per_lane`` carried frames each, lane k on its own range."""

    def __init__(self, index: VideoIndex, frames_per_lane: int, dev: torch.device) -> None:
        self.index, self.frames_per_lane, self.dev = index, frames_per_lane, dev
        # batched throughput of carried frames: keyframe settling would only add steps to each
        # lane's first frame (and the figures stay comparable with runs from before it existed)
        self.config = RenderConfig(keyframe_settle=0)
        self.source = list(read_frames(index.path, 0, frames_per_lane, index=index))

    def run(self, dreamer: Dreamer, count: int, seed: int = 0) -> _Measured:
        n, cuda = self.frames_per_lane, self.dev.type == "cuda"
        ranges = [(k * n, (k + 1) * n) for k in range(count)]
        if cuda:
            torch.cuda.synchronize(self.dev)
            torch.cuda.reset_peak_memory_stats(self.dev)

        def one(k: int, frame_dreamer: FrameDreamer) -> list[np.ndarray]:
            gen = torch.Generator().manual_seed(seed + k)
            return [
                rgb
                for _, rgb, _ in DreamedFrames(
                    self.index,
                    *ranges[k],
                    self.config,
                    frame_dreamer,
                    generator=gen,
                )
            ]

        t0 = time.perf_counter()
        out, _ = in_lanes(dreamer, count, one)
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(self.dev) / 2**20 / count if cuda else None
        return seconds, out[0], peak


def _settings(dev: torch.device, settings: Sequence[DreamConfig] | None, compile: bool) -> list[DreamConfig]:
    if settings is None:
        settings = [DreamConfig(precision=p) for p in precisions(dev)]
        # the other memory layout at the default precision: what it adds, and (same arithmetic,
        # other kernels) how far rounding alone moves a dream
        settings.append(DreamConfig(channels_last=not resolve_compute(DreamConfig(), dev).channels_last))
    return [*settings, *([DreamConfig(compile=True)] if compile else [])]


def _measure(
    runner: _Runner,
    dreamers: list[Dreamer],
    lanes: tuple[int, ...],
    notes: list[str],
) -> tuple[dict[tuple[int, int], _Measured], dict[tuple[int, int], float]]:
    """Every (setting, lane count) that fits, and the warm-up (compile) seconds apart."""
    warmups: dict[tuple[int, int], float] = {}
    for k, dreamer in enumerate(dreamers):
        warmups[k, lanes[0]] = runner.run(dreamer, lanes[0])[0]  # warm-up: kernels, allocator, compilation
        notes.extend(n for n in dreamer.notes if n not in notes)
    measured: dict[tuple[int, int], _Measured] = {}
    for count in lanes:  # settings interleaved per lane count, so drift in load hits all alike
        for k, dreamer in enumerate(dreamers):
            try:
                if dreamer.compute.compile and count != lanes[0]:
                    # a new batch size recompiles: time that apart from the steady state
                    warmups[k, count] = runner.run(dreamer, count)[0]
                measured[k, count] = runner.run(dreamer, count)
            except torch.OutOfMemoryError:  # a row this card cannot hold is a figure too
                notes.append(f"{dreamer.compute.describe()}, {count} lanes: out of GPU memory")
                torch.cuda.empty_cache()
    return measured, warmups


def _levels(frame: np.ndarray) -> np.ndarray:
    """A frame in levels of 255: dreamed frames are float (1.0 full scale), decoded ones uint8."""
    return frame * 255.0 if frame.dtype.kind == "f" else frame.astype(np.float64)


def _mean_diff(frames: list, other: list) -> float:
    return float(np.mean([np.abs(_levels(a) - _levels(b)).mean() for a, b in zip(frames, other, strict=True)]))


def _rows(
    runner: _Runner,
    dreamers: list[Dreamer],
    lanes: tuple[int, ...],
    measured: dict[tuple[int, int], _Measured],
    warmups: dict[tuple[int, int], float],
    reference: list,
) -> list[LaneRow]:
    """One row per measured (setting, lane count), against the first setting at the first count."""
    probe_frame = dreamers[0].model.preprocess.normalize(array_to_tensor(runner.source[0])).to(runner.dev)
    grads = [d.gradient(probe_frame).flatten().double().cpu() for d in dreamers]
    cosines = [float(torch.nn.functional.cosine_similarity(g, grads[0], dim=0)) for g in grads]
    n = runner.frames_per_lane
    base_fps = lanes[0] * n / measured[0, lanes[0]][0]
    base_strength = _mean_diff(reference, runner.source)
    rows = []
    for k, dreamer in enumerate(dreamers):
        for count in lanes:
            if (k, count) not in measured:
                continue
            seconds, frames, peak = measured[k, count]
            fps = count * n / seconds
            rows.append(
                LaneRow(
                    setting=dreamer.compute.describe(),
                    lanes=count,
                    seconds=seconds,
                    frames_per_s=fps,
                    speedup=fps / base_fps,
                    mean_diff=_mean_diff(frames, reference),
                    strength_ratio=_mean_diff(frames, runner.source) / base_strength,
                    grad_cosine=cosines[k],
                    peak_mib_per_lane=peak,
                    warmup_seconds=warmups.get((k, count)) if dreamer.compute.compile else None,
                )
            )
    return rows


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_lanes(run: BenchRun, compile_only: bool = False) -> Any:
    """The lanes section; or, ``compile_only``, torch.compile against eager at the default
    precision with one lane and the most lanes (the compile section)."""
    (w, h), plan = run.frame_size, run.plan
    return bench_lanes(
        device=plan.device,
        width=w,
        height=h,
        frames_per_lane=3 if plan.quick else 6,
        lanes=(1, max(plan.lanes)) if compile_only else plan.lanes,
        compile=compile_only or plan.compile,
        settings=[DreamConfig()] if compile_only else None,
    )


def _show_lanes(lb: Mapping[str, Any], echo: Echo) -> None:
    cpu = lb["device"].startswith("cpu")
    echo(
        f"lanes × precision, {lb['width']}×{lb['height']}, {lb['frames_per_lane']} frames per lane, {lb['device']}"
        + (", 1 torch thread (as a CPU worker)" if cpu else "")
        + ":"
    )
    echo(
        f"  {'network':<28}{'lanes':>5}{'frames/s':>10}{'speedup':>9}{'Δ levels':>10}{'strength':>10}"
        f"{'grad cos':>10}{'MiB/lane':>10}"
    )
    for r in lb["rows"]:
        peak = "" if r["peak_mib_per_lane"] is None else f"{r['peak_mib_per_lane']:>10.0f}"
        warm = "" if r.get("warmup_seconds") is None else f"   (first run {r['warmup_seconds']:.1f} s)"
        echo(
            f"  {r['setting']:<28}{r['lanes']:>5}{r['frames_per_s']:>10.2f}{r['speedup']:>8.2f}×"
            f"{r['mean_diff']:>10.2f}{r['strength_ratio']:>10.3f}{r['grad_cosine']:>10.4f}{peak}{warm}"
        )
    echo(
        f"  Δ levels: mean |Δ| of lane 0's frames from the first row's; another seed gives "
        f"{lb['other_seed_diff']:.2f}. grad cos: one frame's image gradient against the first row's"
    )
    for note in lb["notes"]:
        echo(f"  note: {note}")


def _panels_lanes(figures: Figures) -> list[Panel]:
    lanes_rows = list(figures.get("lanes", {}).get("rows", []))
    if not lanes_rows:
        return []

    def lanes_panel(ax: Any) -> None:
        for setting in dict.fromkeys(r["setting"] for r in lanes_rows):
            rows = [r for r in lanes_rows if r["setting"] == setting]
            ax.plot([r["lanes"] for r in rows], [r["frames_per_s"] for r in rows], marker="o", label=setting)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lanes", fontsize=8)
        ax.set_title(f"frames/s, {figures['lanes']['width']}×{figures['lanes']['height']}", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)

    return [lanes_panel]


PARTS = {
    "lanes": Parts(recorded("lanes", _run_lanes), _show_lanes, _panels_lanes),
    "compile": Parts(recorded("compile", lambda run: _run_lanes(run, compile_only=True)), _show_lanes, no_panels),
}
