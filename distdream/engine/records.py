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
    done: int = 0
    total: int = 0
    detail: str = ""


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
    index: VideoIndex
    chunks: tuple[Chunk, ...]
    settings_hash: str

    @property
    def frames(self) -> int:
        return sum(c.owned for c in self.chunks)

    @property
    def dreamed_frames(self) -> int:
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
    start: int
    end: int
    state: ChunkStatus
    attempts: int


@dataclass(frozen=True)
class JobResult:
    """What a finished job made."""

    output: Path | str  # a str when it is an object-storage URI
    frames: int
    chunks: int
    rendered: int  # chunks dreamed by this run (the rest came from the ledger)
    seconds: float
    workdir: Path | str
    lead_in_overhead: float
    chunk_stats: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    workers: int = 0
    lanes: int = 1  # chunks each worker dreamed at once
    compute: str = ""  # how the network ran (precision, layout), as the workers reported it
    notes: tuple[str, ...] = ()  # settings a worker could not honour, ledger repairs, …
    largest_batch: int = 0  # most frames a worker dreamed in one batch (lanes that met)
