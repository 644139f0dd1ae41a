"""The per-chunk pipeline: decode a frame range → flow (ahead, in a thread) → dream → encode.

A plain function with no Ray in it: the engine (``distdream render``) runs it for each chunk, in
its Ray workers or on threads of the command's own process. Memory is bounded by a window, not
by the range.

Three stages overlap, each on its own thread: :class:`~distdream.frames.reader.MotionReader` decodes
frames and computes their flow at most ``lookahead`` frames ahead, this module carries the dream
onto each frame and dreams it (:func:`~distdream.frames.sequence.dream_sequence`; only the previous
frame's residual is kept), and :class:`~distdream.frames.encode.Encoder` encodes a dreamed frame while
the next one is dreamed. Each stage's time and the time the dreamer spends waiting on the others
are reported in :class:`ChunkStats`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..ascent import resize
from ..config import RenderConfig
from ..dream import Dreamer, FrameDreamer
from ..errors import JobError
from ..images import array_to_tensor, load_image, tensor_to_frame
from ..video import VideoIndex, is_pattern
from .encode import Encoder, Span
from .memory import Memory
from .reader import MotionReader
from .relay import relayed as relayed_state
from .sequence import Level, ShotState, dream_sequence
from .steps import reader_steps, shot_settings

__all__ = [
    "Carried",
    "ChunkStats",
    "DreamedFrames",
    "RangeResult",
    "carry_device",
    "dream_range",
    "dream_segment",
]


@dataclass(frozen=True)
class ChunkStats:
    """A small record of what one range cost (what a worker reports back)."""

    frames: int
    keyframes: int  # first frame and frames after scene cuts
    keyframe_seconds: float  # dreaming keyframes
    frame_seconds: float  # dreaming flow-carried frames (warping the carried dream included)
    flow_wait_seconds: float  # time the dreamer waited for decoded frames and their flow
    encode_seconds: float  # the encoder thread's busy time (overlaps dreaming)
    wall_seconds: float
    decode_seconds: float = 0.0  # the reader thread's decoding time (overlaps dreaming)
    flow_seconds: float = 0.0  # the reader thread's flow, occlusion and cut tests (overlaps dreaming)
    encode_wait_seconds: float = 0.0  # time the dreamer waited for the encoder to take a frame

    @property
    def wait_share(self) -> float:
        """Share of the wall time the dreamer waited on decode, flow or encode."""
        waited = self.flow_wait_seconds + self.encode_wait_seconds
        return waited / self.wall_seconds if self.wall_seconds else 0.0


@dataclass(frozen=True)
class Carried:
    """What a chunk hands the next chunk of its shot (a handoff): the last frame's dream residual,
    the jitter generator's state, the shot's held level and what it remembers where the scene
    held still. With them the next chunk dreams exactly what one chunk dreaming the whole shot
    would have."""

    residual: torch.Tensor  # (1, 3, H, W) float32: dream − frame of the last frame
    generator: torch.Tensor  # torch.Generator.get_state()
    level: torch.Tensor | None = None  # sequence.Level.to_tensor() of the shot; None: not held
    memory: Mapping[str, np.ndarray] | None = None  # memory.Memory.to_arrays() of the shot; None: none kept

    def to_bytes(self) -> bytes:
        import io

        buffer = io.BytesIO()
        arrays = {"residual": self.residual.numpy(), "generator": self.generator.numpy()}
        if self.level is not None:
            arrays["level"] = self.level.numpy()
        for key, value in (self.memory or {}).items():
            arrays[f"memory.{key}"] = value
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **arrays as allow_pickle
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Carried:
        import io

        with np.load(io.BytesIO(data)) as arrays:
            memory = {k.removeprefix("memory."): arrays[k].copy() for k in arrays.files if k.startswith("memory.")}
            residual, generator, level = (
                torch.from_numpy(arrays[k].copy()) if k in arrays else None for k in ("residual", "generator", "level")
            )
        if residual is None or generator is None:
            raise JobError("a handoff record lacks its residual or generator state: redo the chunk that wrote it")
        return cls(residual, generator, level, memory or None)


def carry_device(config: RenderConfig, dreamer: FrameDreamer) -> torch.device | None:
    """Where a range's carry runs: the dreamer's device when ``carry_on_device`` says so (by
    default on CUDA), else ``None`` (the host, with OpenCV)."""
    device = getattr(dreamer, "device", torch.device("cpu"))
    on = device.type == "cuda" if config.carry_on_device is None else config.carry_on_device
    return device if on else None


def _start_image(config: RenderConfig, index: VideoIndex) -> torch.Tensor | None:
    """The predefined start image at the video's size, if there is one."""
    if config.dream.predefined_start is None:
        return None
    image = load_image(config.dream.predefined_start, what="predefined_start")
    return resize(array_to_tensor(image), (index.height, index.width))


class DreamedFrames:
    """The dreamed frames ``[start, end)`` of a video, in order: iterate for ``(frame index,
    dreamed RGB, was keyframe)``; the RGB is float32 (H, W, 3), 1.0 full scale, at the input's
    precision (writers quantize it).

    ``carried`` continues the sequence a previous range handed off (frame ``start - 1`` is decoded
    for its flow, not dreamed). Once the frames are exhausted, :attr:`carried_out` holds this
    range's own state for a next range to continue from, and :attr:`times` the seconds spent:
    ``flow_wait``, ``keyframe`` and ``frame`` in the dreaming thread, ``decode`` and ``flow`` in
    the reader's. ``config`` must be validated (a job validates it once, before its first chunk).
    """

    def __init__(
        self,
        index: VideoIndex,
        start: int,
        end: int,
        config: RenderConfig,
        dreamer: FrameDreamer,
        *,
        generator: torch.Generator,
        lookahead: int = 8,
        carried: Carried | None = None,
        relay: Sequence[tuple[int, int]] = (),
    ) -> None:
        if carried is not None and start < 1:
            raise ValueError("a handoff cannot continue into frame 0")
        self.index, self.start, self.end, self.config, self.dreamer = index, start, end, config, dreamer
        self.generator, self.lookahead, self.carried, self.relay = generator, lookahead, carried, relay
        self.times = dict.fromkeys(("flow_wait", "keyframe", "frame", "decode", "flow"), 0.0)
        self.carried_out: Carried | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        carried, times, generator = self.carried, self.times, self.generator
        device = carry_device(self.config, self.dreamer)
        state = ShotState()
        if carried is not None:
            generator.set_state(carried.generator)
            residual = carried.residual if device is None else carried.residual.to(device)
            level = None if carried.level is None else Level.from_tensor(carried.level)
            memory = None if carried.memory is None else Memory.from_arrays(carried.memory, device)
            state = ShotState(residual, level, memory)
        # from the frame before when continuing: its flow carries the dream onto frame ``start``
        first = self.start - 1 if carried is not None else self.start
        reader = MotionReader(self.index, first, self.end, self.config.flow, self.lookahead, times)
        order: list[int] = []  # the frame index of each step, in order
        start_image = _start_image(self.config, self.index)
        if start_image is not None and device is not None:
            start_image = start_image.to(device)
        first_motion = None
        try:
            if self.relay and carried is None:
                t0 = time.perf_counter()
                relayed = relayed_state(
                    self.index, self.relay, self.start, self.config, self.dreamer, device, start_image
                )
                if relayed is not None:
                    state, first_motion = relayed
                times["keyframe"] += time.perf_counter() - t0  # the relay stands in for a keyframe
            steps = reader_steps(reader, self.start, self.config, order, device, first_motion)
            sequence = dream_sequence(
                self.dreamer, steps, shot_settings(self.config), generator=generator, start=start_image, state=state
            )
            t0, waited = time.perf_counter(), times["flow_wait"]
            for k, (dreamed, keyframe) in enumerate(sequence):
                # the interval includes waiting for this frame's flow, which is counted on its own
                times["keyframe" if keyframe else "frame"] += time.perf_counter() - t0 - (times["flow_wait"] - waited)
                yield order[k], tensor_to_frame(dreamed), keyframe
                t0, waited = time.perf_counter(), times["flow_wait"]
            if state.residual is not None:
                held = None if state.level is None else state.level.to_tensor()
                remembered = None if state.memory is None else state.memory.to_arrays()
                self.carried_out = Carried(
                    state.residual.detach().cpu().contiguous(), generator.get_state(), held, remembered
                )
        finally:
            reader.close()


@dataclass(frozen=True)
class RangeResult:
    """What :func:`dream_range` did: its figures, and the state a next range continues from."""

    stats: ChunkStats
    carried: Carried | None


def _check_tiles(spans: Sequence[Span], first: int, end: int) -> None:
    if (
        not spans
        or spans[0].start != first
        or spans[-1].end != end
        or any(x.end != y.start for x, y in zip(spans, spans[1:]))
    ):
        raise ValueError(f"spans {[(sp.start, sp.end) for sp in spans]} do not tile frames [{first}, {end})")


def dream_range(
    index: VideoIndex,
    first: int,
    end: int,
    spans: Sequence[Span],
    config: RenderConfig,
    *,
    dreamer: FrameDreamer | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
    carried: Carried | None = None,
    relay: Sequence[tuple[int, int]] = (),
) -> RangeResult:
    """Dream frames ``[first, end)`` (keyframe at ``first``, unless ``carried`` continues a
    handoff: see :class:`DreamedFrames`) and write them into ``spans``.

    The spans must tile ``[first, end)`` in order; each span's file is opened at its first frame
    and appears (renamed from a temp name) when its last frame is written. ``on_frame(i)`` runs
    after frame ``i`` is dreamed, before it is written (the engine uses it for fault injection in
    tests). ``dreamer`` may be a lane of a :class:`~distdream.frames.lanes.LaneBatcher`, dreaming
    alongside other ranges. ``config`` must be validated (a job validates it once, before its
    first chunk; :func:`dream_segment` validates it itself).
    """
    _check_tiles(spans, first, end)
    dreamer = dreamer or Dreamer(config.dream, device=device)
    generator = torch.Generator().manual_seed(config.dream.seed if seed is None else seed)
    keyframes = 0
    t_start = time.perf_counter()
    encoder = Encoder(index, spans)
    frames = DreamedFrames(index, first, end, config, dreamer, generator=generator, carried=carried, relay=relay)
    try:
        for i, rgb, keyframe in frames:
            if on_frame is not None:
                on_frame(i)
            encoder.put(rgb)
            keyframes += keyframe
            if progress is not None:
                progress(1)
        encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    times = frames.times
    stats = ChunkStats(
        frames=end - first,
        keyframes=keyframes,
        keyframe_seconds=times["keyframe"],
        frame_seconds=times["frame"],
        flow_wait_seconds=times["flow_wait"],
        encode_seconds=encoder.busy_seconds,
        wall_seconds=time.perf_counter() - t_start,
        decode_seconds=times["decode"],
        flow_seconds=times["flow"],
        encode_wait_seconds=encoder.wait_seconds,
    )
    return RangeResult(stats, frames.carried_out)


def dream_segment(
    index: VideoIndex,
    start: int,
    end: int,
    segment: str | os.PathLike[str],
    config: RenderConfig,
    *,
    dreamer: FrameDreamer | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChunkStats:
    """Dream frames ``[start, end)`` of the indexed video into one H.264 segment at ``segment``.

    The segment appears only when complete (temp name + rename). ``seed`` defaults to the dream
    config's; the same range, settings and seed give the same pixels.
    """
    config = config.validate()
    span = Span(start, end, str(segment) if is_pattern(segment) else Path(segment), config.encoding)
    return dream_range(
        index, start, end, [span], config, dreamer=dreamer, device=device, seed=seed, progress=progress
    ).stats
