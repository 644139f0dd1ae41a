"""One worker's render end to end, in this process (no Ray), and the out-of-memory path on a card.

:func:`bench_render` times each stage of the per-chunk pipeline (decode, flow, dream, encode) and
the share of the time the network waited on the others; :func:`bench_halving` caps a CUDA card's
memory below what the lanes need and shows the batches halving while the frames stay the same.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..compute import resolve_device
from ..config import RenderConfig
from ..dream import Dreamer, FrameDreamer
from ..frames.encode import Span
from ..frames.lanes import LaneBatcher
from ..frames.pipeline import ChunkStats, carry_device, dream_range
from ..images import array_to_tensor
from ..samples import pan_frames, write_clip
from ..video import probe, read_frames
from .base import CARRY, BenchRun, Echo, Figures, Panel, Parts, no_panels, recorded, row
from .common import device_name, in_lanes

__all__ = ["HalvingBenchmark", "RenderBenchmark", "bench_halving", "bench_render"]


@dataclass(frozen=True)
class RenderBenchmark:
    """One worker rendering a clip end to end in this process: decode, flow, dream, encode; no Ray.

    With ``lanes`` > 1 the clip is split into that many ranges dreamed side by side through one
    :class:`~distdream.frames.lanes.LaneBatcher`, as an engine worker with that many lanes does. The
    stage times are summed over lanes; decode, flow and encode run on threads of their own and
    overlap the dream. ``wait_share`` is the share of the wall time the network sat idle: with one
    lane, the dreamer waiting for a decoded frame and its flow or for the encoder to take a
    frame; with lanes, the batching thread waiting for every lane's next frame (which includes
    each lane's own carry warp and host-side conversions).
    """

    device: str
    setting: str  # the network as run: precision, layout
    carry: str  # where the carried dream was warped, masked and held: "device" or "host"
    width: int
    height: int
    frames: int
    lanes: int
    seconds: float
    frames_per_s: float
    decode_seconds: float
    flow_seconds: float
    dream_seconds: float  # the network's busy time
    encode_seconds: float
    wait_share: float
    peak_mib: float | None  # peak device memory (CUDA only)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bench_render(
    *,
    width: int,
    height: int,
    frames: int,
    lanes: int = 1,
    device: str | None = None,
    config: RenderConfig | None = None,
) -> RenderBenchmark:
    """Render ``frames`` frames of a pan made on the fly at ``width``×``height``, timing every stage."""
    if lanes < 1 or frames < lanes:
        raise ValueError(f"need at least one frame per lane, got {frames} frames for {lanes} lanes")
    config = (config or RenderConfig()).validate()
    dev = resolve_device(device)
    encoding = config.encoding
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip.mp4", pan_frames(frames, width, height), crf=12)
        index = probe(clip)
        dreamer = Dreamer(config.dream, device=dev)
        _warm_up(dreamer, array_to_tensor(next(read_frames(clip, 0, 1, index=index))), lanes)
        bounds = [round(k * frames / lanes) for k in range(lanes + 1)]
        spans = [Span(a, b, d / f"{k:05d}.mp4", encoding) for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]
        threads_before = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(1)  # as one CPU worker of the engine runs
        t0 = time.perf_counter()

        def one(k: int, lane: FrameDreamer) -> ChunkStats:
            if lanes > 1:
                torch.set_num_threads(1)  # as an engine worker's lane threads run
            span = spans[k]
            return dream_range(index, span.start, span.end, [span], config, dreamer=lane, seed=k).stats

        try:
            stats, batcher = in_lanes(dreamer, lanes, one)
        finally:
            torch.set_num_threads(threads_before)
        wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    busy = batcher.busy_seconds if batcher is not None else stats[0].keyframe_seconds + stats[0].frame_seconds
    return RenderBenchmark(
        device=device_name(dev),
        setting=dreamer.compute.describe(),
        carry="host" if carry_device(config, dreamer) is None else "device",
        width=width,
        height=height,
        frames=frames,
        lanes=lanes,
        seconds=wall,
        frames_per_s=frames / wall,
        decode_seconds=sum(s.decode_seconds for s in stats),
        flow_seconds=sum(s.flow_seconds for s in stats),
        dream_seconds=busy,
        encode_seconds=sum(s.encode_seconds for s in stats),
        wait_share=stats[0].wait_share if batcher is None else max(0.0, 1.0 - busy / wall),
        peak_mib=peak,
    )


def _warm_up(dreamer: Dreamer, first: torch.Tensor, lanes: int) -> None:
    """One step at this size and batch: kernels, cuDNN's choices, the allocator; then the
    device's peak memory is counted afresh."""
    dreamer.dream_batch(
        [first] * lanes,
        generators=[torch.Generator().manual_seed(k) for k in range(lanes)],
        num_iterations=[1] * lanes,
    )
    if dreamer.device.type == "cuda":
        torch.cuda.synchronize(dreamer.device)
        torch.cuda.reset_peak_memory_stats(dreamer.device)


@dataclass(frozen=True)
class HalvingBenchmark:
    """Lanes on a card with too little memory for them: batches are halved, the render goes on."""

    device: str
    lanes: int
    memory_cap_mib: float  # what the process was allowed to allocate
    largest_batch: int  # the biggest batch that ran after the cap
    batches: int
    notes: tuple[str, ...]
    mean_diff: float  # lane 0's frames against the same lanes uncapped, mean |Δ| in levels of 255

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _dream_lanes(
    dreamer: Dreamer, frames: list[torch.Tensor], lanes: int, iterations: int
) -> tuple[LaneBatcher, list[torch.Tensor]]:
    """Dream ``frames`` split evenly over ``lanes`` lanes; the batcher and lane 0's dreams."""
    per_lane = len(frames) // lanes

    def one(k: int, lane: FrameDreamer) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(k)
        return [
            lane.dream(image, generator=gen, num_iterations=iterations)
            for image in frames[k * per_lane : (k + 1) * per_lane]
        ]

    out, batcher = in_lanes(dreamer, lanes, one)
    assert batcher is not None
    return batcher, out[0]


def bench_halving(
    *,
    width: int = 1280,
    height: int = 720,
    lanes: int = 8,
    frames_per_lane: int = 2,
    fits: float = 2.5,
    device: str | None = None,
) -> HalvingBenchmark:
    """Cap a CUDA device's memory to about ``fits`` lanes' worth and dream ``lanes`` lanes anyway.

    Shows the out-of-memory path on a real card: the first batch fails, is redone in halves with
    the generators rewound, and later batches stay small; the frames match the uncapped run up
    to batched-kernel rounding.
    """
    dev = resolve_device(device)
    if dev.type != "cuda":
        raise ValueError("the halving figure needs a CUDA device (it caps the device's memory)")
    if dev.index is None:  # the memory cap wants a device index
        dev = torch.device("cuda", torch.cuda.current_device())
    config = RenderConfig()
    frames = [array_to_tensor(f) for f in pan_frames(lanes * frames_per_lane, width, height)]

    dreamer = Dreamer(config.dream, device=dev)
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    _, reference = _dream_lanes(dreamer, frames, lanes, config.frame_steps)
    per_lane = torch.cuda.max_memory_allocated(dev) / lanes
    total = torch.cuda.get_device_properties(dev).total_memory
    cap = per_lane * fits
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(cap / total, dev)
    try:
        capped = Dreamer(config.dream, device=dev)
        batcher, frames_out = _dream_lanes(capped, frames, lanes, config.frame_steps)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        torch.cuda.empty_cache()
    diff = float(np.mean([(a - b).abs().mean().item() * 255 for a, b in zip(frames_out, reference, strict=True)]))
    return HalvingBenchmark(
        device=device_name(dev),
        lanes=lanes,
        memory_cap_mib=cap / 2**20,
        largest_batch=batcher.largest_batch,
        batches=batcher.batches,
        notes=tuple(capped.notes),
        mean_diff=diff,
    )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_render(run: BenchRun) -> None:
    plan = run.plan
    frames = plan.render_frames or (8 if plan.quick else 120 if run.cuda else 24)
    for width, height in plan.render_sizes or (run.frame_size,):
        for lanes in plan.render_lanes:
            for carry in plan.render_carry:
                if run.in_time(f"render {width}x{height} {lanes} lanes, carry {carry}"):
                    config = RenderConfig(carry_on_device=CARRY[carry])
                    if plan.quick:  # rough, in seconds
                        config = replace(config, keyframe_settle=0)
                    result = bench_render(
                        width=width, height=height, frames=frames, lanes=lanes, device=plan.device, config=config
                    )
                    run.record("render", result.to_dict(), many=True)


def _show_render(rows: list[Mapping[str, Any]], echo: Echo) -> None:
    for r in rows:
        echo(
            f"render in process (no Ray), {r['frames']} frames {r['width']}×{r['height']}, {r['lanes']} lane(s), "
            f"{r['device']}, {r['setting']}, carry on the {r.get('carry', 'host')}:"
        )
        row(echo, "end to end", f"{r['seconds']:8.1f} s   ({r['frames_per_s']:.2f} frames/s)")
        for stage in ("decode", "flow", "dream", "encode"):
            overlap = "" if stage == "dream" else " (own thread, overlaps the dream)"
            row(echo, f"  {stage}{overlap}", f"{r[stage + '_seconds']:8.2f} s")
        row(echo, "network idle, waiting on the other stages", f"{100 * r['wait_share']:8.1f} %")
        if r["peak_mib"] is not None:
            row(echo, "peak device memory", f"{r['peak_mib']:8.0f} MiB")


def _panels_render(figures: Figures) -> list[Panel]:
    render_rows = list(figures.get("render", []))
    if not render_rows:
        return []

    def render_panel(ax: Any) -> None:
        labels = [f"{r['width']}×{r['height']}\n{r['lanes']} lane(s)\n{r['frames_per_s']:.1f} f/s" for r in render_rows]
        left = [0.0] * len(render_rows)
        for stage, colour in (("dream", "#4c72b0"), ("decode", "#dd8452"), ("flow", "#55a868"), ("encode", "#c44e52")):
            per_frame = [1000 * r[f"{stage}_seconds"] / r["frames"] for r in render_rows]
            ax.barh(labels, per_frame, left=left, color=colour, label=stage)
            left = [a + b for a, b in zip(left, per_frame)]
        ax.set_xlabel("ms per frame (stages other than dream overlap it)", fontsize=8)
        ax.set_title("render stages", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)

    return [render_panel]


def _run_halving(run: BenchRun) -> Any:
    (w, h), plan = run.frame_size, run.plan
    try:
        return bench_halving(width=w, height=h, lanes=max(plan.lanes), device=plan.device)
    except torch.OutOfMemoryError as exc:  # even one lane did not fit under the cap
        run.figures["halving"] = {"error": str(exc).splitlines()[0]}
        run.echo(f"halving: one lane did not fit under the cap either ({run.figures['halving']['error']})")
        run.stored()
        return None


def _show_halving(h: Mapping[str, Any], echo: Echo) -> None:
    echo(f"out of memory at {h['lanes']} lanes, {h['device']}, memory capped at {h['memory_cap_mib']:.0f} MiB:")
    row(echo, "batches run / largest batch", f"{h['batches']:8d} / {h['largest_batch']}")
    row(echo, "lane 0 against uncapped, mean |Δ|", f"{h['mean_diff']:8.2f} levels")
    for note in h["notes"]:
        echo(f"  note: {note}")


PARTS = {
    "render": Parts(_run_render, _show_render, _panels_render),
    "halving": Parts(recorded("halving", _run_halving), _show_halving, no_panels),
}
