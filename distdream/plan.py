"""Chunk planning: split frames [a, b) into overlapping chunks. Pure, no I/O.

Chunk k owns frames ``[start, end)``; together the owned ranges partition the rendered range
exactly. Chunk k also dreams ``lead_in`` frames before ``start``, beginning with a keyframe at
``start - lead_in``, so that by ``start`` it carries a dream consistent with the scene. Those
lead-in frames are chunk k-1's last ``lead_in`` owned frames too: in the output they are a
crossfade from chunk k-1's version to chunk k's (the *seam window*). A chunk therefore writes
three things: its lead-in (window k, side b), its middle, and its tail (window k+1, side a).

Boundaries snap to a scene cut near them; a seam on a cut needs no lead-in (the dream restarts
at a cut anyway), and a lead-in never reaches back across a cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .errors import ConfigError

__all__ = ["Chunk", "plan_chunks"]


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a plain, serialisable record."""

    index: int
    start: int  # first owned frame
    end: int  # one past the last owned frame
    lead_in: int  # frames before ``start`` dreamed for continuity (window with the previous chunk)
    tail: int  # last owned frames that form the window with the next chunk (its lead-in)
    seed: int

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    @property
    def first(self) -> int:
        """First frame this chunk dreams (its keyframe)."""
        return self.start - self.lead_in

    @property
    def owned(self) -> int:
        return self.end - self.start

    @property
    def dreamed(self) -> int:
        return self.end - self.first

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _snap(boundary: int, cuts: Sequence[int], reach: int, low: int, high: int) -> int:
    """The cut nearest ``boundary`` within ``reach`` frames (and inside (low, high)), else ``boundary``."""
    near = [c for c in cuts if abs(c - boundary) <= reach and low < c < high]
    return min(near, key=lambda c: (abs(c - boundary), c)) if near else boundary


def plan_chunks(
    frame_count: int,
    chunk_frames: int,
    overlap: int,
    cuts: Sequence[int] = (),
    *,
    frame_range: tuple[int, int] | None = None,
    seed: int = 0,
) -> list[Chunk]:
    """Plan chunks of about ``chunk_frames`` owned frames with ``overlap``-frame lead-ins.

    ``cuts`` are frames that start a new shot; ``frame_range`` renders only frames ``[a, b)``.
    Chunk seeds derive from ``seed`` and the chunk index only, so a plan renders the same
    frames whatever the number of workers or the order chunks finish in.
    """
    a, b = frame_range if frame_range is not None else (0, frame_count)
    if not 0 <= a < b <= frame_count:
        raise ConfigError(f"frame range {a}:{b} is not inside the video's {frame_count} frames (0:{frame_count})")
    if chunk_frames < 1:
        raise ConfigError(f"chunk_frames (--chunk-frames) is {chunk_frames}; it must be >= 1")
    if overlap < 0 or (overlap and 2 * overlap > chunk_frames):
        raise ConfigError(
            f"overlap (--overlap) is {overlap}; it must be >= 0 and at most half of chunk_frames ({chunk_frames})"
        )
    cuts = sorted(c for c in set(cuts) if a < c < b)
    # Planned boundaries every chunk_frames; a remainder shorter than half a chunk joins the last.
    bounds = [a]
    reach = max(overlap, chunk_frames // 8)
    while b - bounds[-1] >= chunk_frames + max(chunk_frames // 2, 1):
        planned = bounds[-1] + chunk_frames
        bounds.append(_snap(planned, cuts, reach, bounds[-1] + max(overlap, 1), b - max(overlap, 1)))
    bounds.append(b)

    chunks: list[Chunk] = []
    for k, (start, end) in enumerate(zip(bounds, bounds[1:])):
        if k == 0 or start in cuts:
            lead_in = 0
        else:
            earliest = start - overlap
            inside = [c for c in cuts if earliest < c < start]
            lead_in = start - (inside[-1] if inside else earliest)  # never reach back across a cut
            lead_in = min(lead_in, start - bounds[k - 1] - 1)  # the previous chunk keeps a middle
        chunks.append(Chunk(index=k, start=start, end=end, lead_in=lead_in, tail=0, seed=seed * 1_000_003 + k))
    return [
        Chunk(**{**c.to_dict(), "tail": chunks[k + 1].lead_in if k + 1 < len(chunks) else 0})
        for k, c in enumerate(chunks)
    ]
