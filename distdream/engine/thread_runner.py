"""Chunks dreamed by threads of this process, no Ray: for jobs on this machine's CPUs.

Starting Ray and its worker processes costs seconds (a local instance, then processes that each
import torch and build the model again); a short clip, or a job on one machine, pays that for
nothing. This runner (a :class:`~.runner.ChunkRunner`) runs the same
:class:`~.chunkrun.ChunkRenderer` a Ray worker runs, one per worker, on lane threads of this
process, sharing the network the preflight built, so the bytes out, the work directory, the ledger,
resume, the leases and progress are the same as on Ray. Workers dream side by side because torch
leaves the GIL while it computes (how far that holds: docs, "Start-up"). The lanes are daemon
threads that look at the job's cancel flag after every frame: a stop ends them within a frame. A
chunk that raises is retried like on Ray; one that outlasts the watchdog's limit (``--chunk-
timeout``) stops the job, naming it: a thread cannot be killed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from ..chunking import Chunk
from ..errors import JobCancelled, JobError
from ..video.naming import sweep_temps
from .chunkrun import ChunkRenderer, crossfade_window
from .faults import Fault, chunk_faults, hold
from .schedule import RunSummary, Schedule
from .watchdog import Watchdog

__all__ = ["ThreadRunner"]

_DONE = None  # what tells a lane thread to end
UNWIND = 5.0  # seconds :meth:`ThreadRunner.stop` gives lanes to leave a cancelled chunk


class ThreadRunner:
    """Chunks dreamed by threads of this process; see the module docstring."""

    def __init__(self, schedule: Schedule, faults: tuple[Fault, ...] = ()) -> None:
        self.schedule = schedule
        self.faults = faults  # for tests: those a thread can show (faults.THREAD_KINDS)
        self.running: dict[int, Chunk] = {}  # chunk index → chunk
        self.seams: dict[int, Chunk] = {}
        self._inbox: queue.Queue[Chunk | None] = queue.Queue()
        self._outbox: queue.Queue[tuple[str, Chunk | None, Any]] = queue.Queue()
        self._seam_inbox: queue.Queue[tuple[Chunk, tuple[str, str, str]] | None] = queue.Queue()
        self._renderers: list[ChunkRenderer | None] = [None] * schedule.workers
        self._caller_threads = torch.get_num_threads()  # put back when the runner stops: the process is the caller's
        longest = max((c.dreamed for c in schedule.prepared.plan.chunks), default=1)
        self.watchdog = Watchdog(schedule.options.chunk_timeout, first_limit=max(1800.0, 60.0 * longest))
        self._timing = threading.Lock()  # the watchdog hears of frames from the lanes' threads
        self._built = 0  # workers whose renderer is built
        self._ready = [threading.Event() for _ in range(schedule.workers)]
        self._stopping = threading.Event()
        # nothing to dream (a resume whose chunks are all kept, only windows left): no model is built
        workers = schedule.workers if schedule.queue else 0
        self._threads = [
            threading.Thread(target=self._lane, args=(w, lane), name=f"distdream-lane-{w}.{lane}", daemon=True)
            for w in range(workers)
            for lane in range(schedule.lanes)
        ]
        self._threads.append(threading.Thread(target=self._seam_thread, name="distdream-seams", daemon=True))

    def start(self) -> None:
        """Set the workers' torch threads and start the lane and seam threads."""
        # the workers' torch threads, as a Ray worker sets them in its process (the same count, the
        # same bytes); each thread takes the count up at its first operation. Set only if needed:
        # each call restarts the thread pools.
        if self.schedule.queue and torch.get_num_threads() != self.schedule.prepared.threads:
            torch.set_num_threads(self.schedule.prepared.threads)
        for thread in self._threads:
            thread.start()

    def summary(self) -> RunSummary:
        return self.schedule.summary()

    def workers_up(self) -> tuple[int, int]:
        """(workers whose model is built, workers asked for)."""
        return self._built, self.schedule.workers

    # -- threads ------------------------------------------------------------------------------

    def _build(self, worker: int) -> None:
        """A worker's renderer, built on its first lane thread: with one lane that is the thread
        that dreams, so the worker has one OpenMP thread pool (see :class:`~distdream.frames.lanes.LaneBatcher`)."""
        p = self.schedule.prepared
        try:
            self._renderers[worker] = ChunkRenderer(p.checked.config, p.device, self.schedule.lanes, model=p.model)
        except BaseException as exc:  # reported by the loop, which fails the job with it
            self._outbox.put(("start", None, exc))
        else:
            self._outbox.put(("start", None, None))
        self._ready[worker].set()

    def _lane(self, worker: int, lane: int) -> None:
        if lane == 0:
            self._build(worker)
        self._ready[worker].wait()
        renderer = self._renderers[worker]
        while renderer is not None and (chunk := self._inbox.get()) is not _DONE:
            try:
                hooks = self._counter(chunk), self._frame_hook(chunk)
                record = renderer.render(
                    self.schedule.prepared.plan.index, chunk, self.schedule.workdir, self.schedule.layout, *hooks
                )
                self._outbox.put(("chunk", chunk, record | {"host": "this process", "node": "local"}))
            except BaseException as exc:  # the loop decides: retry, fail, or a stop
                self._outbox.put(("chunk", chunk, exc))

    def _seam_thread(self) -> None:
        index = self.schedule.prepared.plan.index
        while (item := self._seam_inbox.get()) is not _DONE:
            c, (side_a, side_b, window) = item
            try:
                result: Any = crossfade_window(
                    side_a, side_b, window, self.schedule.encoding, index, c.lead_in, c.first
                )
            except BaseException as exc:
                result = exc
            self._outbox.put(("seam", c, result))

    def _counter(self, chunk: Chunk) -> Callable[[int], None]:
        """What a lane calls as ``chunk``'s frames are done: the job's progress and the watchdog."""

        def count(n: int) -> None:
            self.schedule.board.add_done_frames(n)
            with self._timing:
                self.watchdog.progress(chunk.index, n, time.monotonic())

        return count

    def _stopped(self) -> bool:
        return self._stopping.is_set() or self.schedule.board.cancelled()

    def _frame_hook(self, chunk: Chunk) -> Callable[[int], None]:
        """What a lane does before each frame of ``chunk``: leave it if the job stops, and fire the
        faults a test injected there (the attempt is counted before the chunk reaches a lane)."""
        mine = chunk_faults(self.faults, chunk.index, self.schedule.attempts[chunk.index] - 1)

        def on_frame(i: int) -> None:
            for fault in mine:
                if i - chunk.first == fault.at_frame:
                    if fault.kind == "wait":
                        hold(fault, self._stopped)
                    else:
                        raise RuntimeError(f"injected fault in chunk {chunk.index} at frame {i}")
            if self._stopped():
                raise JobCancelled("job cancelled")

        return on_frame

    # -- the loop -----------------------------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.schedule.queue or self.running or self.seams)

    def step(self) -> None:
        self.schedule.check_leases()  # lost: stop before writing anything more
        self._check_late()
        if self._built:  # a chunk waits in the inbox for the first free lane of a built worker
            while (
                self.schedule.queue
                and len(self.running) < self._built * self.schedule.lanes
                and (chunk := self.schedule.next_chunk()) is not None
            ):
                self.running[chunk.index] = chunk
                with self._timing:
                    self.watchdog.start(chunk.index, time.monotonic())
                self._inbox.put(chunk)
        try:
            kind, chunk, result = self._outbox.get(timeout=0.5)
        except queue.Empty:
            return
        if kind == "start":
            if result is not None:
                raise JobError(f"a worker could not start: {result.__class__.__name__}: {result}") from result
            self._built += 1
        elif kind == "seam":
            assert chunk is not None
            self.seams.pop(chunk.index)
            if isinstance(result, BaseException):
                raise JobError(
                    f"the crossfade of the seam before chunk {chunk.index} failed: "
                    f"{result.__class__.__name__}: {result}"
                ) from result
            self.schedule.window_made(chunk, result)
        else:
            assert chunk is not None
            self.running.pop(chunk.index)
            with self._timing:
                self.watchdog.stop(chunk.index)
            if isinstance(result, JobCancelled):
                raise result
            if isinstance(result, BaseException):
                self.schedule.failed(chunk, f"{result.__class__.__name__}: {str(result).strip()[:300]}")
                return
            self.schedule.finished(chunk, result)
        self.launch_seams()

    def _check_late(self) -> None:
        """A chunk far past its time (:mod:`.watchdog`, ``--chunk-timeout``) hangs: a thread cannot
        be killed, so the job stops, naming it; its lane leaves at its next frame, if it ever gets
        there, and a resume dreams it again."""
        with self._timing:
            late = self.watchdog.late({i: c.dreamed for i, c in self.running.items()}, time.monotonic())
        if late:
            c = self.running[late[0]]
            raise JobError(
                f"chunk {c.index} (frames {c.first}–{c.end - 1}) did not finish within "
                f"{self.watchdog.limit(c.dreamed):.0f} s ({self.watchdog.why(c.dreamed)}); it may hang, and a "
                "thread of this process cannot be stopped, so the job stops here (--chunk-timeout sets the limit)"
            )

    def launch_seams(self) -> None:
        for c, files in self.schedule.seams_due(list(self.seams.values())):
            self.seams[c.index] = c
            self._seam_inbox.put((c, files))

    def stop(self) -> None:
        """End the lane and seam threads: a lane in a chunk leaves it at its next frame."""
        self._stopping.set()
        for _ in range(self.schedule.workers * self.schedule.lanes):
            self._inbox.put(_DONE)
        self._seam_inbox.put(_DONE)
        for thread in self._threads:
            thread.join(UNWIND)
        torch.set_num_threads(self._caller_threads)
        if self.schedule.layout.frames_to is not None:  # a chunk stopped mid-frame leaves its temp in the output folder
            sweep_temps(self.schedule.layout.frames_to)
