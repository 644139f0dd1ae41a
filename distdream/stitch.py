"""Seams and stitching: crossfade each overlap window, then join every piece in frame order.

A chunk writes its lead-in (window k, side b) and its tail (window k+1, side a) losslessly, so
the crossfade starts from the dreamed pixels, not from a lossy copy. The crossfade weight ramps
toward the later chunk, ``w_j = (j + 1) / (n + 1)`` for window frame ``j`` of ``n``, so neither
chunk's last or first frame is used unmixed at the seam. The stitched output is a remux of
middles and windows in order (no re-encode), with the input's timestamps and audio.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from . import storage
from .errors import VideoError
from .plan import Chunk
from .video import EncoderSettings, SegmentWriter, VideoIndex, concat, read_frames

__all__ = ["ChunkFiles", "crossfade", "crossfade_weights", "stitch"]

# Window sides are written losslessly and quickly: they are intermediates, read once.
LOSSLESS = EncoderSettings(crf=0, preset="ultrafast")


class ChunkFiles:
    """Where a chunk's pieces live inside a job's work directory (deterministic names)."""

    def __init__(self, workdir: str | os.PathLike[str], chunk: Chunk) -> None:
        # plain strings: the work directory may be a local path or an object-storage URI
        self.chunk = chunk
        self.lead = storage.join(workdir, "chunks", f"{chunk.name}.lead.mp4")  # [first, start), lossless
        self.middle = storage.join(workdir, "chunks", f"{chunk.name}.mid.mp4")  # [start, end - tail)
        self.tail = storage.join(workdir, "chunks", f"{chunk.name}.tail.mp4")  # [end - tail, end), lossless
        self.window = storage.join(workdir, "windows", f"{chunk.name}.mp4")  # crossfaded [first, start)

    def chunk_outputs(self) -> list[tuple[str, int]]:
        """The files a finished chunk must have, with their frame counts."""
        c = self.chunk
        out = [(self.middle, c.owned - c.tail)]
        if c.lead_in:
            out.insert(0, (self.lead, c.lead_in))
        if c.tail:
            out.append((self.tail, c.tail))
        return out


def crossfade_weights(n: int) -> np.ndarray:
    """Weight of the later chunk for each of ``n`` window frames: strictly inside (0, 1), rising."""
    return np.arange(1, n + 1, dtype=np.float32) / (n + 1)


def crossfade(side_a: str, side_b: str, output: str, settings: EncoderSettings, index: VideoIndex) -> str:
    """Blend the earlier chunk's window frames (``side_a``) into the later chunk's (``side_b``)."""
    frames_a, frames_b = list(read_frames(side_a)), list(read_frames(side_b))
    if len(frames_a) != len(frames_b) or not frames_a:
        raise VideoError(f"seam sides {side_a} ({len(frames_a)}) and {side_b} ({len(frames_b)}) differ in length")
    storage.makedirs(storage.parent(output))
    with SegmentWriter(output, width=index.width, height=index.height, rate=index.average_rate, settings=settings,
                       rotation=index.rotation) as writer:
        for w, a, b in zip(crossfade_weights(len(frames_a)), frames_a, frames_b):
            mixed = (1.0 - w) * a.astype(np.float32) + w * b.astype(np.float32)
            writer.write(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))
    return output


def stitch(
    chunks: Sequence[Chunk], workdir: str | os.PathLike[str], output: str | os.PathLike[str], index: VideoIndex
) -> str | os.PathLike[str]:
    """Join windows and middles in frame order into ``output`` (temp name, then rename).

    ``index`` is the input's index; when the chunks cover only part of it (a frame range), the
    output gets that part's timestamps and the audio of that time span.
    """
    a, b = chunks[0].start, chunks[-1].end
    pieces: list[str] = []
    for chunk in chunks:
        files = ChunkFiles(workdir, chunk)
        if chunk.lead_in:
            pieces.append(files.window)
        pieces.append(files.middle)
    partial = (a, b) != (0, index.frame_count)
    return concat(pieces, output, index.slice(a, b) if partial else index, trim_audio=partial)
