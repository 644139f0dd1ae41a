"""The engine's plain records: what a job is asked to do, what it plans, what it reports.

Everything here crosses threads or processes (driver thread, Ray workers, the CLI), so it is
frozen dataclasses and string enums: picklable, comparable, JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..chunking import Chunk, parallelism
from ..video import VideoIndex

__all__ = ["ChunkState", "ChunkStatus", "JobPlan", "JobResult", "JobStatus", "Phase"]


class JobStatus(StrEnum):
    """Where a job is (a ``str``: compares equal to its value)."""

    STARTING = "starting"
    RUNNING = "running"
    STITCHING = "stitching"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Phase:
    """What a job is doing now, for a display: ``probing``, ``checking the model``, ``scanning
    cuts`` (``done``/``total`` frames), ``starting Ray``, ``planned`` (``detail``: the plan in one
    line), ``starting workers`` (``done``/``total`` workers), ``dreaming``, ``joining`` (``total``
    pieces); ``detail`` says more where there is more."""

    name: str
    """The phase, as listed above."""
    done: int = 0
    """How far it is: frames scanned, workers started, pieces joined."""
    total: int = 0
    """Out of how many (0 where the phase has no count)."""
    detail: str = ""
    """More about it, for a display: the plan in one line, where the workers run, the output."""


class ChunkStatus(StrEnum):
    """Where one chunk is."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class JobPlan:
    """What a job will do: its chunks, and what the overlap costs."""

    input: str
    """The input, as the job opens it (a local path made absolute, or a URI)."""
    index: VideoIndex
    """The input's index: frames, timestamps, size, colour, audio streams."""
    chunks: tuple[Chunk, ...]
    """The chunks in frame order, each with its lead-in and how it begins (start, cut, handoff, crossfade)."""
    settings_hash: str
    """The hash of what makes the pixels: the job records it in its work directory, and a resume
    with other settings is refused."""

    @property
    def frames(self) -> int:
        """Frames the output will have."""
        return sum(c.owned for c in self.chunks)

    @property
    def dreamed_frames(self) -> int:
        """Frames dreamed in all, lead-ins included."""
        return sum(c.dreamed for c in self.chunks)

    @property
    def lead_in_overhead(self) -> float:
        """Extra frames dreamed for lead-ins, per frame owned."""
        return (self.dreamed_frames - self.frames) / self.frames if self.frames else 0.0

    @property
    def parallelism(self) -> float:
        """How many chunks can run at once on average: frames dreamed over the longest handoff chain."""
        return parallelism(self.chunks)

    def describe(self) -> str:
        """One line: chunks, how their boundaries begin, the parallelism the plan allows."""
        kinds = [c.begins for c in self.chunks[1:]]
        seams = (
            ", ".join(
                f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                for k in ("cut", "handoff", "crossfade")
                if k in kinds
            )
            or "no seams"
        )
        return (
            f"{len(self.chunks)} chunk(s): {seams}; parallelism {self.parallelism:.1f}, "
            f"lead-in overhead {100 * self.lead_in_overhead:.0f}%"
        )


@dataclass(frozen=True)
class ChunkState:
    """The state of one chunk and the attempts made at it."""

    index: int
    """The chunk's number in the plan."""
    start: int
    """Its first output frame."""
    end: int
    """One past its last output frame."""
    state: ChunkStatus
    """pending, running, done or failed."""
    attempts: int
    """Attempts made at it so far."""


@dataclass(frozen=True)
class JobResult:
    """What a finished job made."""

    output: Path | str
    """Where the output was written (a ``str`` when it is an object-storage URI)."""
    frames: int
    """Frames in the output."""
    chunks: int
    """Chunks of the plan."""
    rendered: int
    """Chunks dreamed by this run (the rest were kept from an earlier one, by a resume)."""
    seconds: float
    """Wall time of the run, from the start of the chunk loop to the published output."""
    workdir: Path | str
    """The work directory (removed after success when it was the default one)."""
    lead_in_overhead: float
    """Extra frames dreamed for crossfade lead-ins, per output frame."""
    chunk_stats: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    """Per chunk dreamed by this run: seconds in each stage (decode, flow, dream, encode) and waiting."""
    workers: int = 0
    """Workers the run used."""
    lanes: int = 1
    """Chunks each worker dreamed at once, as one batch."""
    compute: str = ""
    """How the network ran (precision, memory layout), as the workers reported it."""
    notes: tuple[str, ...] = ()
    """What the user should know: settings a worker could not honour, a repaired ledger, dropped audio."""
    largest_batch: int = 0
    """The most frames a worker dreamed in one batch (lanes that met)."""
