"""Seams and stitching: crossfade each overlap window, then join every piece in frame order.

A chunk writes its lead-in (window k, side b) and its tail (window k+1, side a) losslessly, so
the crossfade starts from the dreamed pixels, not from a lossy copy. The crossfade weight ramps
toward the later chunk, ``w_j = (j + 1) / (n + 1)`` for window frame ``j`` of ``n``, so neither
chunk's last or first frame is used unmixed at the seam, and it blends the two dreams' residuals
at equal strength (a plain blend of two different dreams would dip). The stitched output is a remux of
middles and windows in order (no re-encode), with the input's timestamps and audio.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import storage
from ..chunking import Chunk
from ..config import Encoding
from ..errors import VideoError
from ..video import VideoIndex, concat, format_for, is_pattern, open_writer, read_frames
from ..video.imageseq import numbered
from .pieces import ChunkFiles, Layout

__all__ = ["crossfade", "crossfade_weights", "mix_residuals", "stitch"]


def crossfade_weights(n: int) -> np.ndarray:
    """Weight of the later chunk for each of ``n`` window frames: strictly inside (0, 1), rising."""
    return np.arange(1, n + 1, dtype=np.float32) / (n + 1)


def mix_residuals(source: np.ndarray, a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """One window frame: the two dreams' residuals blended with weight ``w`` toward ``b``, at strength.

    A plain blend of two different dreams is weaker than either (their patterns partly cancel;
    docs/benchmarks/cpu.md says how much). So the blended residual is rescaled to the
    interpolated strength of the two, ``(1 − w)·|a − source| + w·|b − source|``, and added to the
    source frame.
    """
    src = source.astype(np.float32)
    ra, rb = a.astype(np.float32) - src, b.astype(np.float32) - src
    mixed = (1.0 - w) * ra + w * rb
    want = (1.0 - w) * np.abs(ra).mean() + w * np.abs(rb).mean()
    have = np.abs(mixed).mean()
    if have > 1e-6:
        mixed *= want / have
    return src + mixed  # float32, 1.0 full scale when the frames are; the writer quantizes it


def crossfade(
    side_a: str,
    side_b: str,
    output: str,
    encoding: Encoding,
    index: VideoIndex,
    frames: int,
    first: int | None = None,
) -> str:
    """Blend the earlier chunk's ``frames`` window frames (``side_a``) into the later chunk's (``side_b``).

    With ``first`` (the window's first frame in the input) the dreams' residuals are blended at
    equal strength (:func:`mix_residuals`); without it, the pixels are. Streams the sides (and the
    input) frame by frame: memory holds one triple, whatever the window's length or the frame
    size. Each side must hold exactly ``frames`` frames. Sides and output are segment files, or
    printf patterns of numbered images (an image-sequence job) whose window starts at ``first``.
    """
    if not is_pattern(output):
        storage.makedirs(storage.parent(output))
    weights = crossfade_weights(frames)
    start = first or 0
    sources = (
        read_frames(index.path, first, first + frames, index=index, dtype=np.float32) if first is not None else None
    )
    with open_writer(output, index, format_for(encoding, index), start) as writer:
        pairs = zip(_side(side_a, index, start, frames), _side(side_b, index, start, frames))  # stops at the shorter
        n = 0
        for n, (a, b) in enumerate(pairs, start=1):
            if n > frames:
                break
            w = float(weights[n - 1])
            if sources is not None:
                writer.write(mix_residuals(next(sources), a, b, w))
            else:
                writer.write((1.0 - w) * a + w * b)
        if n != frames or writer.frames != frames:
            raise VideoError(f"seam sides {side_a} and {side_b} do not both hold the window's {frames} frames")
    return output


def _side(path: str, index: VideoIndex, start: int, frames: int) -> Iterator[np.ndarray]:
    """One side's frames as float32: a lossless segment file, or numbered images from ``start``."""
    if not is_pattern(path):
        return read_frames(path, dtype=np.float32)
    return read_frames(path, start, start + frames, index=numbered(index, path), dtype=np.float32)


def stitch(
    chunks: Sequence[Chunk],
    workdir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    index: VideoIndex,
    *,
    keep_source_time: bool = False,
    layout: Layout = Layout(),
    check: Callable[[], None] = lambda: None,
    before_publish: Callable[[], None] = lambda: None,
) -> Path | str:
    """Join windows and middles in frame order into ``output`` (temp name, then rename); ``check``
    and ``before_publish`` are :func:`~distdream.video.concat`'s.

    ``index`` is the input's index; when the chunks cover only part of it (a frame range), the
    output gets that part's frames and the audio of that time span, starting at 0 (or at the
    source's timestamps with ``keep_source_time``).
    """
    if layout.frames_to is not None:  # an image sequence: every frame is already at its name
        return output if isinstance(output, (Path, str)) else Path(output)
    a, b = chunks[0].start, chunks[-1].end
    pieces: list[str] = []
    for chunk in chunks:
        files = ChunkFiles(workdir, chunk, layout)
        if chunk.lead_in:
            pieces.append(files.window)
        pieces.append(files.middle)
    partial = (a, b) != (0, index.frame_count)
    return concat(
        pieces,
        output,
        index.slice(a, b) if partial else index,
        trim_audio=partial,
        rebase=partial and not keep_source_time,
        check=check,
        before_publish=before_publish,
    )
