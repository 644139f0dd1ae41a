"""What a chunk loop keeps, whoever runs the chunks: the queue, what is done, retries, the ledger.

:class:`Schedule` is the bookkeeping both chunk runners hold — on Ray actors (:mod:`.ray_runner`)
and on threads of this process (:mod:`.thread_runner`): which queued chunk starts next (long
handoff chains first), a failed chunk going back to the queue until its attempts run out, a
finished chunk recorded in the ledger, and which seam windows can be crossfaded. No Ray here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..chunking import Chunk
from ..errors import ChunkFailed
from ..options import JobOptions
from .board import Board
from .pieces import ChunkFiles
from .prepare import Prepared
from .records import ChunkStatus

__all__ = ["RunSummary", "Schedule"]


@dataclass(frozen=True)
class RunSummary:
    """What one pass of a chunk runner did: chunks dreamed, their statistics, notes for the user,
    the arithmetic it ran and its largest batch."""

    rendered: int
    stats: tuple[dict[str, Any], ...]
    notes: frozenset[str]
    compute: str
    largest_batch: int


@dataclass
class Schedule:
    """The queue, what is done and how often each chunk was tried; see the module docstring."""

    board: Board  # the job's: the loop reports each chunk's state and the frames dreamed there
    options: JobOptions
    prepared: Prepared
    workdir: str
    queue: list[Chunk]
    done: set[int]
    windows: set[int]
    workers: int
    lanes: int
    attempts: dict[int, int] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)
    rendered: int = 0
    compute: str = ""
    largest_batch: int = 0

    def __post_init__(self) -> None:
        chunks = self.prepared.plan.chunks
        self.by_index = {c.index: c for c in chunks}
        # chunks left in each chunk's chain from it on: the scheduler starts long chains first
        self.chain_rest: dict[int, int] = {}
        for c in reversed(chunks):
            self.chain_rest[c.index] = 1 + (self.chain_rest.get(c.index + 1, 0) if c.hands_off else 0)
        self.layout = self.prepared.checked.layout
        self.encoding = self.prepared.checked.config.encoding

    def summary(self) -> RunSummary:
        """What this pass did, for the job's result."""
        return RunSummary(self.rendered, tuple(self.stats), frozenset(self.notes), self.compute, self.largest_batch)

    def next_chunk(self) -> Chunk | None:
        """The queued chunk to start next, taken off the queue and counted as an attempt: one whose
        handoff predecessor (if any) is done, from the chain with the most chunks left (long chains
        start first, single chunks fill the gaps in frame order)."""
        ready = [c for c in self.queue if c.begins != "handoff" or c.index - 1 in self.done]
        chunk = max(ready, key=lambda c: (self.chain_rest[c.index], -c.index), default=None)
        if chunk is not None:
            self.queue.remove(chunk)
            self.attempts[chunk.index] = self.attempts.get(chunk.index, 0) + 1
            self.board.mark(chunk, ChunkStatus.RUNNING, self.attempts[chunk.index])
        return chunk

    def failed(self, chunk: Chunk, cause: str) -> None:
        """Queue ``chunk`` again, or fail the job if it has had all its attempts."""
        n = self.attempts[chunk.index]
        if n >= self.options.max_attempts:
            self.board.mark(chunk, ChunkStatus.FAILED, n)
            raise ChunkFailed(chunk.index, (chunk.start, chunk.end), n, cause)
        self.board.mark(chunk, ChunkStatus.PENDING, n)
        self.queue.insert(0, chunk)

    def check_leases(self) -> None:
        """Raise :class:`~distdream.errors.JobError` if a lease of the job is lost: nothing more is written."""
        for lease in self.prepared.leases:
            lease.check()

    def finished(self, chunk: Chunk, record: dict[str, Any]) -> None:
        """Record a dreamed chunk (its worker's record) in the ledger, while the job's leases hold."""
        self.check_leases()
        self.done.add(chunk.index)
        self.rendered += 1
        self.stats.append(record["stats"])
        self.compute = self.compute or record.get("compute", "")
        self.largest_batch = max(self.largest_batch, record.get("batch", 1))
        self.notes.update(record.get("notes", []))
        self.prepared.ledger.add(
            "chunks",
            chunk.name,
            {
                "frames": chunk.dreamed,
                "stats": record["stats"],
                "host": record["host"],
                "node": record["node"],
                "fingerprints": record.get("fingerprints", {}),
            },
        )
        self.board.mark(chunk, ChunkStatus.DONE, self.attempts[chunk.index])

    def seams_due(self, launched: Iterator[Chunk] | list[Chunk]) -> Iterator[tuple[Chunk, tuple[str, str, str]]]:
        """Seams whose two sides are dreamed and whose window is neither made nor being made:
        each chunk with its (side a, side b, window) files."""
        busy = set(c.index for c in launched)
        for c in self.prepared.plan.chunks:
            if (
                c.lead_in
                and c.index not in self.windows
                and c.index in self.done
                and c.index - 1 in self.done
                and c.index not in busy
            ):
                yield c, ChunkFiles.window_sides(self.workdir, self.by_index[c.index - 1], c, self.layout)

    def window_made(self, c: Chunk, fingerprint: str) -> None:
        """Record the crossfaded window of the seam before chunk ``c``, while the job's leases hold."""
        self.check_leases()
        window = ChunkFiles(self.workdir, c, self.layout).window_piece()
        self.prepared.ledger.add("windows", c.name, {"frames": c.lead_in, "fingerprints": {window.key: fingerprint}})
        self.windows.add(c.index)
