"""Exact frame-range reads (videos and image sequences): seek to the keyframe at or before
``start``, decode forward, identify frames by timestamp (so the result equals a sequential
decode), stop at ``end``; frames upright."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import av
import numpy as np

from ..errors import VideoError
from .colour import frame_to_rgb
from .imageseq import sequence_frames
from .index import open_input, probe
from .record import VideoIndex


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(array, k=rotation // 90)) if rotation else array


def read_frames(
    path: str | os.PathLike[str],
    start: int = 0,
    end: int | None = None,
    *,
    index: VideoIndex | None = None,
    dtype: Any = np.uint8,
) -> Iterator[np.ndarray]:
    """Yield frames ``[start, end)`` of ``path`` as upright (H, W, 3) R'G'B' arrays.

    ``dtype`` ``np.uint8`` (the default) gives 8-bit values; ``np.float32`` gives the exact
    conversion (:func:`~distdream.video.colour.frame_to_rgb`: 1.0 full scale, unclamped, at the
    input's full precision), which is what the pipeline dreams and re-encodes. Either way the
    conversion uses the input's own matrix and range. Seeks to the keyframe at or before
    ``start`` and decodes forward; never decodes past ``end``. Pass the ``index`` from
    :func:`probe` to skip re-indexing (workers get it from the plan); an image sequence needs it.
    A decoding failure raises :class:`VideoError` naming the frame it happened at.
    """
    index = index or probe(path)
    end = index.frame_count if end is None else end
    if not 0 <= start <= end <= index.frame_count:
        raise VideoError(f"frame range [{start}, {end}) is outside {path}, which has {index.frame_count} frames")
    if start == end:
        return
    colour = index.working_colour
    colour.check(str(path))

    def convert(frame: Any) -> np.ndarray:
        rgb = frame_to_rgb(frame, colour)
        if np.dtype(dtype) == np.uint8:
            rgb = np.clip(np.rint(rgb * np.float32(255.0)), 0, 255).astype(np.uint8)
        return _upright(rgb, index.rotation)

    if index.is_sequence:
        yield from (convert(frame) for frame in sequence_frames(index, start, end))
        return
    with open_input(path) as container:
        stream = container.streams[index.stream_index]
        stream.codec_context.thread_type = "AUTO"  # frame + slice threads: decode is the reader's cost
        yield from (convert(frame) for frame in _decode_range(container, stream, index, start, end, path))


def _decode_range(container: Any, stream: Any, index: VideoIndex, start: int, end: int, path: Any) -> Iterator[Any]:
    key = index.keyframe_at_or_before(start)
    for attempt in itertools.count():
        # Seeking lands on a keyframe at or before the target timestamp in every demuxer we know;
        # if one lands after it (a sparse or odd index), retry from an earlier keyframe, then 0.
        seek_to = key if attempt == 0 else index.keyframe_at_or_before(max(key - 1, 0)) if attempt == 1 else 0
        key = seek_to
        container.seek(int(index.pts[seek_to]), stream=stream, backward=True, any_frame=False)
        stream.codec_context.flush_buffers()
        frames = _frames_from(container, stream, index, start, end, path)
        first = next(frames, None)
        if first is None:
            raise VideoError(f"decoding {path} produced no frame at or after frame {start}")
        if first is _OVERSHOT:
            if seek_to == 0 and attempt >= 2:
                raise VideoError(f"cannot reach frame {start} of {path}: the decoder never outputs it")
            continue
        yield first
        yield from frames
        return


_OVERSHOT = object()  # sentinel: the first decoded frame lies after the requested start


def _frames_from(container: Any, stream: Any, index: VideoIndex, start: int, end: int, path: Any) -> Iterator[Any]:
    target = int(index.pts[start])
    expected = start
    decoded = container.decode(stream)
    while expected < end:
        try:
            frame = next(decoded, None)
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"decoding {path} failed at frame {expected} ({exc.strerror}); the file is damaged there"
            ) from None
        if frame is None:
            raise VideoError(
                f"{path} ended at frame {expected}, but it has {index.frame_count} frames by its index "
                "(truncated or damaged file?)"
            )
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is None or ts < target:
            continue  # before the range (decoded from the keyframe), or a frame with no timestamp
        if expected == start and ts > target:
            yield _OVERSHOT
            return
        if int(index.pts[expected]) < ts:  # the decoder skipped a frame it could not conceal
            raise VideoError(f"decoding {path} failed at frame {expected}: the decoder dropped it (damaged data)")
        if int(index.pts[expected]) != ts:
            continue  # a duplicate timestamp, already delivered
        yield frame
        expected += 1
