"""The engine's plain records: what a job is asked to do, what it plans, what it reports.

Everything here crosses threads or processes (driver thread, Ray workers, the CLI), so it is
frozen dataclasses and string enums: picklable, comparable, JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plan import SEAMS, Chunk, parallelism
from ..video import VideoIndex

__all__ = ["ChunkState", "ChunkStatus", "Fault", "JobOptions", "JobPlan", "JobResult", "JobStatus"]


class JobStatus(str, Enum):
    """Where a job is (a ``str``: compares equal to its value)."""

    STARTING = "starting"
    RUNNING = "running"
    STITCHING = "stitching"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class ChunkStatus(str, Enum):
    """Where one chunk is."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


FAULT_KINDS = ("raise", "exit", "hang", "start-raise", "start-hang", "ping-hang")


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a worker (for tests of the failure paths).

    Chunk faults fire at frame offset ``at_frame`` of chunk ``chunk`` on the listed ``attempts``
    (all when empty): the worker raises (``raise``), its process exits at once (``exit``), or it
    stops answering (``hang``, for the watchdog). Start faults hit every worker as it starts:
    its constructor raises (``start-raise``) or never returns (``start-hang``), or it starts but
    never answers its first ping (``ping-hang``); ``chunk`` is ignored for those.
    """

    chunk: int = 0
    at_frame: int = 0
    attempts: tuple[int, ...] = ()
    kind: str = "raise"

    @property
    def at_start(self) -> bool:
        return self.kind.startswith(("start-", "ping-"))


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """How a render is split and run. None of these change a pixel except the chunking ones."""

    workers: int | None = None  # default: one per GPU when the cluster has GPUs, else one per CPU
    gpus_per_worker: float | None = None  # default: 1 when the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0  # CPU workers get this many torch threads (rounded, at least 1)
    lanes: int | None = None  # chunks each worker dreams at once, as one batch; default: 8 on GPU, 1 on CPU
    chunk_frames: int = 120  # owned frames per chunk
    overlap: int | None = None  # lead-in frames dreamed by both neighbours and crossfaded; default: 16, ≤ half a chunk
    frame_range: tuple[int, int] | None = None  # render only frames [a, b)
    workdir: str | None = None  # default: a hidden folder beside the output, removed on success
    resume: bool = False  # continue the job in workdir instead of refusing to touch it
    address: str | None = None  # an existing Ray cluster ("auto", "HOST:6379", "ray://…"); default: local
    max_attempts: int = 3  # tries per chunk before the job fails
    chunk_timeout: float | None = None  # watchdog seconds per attempt; default: generous estimate
    max_restarts: int = 3  # per actor
    start_timeout: float = 600.0  # seconds a new worker may take to answer its first ping
    max_start_failures: int = 3  # workers that fail to start (raise, die, or time out) before the job fails
    connect_timeout: float = 30.0  # seconds to reach an existing cluster
    scan_cuts: bool = True  # scan for scene cuts first (Ray tasks in parallel) and put chunk boundaries on them
    seams: str = "auto"  # inside a shot: handoff (exact, sequential), crossfade (parallel), or auto
    keep_source_time: bool = False  # a --frames range keeps the source's timestamps instead of starting at 0
    inject_faults: tuple[Fault, ...] = ()  # testing aid

    def validate(self) -> JobOptions:
        def whole(name: str, value: Any, low: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{name} ({flag}) is {value!r}; it must be an integer >= {low}")

        if self.workers is not None:
            whole("workers", self.workers, 1)
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ConfigError(f"gpus_per_worker (--gpus-per-worker) is {self.gpus_per_worker}; it must be >= 0")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"cpus_per_worker is {self.cpus_per_worker}; it must be > 0")
        for name in ("max_attempts", "max_start_failures", "chunk_frames"):
            whole(name, getattr(self, name), 1)
        if self.overlap is not None:
            whole("overlap", self.overlap, 0)
        whole("max_restarts", self.max_restarts, 0)
        if self.lanes is not None and (not isinstance(self.lanes, int) or not 1 <= self.lanes <= 64):
            raise ConfigError(f"lanes (--lanes) is {self.lanes}; it must be an integer in 1–64")
        for name in ("start_timeout", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} is {getattr(self, name)}; it must be > 0 seconds")
        if self.chunk_timeout is not None and not self.chunk_timeout > 0:
            raise ConfigError(f"chunk_timeout is {self.chunk_timeout}; it must be > 0 seconds")
        if self.seams not in SEAMS:
            raise ConfigError(f"seams (--seams) is {self.seams!r}; it must be one of {', '.join(SEAMS)}")
        bad = [f.kind for f in self.inject_faults if f.kind not in FAULT_KINDS]
        if bad:
            raise ConfigError(f"unknown fault kind {bad[0]!r}; one of {', '.join(FAULT_KINDS)}")
        return self


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
        seams = ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                          for k in ("cut", "handoff", "crossfade") if k in kinds) or "no seams"
        return (f"{len(self.chunks)} chunk(s): {seams}; parallelism {self.parallelism:.1f}, "
                f"lead-in overhead {100 * self.lead_in_overhead:.0f}%")


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
