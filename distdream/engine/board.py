"""A running job's board: each chunk's state, frames dreamed of frames to dream, and the stop flag.

The job owns it and answers its callers from it (``progress()``, ``chunks()``, ``cancelled()``);
the chunk loop, on the driver's threads, writes to it. So the loop needs the board, not the job,
and the job can create the loop without the two importing each other.
"""

from __future__ import annotations

import threading

from ..chunking import Chunk
from .records import ChunkState, ChunkStatus

__all__ = ["Board"]


class Board:
    """See the module docstring; every method may be called from any thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()  # set by a cancel, a stop, or a lost lease
        self._lock = threading.Lock()
        self._states: dict[int, ChunkState] = {}
        self._done = 0
        self._total = 0

    def cancelled(self) -> bool:
        return self.stop.is_set()

    def mark(self, chunk: Chunk, state: ChunkStatus, attempts: int) -> None:
        """Record where ``chunk`` is."""
        with self._lock:
            self._states[chunk.index] = ChunkState(chunk.index, chunk.start, chunk.end, state, attempts)

    def add_done_frames(self, n: int) -> None:
        """Count ``n`` more frames dreamed."""
        with self._lock:
            self._done += n

    def set_frames(self, done: int, total: int) -> None:
        """Frames dreamed already (kept chunks of a resumed job) and frames to dream in all."""
        with self._lock:
            self._done, self._total = done, total

    def all_done(self) -> None:
        with self._lock:
            self._done = self._total

    def progress(self) -> tuple[int, int]:
        """(frames dreamed, frames to dream)."""
        with self._lock:
            return self._done, self._total

    def chunks(self) -> list[ChunkState]:
        with self._lock:
            return [self._states[k] for k in sorted(self._states)]
