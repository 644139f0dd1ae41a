"""The chunk loop in this process: one worker, no Ray, for jobs that one worker suffices for.

Starting Ray and a worker process costs seconds (a local instance, then a process that imports
torch and builds the model again); a short clip or a one-worker job pays that for nothing. This
loop runs the same :class:`~.chunkrun.ChunkRenderer` a Ray worker runs, on lane threads of this
process, with the network preflight already built, so the bytes out, the work directory, the
ledger, resume, the leases and progress are the same as on Ray. The lanes are daemon threads that
look at the job's cancel flag after every frame: a stop ends them within a frame. A chunk that
raises is retried like on Ray; there is no worker process to lose, so no watchdog.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import torch

from ..chunking import Chunk
from ..errors import JobCancelled, JobError
from ..video.imageseq import sweep_temps
from .chunkrun import ChunkRenderer, crossfade_window
from .schedule import Schedule

__all__ = ["LocalLoop"]

_DONE = None  # what tells a lane thread to end
UNWIND = 5.0  # seconds :meth:`LocalLoop.stop` gives lanes to leave a cancelled chunk


@dataclass
class LocalLoop(Schedule):
    """One pass of the chunk loop in this process; see the module docstring."""

    running: dict[int, Chunk] = field(default_factory=dict)  # chunk index → chunk
    seams: dict[int, Chunk] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._inbox: queue.Queue[Chunk | None] = queue.Queue()
        self._outbox: queue.Queue[tuple[str, Chunk | None, Any]] = queue.Queue()
        self._seam_inbox: queue.Queue[tuple[Chunk, tuple[str, str, str]] | None] = queue.Queue()
        self._renderer: ChunkRenderer | None = None
        self._caller_threads = torch.get_num_threads()  # put back when the loop ends: the process is the caller's
        self._ready = threading.Event()
        self._stopping = threading.Event()
        # nothing to dream (a resume whose chunks are all kept, only windows left): no model is built
        lanes = self.lanes if self.queue else 0
        if not lanes:
            self._ready.set()
        self._threads = [threading.Thread(target=self._lane, args=(i,), name=f"distdream-lane-{i}", daemon=True)
                         for i in range(lanes)]
        self._threads.append(threading.Thread(target=self._seam_thread, name="distdream-seams", daemon=True))
        for thread in self._threads:
            thread.start()

    def workers_up(self) -> tuple[int, int]:
        """(workers that have started, workers asked for): one, once its model is built."""
        return int(self._ready.is_set()), 1

    # -- threads ------------------------------------------------------------------------------

    def _build(self) -> None:
        """The worker's renderer, built on the first lane thread: with one lane that is the thread
        that dreams, so only one OpenMP thread pool exists (see :class:`~distdream.lanes.LaneBatcher`)."""
        p = self.prepared
        try:
            # the worker's threads, as a Ray worker sets them in its process (the same count, the same bytes)
            if torch.get_num_threads() != p.threads:  # set only if needed: each call restarts the thread pools
                torch.set_num_threads(p.threads)
            self._renderer = ChunkRenderer(p.checked.config, p.device, self.lanes, model=p.model)
        except BaseException as exc:  # reported by the loop, which fails the job with it
            self._outbox.put(("start", None, exc))
        else:
            self._outbox.put(("start", None, None))
        self._ready.set()

    def _lane(self, number: int) -> None:
        if number == 0:
            self._build()
        self._ready.wait()
        while (chunk := self._inbox.get()) is not _DONE and self._renderer is not None:
            try:
                record = self._renderer.render(self.prepared.plan.index, chunk, self.workdir, self.layout,
                                               self._progress, self._on_frame)
                self._outbox.put(("chunk", chunk, record | {"host": "this process", "node": "local"}))
            except BaseException as exc:  # the loop decides: retry, fail, or a stop
                self._outbox.put(("chunk", chunk, exc))

    def _seam_thread(self) -> None:
        index = self.prepared.plan.index
        while (item := self._seam_inbox.get()) is not _DONE:
            c, (side_a, side_b, window) = item
            try:
                result: Any = crossfade_window(side_a, side_b, window, self.encoding, index, c.lead_in, c.first)
            except BaseException as exc:
                result = exc
            self._outbox.put(("seam", c, result))

    def _progress(self, n: int) -> None:
        self.job.add_done_frames(n)

    def _on_frame(self, _i: int) -> None:
        if self._stopping.is_set() or self.job.cancelled():
            raise JobCancelled("job cancelled")

    # -- the loop -----------------------------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.queue or self.running or self.seams)

    def step(self) -> None:
        for lease in self.prepared.leases:
            lease.check()  # lost: stop before writing anything more
        if self._ready.is_set():
            while self.queue and len(self.running) < self.lanes and (chunk := self.next_chunk()) is not None:
                self.running[chunk.index] = chunk
                self._inbox.put(chunk)
        try:
            kind, chunk, result = self._outbox.get(timeout=0.5)
        except queue.Empty:
            return
        if kind == "start":
            if result is not None:
                raise JobError(f"the worker could not start: {result.__class__.__name__}: {result}") from result
        elif kind == "seam":
            assert chunk is not None
            self.seams.pop(chunk.index)
            if isinstance(result, BaseException):
                raise JobError(f"the crossfade of the seam before chunk {chunk.index} failed: "
                               f"{result.__class__.__name__}: {result}") from result
            self.window_made(chunk, result)
        else:
            assert chunk is not None
            self.running.pop(chunk.index)
            if isinstance(result, JobCancelled):
                raise result
            if isinstance(result, BaseException):
                self.failed(chunk, f"{result.__class__.__name__}: {str(result).strip()[:300]}")
                return
            self.finished(chunk, result)
        self.launch_seams()

    def launch_seams(self) -> None:
        for c, files in self.seams_due(list(self.seams.values())):
            self.seams[c.index] = c
            self._seam_inbox.put((c, files))

    def stop(self) -> None:
        """End the lane and seam threads: a lane in a chunk leaves it at its next frame."""
        self._stopping.set()
        for _ in range(self.lanes):
            self._inbox.put(_DONE)
        self._seam_inbox.put(_DONE)
        for thread in self._threads:
            thread.join(UNWIND)
        torch.set_num_threads(self._caller_threads)
        if self.layout.frames_to is not None:  # a chunk stopped mid-frame leaves its temp in the output folder
            sweep_temps(self.layout.frames_to)
