"""Chunk planning: split frames [a, b) into shots and shots into chunks. Pure, no I/O.

Chunk k owns frames ``[start, end)``; together the owned ranges partition the rendered range
exactly. How a chunk begins is decided per boundary:

- ``start``: the first chunk of the range: a keyframe.
- ``cut``: the boundary lies on a scene cut. The dream restarts at a cut anyway, so the seam is
  invisible and needs nothing.
- ``handoff``: inside a shot, the chunk continues from its predecessor's carried state (the last
  frame's dream residual and the jitter generator's state), as if the shot were one chunk: the
  output is pixel-identical to rendering the shot whole. It must wait for its predecessor, so a
  chain of handoffs is sequential.
- ``crossfade``: inside a shot that is so long that one chain would leave workers idle, the chunk
  starts with a keyframe ``lead_in`` frames before ``start`` and dreams that lead-in with flow;
  those frames are its predecessor's last ``lead_in`` owned frames too (its ``tail``), and the
  output crossfades from one version to the other (the *seam window*).

``seams="auto"`` chains handoffs until a chain would hold more than its share of the work
(``frames / slots``, at least one chunk), then starts a new chain with a crossfade; ``handoff``
and ``crossfade`` force one kind inside every shot. Chunks of different shots never depend on
each other, so they run in parallel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from .errors import ConfigError

__all__ = ["DEFAULT_OVERLAP", "RELAY_CHAINS", "SEAMS", "Chunk", "parallelism", "plan_chunks", "resolve_overlap"]

SEAMS = ("auto", "handoff", "crossfade")
# A crossfade turns one dream into another by 1/(overlap + 1) of their difference a frame: 16 is
# the shortest window whose warping error matches one chunk's (docs/benchmarks/cpu.md).
DEFAULT_OVERLAP = 16


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a plain, serialisable record."""

    index: int
    start: int  # first owned frame
    end: int  # one past the last owned frame
    lead_in: int  # frames before ``start`` dreamed for a crossfade window with the previous chunk
    tail: int  # last owned frames that form the window with the next chunk (its lead-in)
    seed: int  # seeds the jitter of a chain's first chunk (a handoff continues its predecessor's)
    begins: str = "start"  # start, cut, handoff or crossfade (see the module docstring)
    hands_off: bool = False  # the next chunk continues from this one's carried state
    # a crossfade chain's dream is relayed from the chains of its shot before it: (first frame,
    # seed) of each, in order; the chain's own first frame continues from the last of them
    relay: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:  # a plan read back from JSON has lists
        object.__setattr__(self, "relay", tuple((int(f), int(s)) for f, s in self.relay))

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    @property
    def first(self) -> int:
        """First frame this chunk dreams (its keyframe, unless it continues a handoff)."""
        return self.start - self.lead_in

    @property
    def owned(self) -> int:
        return self.end - self.start

    @property
    def dreamed(self) -> int:
        return self.end - self.first

    def to_dict(self) -> dict[str, int | str | bool]:
        return asdict(self)


def _split(a: int, b: int, chunk_frames: int) -> list[int]:
    """Boundaries every ``chunk_frames`` in [a, b]; a remainder under half a chunk joins the last."""
    bounds = [a]
    while b - bounds[-1] >= chunk_frames + max(chunk_frames // 2, 1):
        bounds.append(bounds[-1] + chunk_frames)
    bounds.append(b)
    return bounds


def resolve_overlap(overlap: int | None, chunk_frames: int) -> int:
    """``overlap`` as given, or by default :data:`DEFAULT_OVERLAP` frames, at most half a chunk."""
    return min(DEFAULT_OVERLAP, chunk_frames // 2) if overlap is None else overlap


def _check(frame_count: int, chunk_frames: int, overlap: int, seams: str, slots: int, a: int, b: int) -> None:
    """Raise :class:`ConfigError` naming the setting that makes the plan impossible."""
    if not 0 <= a < b <= frame_count:
        raise ConfigError(f"frame range {a}:{b} is not inside the video's {frame_count} frames (0:{frame_count})")
    if chunk_frames < 1:
        raise ConfigError(f"chunk_frames (--chunk-frames) is {chunk_frames}; it must be >= 1")
    if overlap < 0 or (overlap and 2 * overlap > chunk_frames):
        raise ConfigError(
            f"overlap (--overlap) is {overlap}; it must be >= 0 and at most half of chunk_frames ({chunk_frames})"
        )
    if seams not in SEAMS:
        raise ConfigError(f"seams (--seams) is {seams!r}; it must be one of {', '.join(SEAMS)}")
    if slots < 1:
        raise ConfigError(f"slots is {slots}; it must be >= 1")


def _shot_spans(
    s0: int, s1: int, begins_with: str, chunk_frames: int, budget: int, seams: str, overlap: int
) -> list[tuple[int, int, str]]:
    """One shot's chunks as ``(start, end, begins)``: handoffs while a chain stays within
    ``budget`` frames (``auto``), crossfades after."""
    bounds = _split(s0, s1, chunk_frames)
    spans = []
    chain = 0
    for k, (start, end) in enumerate(zip(bounds, bounds[1:])):
        if k == 0:
            begins = begins_with
        elif seams == "handoff" or (seams == "auto" and (chain + end - start <= budget or not overlap)):
            begins = "handoff"
        else:
            begins = "crossfade"
        chain = chain + end - start if begins == "handoff" else end - start
        spans.append((start, end, begins))
    return _balanced(spans, overlap)


def _balanced(spans: list[tuple[int, int, str]], overlap: int) -> list[tuple[int, int, str]]:
    """One shot's spans with each crossfade boundary moved so that the lead-ins' extra frames are
    shared by the shot's chains in proportion to what they own: chains that run side by side
    then finish together instead of the later ones dreaming ``overlap`` frames more.

    Chain ``j`` (owning ``n_j`` of the shot's ``L`` frames, ``O`` lead-in frames in all) would own
    ``n_j (L + O) / L − lead_in_j`` afterwards. A boundary moves at most ``overlap`` frames, and
    only as far as leaves each chunk at least as long as it was or ``2 · overlap`` frames.
    """
    crossfades = [k for k, (_, _, begins) in enumerate(spans) if begins == "crossfade"]
    if not crossfades or not overlap:
        return spans
    first, last = spans[0][0], spans[-1][1]
    lead_ins = overlap * len(crossfades)
    bounds = [start for start, _, _ in spans] + [last]
    shortest = [min(2 * overlap, end - start) for start, end, _ in spans]
    for j, k in enumerate(crossfades):  # the (j+1)-th chain starts at span k; bounds[k - 1] is final
        shift = round((bounds[k] - first) * lead_ins / (last - first)) - j * overlap
        moved = bounds[k] + max(-overlap, min(overlap, shift))
        bounds[k] = max(bounds[k - 1] + shortest[k - 1], min(bounds[k + 1] - shortest[k], moved))
    return [(start, end, begins) for (start, end), (_, _, begins) in zip(zip(bounds, bounds[1:]), spans)]


# A crossfade chain relays the dream through at most this many chains before it: each costs it a
# carried frame, and a long shot forced into many chains would pay for all of them in every chain
RELAY_CHAINS = 8


def _relay(heads: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The (first frame, seed) of the chains a crossfade chain relays its dream through: all
    chains of its shot before it, or the last :data:`RELAY_CHAINS`, the first of them dreamed with
    the shot's own seed (so that a still shot still holds one dream in every chain)."""
    if len(heads) <= RELAY_CHAINS:
        return tuple(heads)
    (frame, _), *rest = heads[-RELAY_CHAINS:]
    return ((frame, heads[0][1]), *rest)


def _with_lead_ins(spans: list[tuple[int, int, str]], overlap: int, seed: int) -> list[Chunk]:
    """Chunks from spans: a crossfade gets its lead-in (or, without room, becomes a handoff)."""
    chunks = []
    for k, (start, end, begins) in enumerate(spans):
        lead_in = (
            min(overlap, start - spans[k - 1][0] - 1) if begins == "crossfade" else 0
        )  # the previous keeps a middle
        if begins == "crossfade" and lead_in <= 0:
            begins, lead_in = "handoff", 0  # no room for a window: continue instead
        # seeded by where its dream starts, not by its index: a shot rendered alone (a frame range)
        # begins with the same jitter as the same shot inside a longer render
        seeded = seed * 1_000_003 + start - lead_in
        if begins in ("start", "cut"):
            heads: list[tuple[int, int]] = []  # the first frame and seed of each chain of this shot
        relay = _relay(heads) if begins == "crossfade" else ()
        if begins != "handoff":
            heads.append((start - lead_in, seeded))
        chunks.append(
            Chunk(index=k, start=start, end=end, lead_in=lead_in, tail=0, seed=seeded, begins=begins, relay=relay)
        )
    return [
        replace(
            c,
            tail=chunks[k + 1].lead_in if k + 1 < len(chunks) else 0,
            hands_off=k + 1 < len(chunks) and chunks[k + 1].begins == "handoff",
        )
        for k, c in enumerate(chunks)
    ]


def plan_chunks(
    frame_count: int,
    chunk_frames: int,
    overlap: int | None,
    cuts: Sequence[int] = (),
    *,
    frame_range: tuple[int, int] | None = None,
    seed: int = 0,
    seams: str = "auto",
    slots: int = 1,
) -> list[Chunk]:
    """Plan the chunks of frames ``[a, b)``: boundaries on every cut, shots split into chunks of
    about ``chunk_frames``, each boundary inside a shot a handoff or a crossfade (``seams``, for
    ``slots`` chunks dreamed at once) with ``overlap`` lead-in frames (None: the default of
    :func:`resolve_overlap`). Seeds derive from ``seed`` and the frame a chunk's dream starts at
    only, so the frames do not depend on the order chunks finish in. With ``auto`` the chains
    depend on ``slots``; ``handoff`` or ``crossfade`` give a plan independent of it.
    """
    a, b = frame_range if frame_range is not None else (0, frame_count)
    overlap = resolve_overlap(overlap, chunk_frames)
    _check(frame_count, chunk_frames, overlap, seams, slots, a, b)
    cuts = sorted(c for c in set(cuts) if a < c < b)
    budget = max(chunk_frames, math.ceil((b - a) / slots))  # the most one chain should hold
    spans: list[tuple[int, int, str]] = []
    for s0, s1 in zip([a, *cuts], [*cuts, b]):
        spans += _shot_spans(s0, s1, "start" if s0 == a else "cut", chunk_frames, budget, seams, overlap)
    return _with_lead_ins(spans, overlap, seed)


def chains(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """The plan's chains: runs of chunks joined by handoffs (each must run in order)."""
    out: list[list[Chunk]] = []
    for c in chunks:
        if c.begins == "handoff" and out:
            out[-1].append(c)
        else:
            out.append([c])
    return out


def parallelism(chunks: Sequence[Chunk]) -> float:
    """How many chunks can run at once, on average: frames dreamed / frames in the longest chain."""
    longest = max(sum(c.dreamed for c in chain) for chain in chains(chunks))
    return sum(c.dreamed for c in chunks) / longest if longest else 1.0
