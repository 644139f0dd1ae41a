"""Chunks dreamed by Ray actors: one pass of a job over its chunks, driven from the job's thread.

The bookkeeping (queue, retries, ledger, seams due) is the :class:`~.schedule.Schedule`'s it
holds; this runner (a :class:`~.runner.ChunkRunner`) dreams the chunks on Ray actors.
:meth:`RayRunner.step` (called until nothing is left) hands chunks to free worker lanes, collects
what finished, launches the seam crossfades whose two sides exist, and keeps every wait bounded:
``ray.wait`` returns at least twice a second, a chunk far past its time (:mod:`.watchdog`) is
killed and retried, a worker Ray cannot reach is given its chunk again and replaced if that
repeats, a worker that cannot start fails the job after a bounded number of tries, seams must
finish within the watchdog's time once the workers are gone, and a lost lease stops the job.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from ..chunking import Chunk
from ..errors import JobError
from ..video.naming import sweep_temps
from .faults import Fault
from .pool import WorkerPool, cause_of
from .schedule import RunSummary, Schedule
from .watchdog import Watchdog
from .worker import DreamWorker, progress_counter, seam_task

__all__ = ["RayRunner"]


class RayRunner:
    """Chunks dreamed by Ray actors, one per worker: the schedule, the workers and what each is doing."""

    pool: WorkerPool  # made by start()
    watchdog: Watchdog

    def __init__(self, schedule: Schedule, faults: tuple[Fault, ...] = ()) -> None:
        self.schedule = schedule
        self.faults = faults  # for tests of the failure paths
        self.running: dict[Any, tuple[Chunk, int, int]] = {}  # ref → chunk, slot, born
        self.seams: dict[Any, Chunk] = {}
        self.seam_deadline: float | None = None

    def start(self) -> None:
        """Put the video's index in the object store and start the workers (each counts once it answers)."""
        schedule = self.schedule
        p, options = schedule.prepared, schedule.options
        self.index_ref = ray.put(p.plan.index)
        self.progress = progress_counter()
        start_faults = tuple(f for f in self.faults if f.at_start)
        concurrency = schedule.lanes + 1 if schedule.lanes > 1 else 1  # a lane per call, and one more for pings

        def make() -> Any:
            # @ray.remote made DreamWorker an ActorClass; Ray's annotations keep the class's own type
            return DreamWorker.options(  # type: ignore[attr-defined]
                num_cpus=p.cpus,
                num_gpus=p.gpus,
                max_restarts=options.max_restarts,
                max_task_retries=0,
                max_concurrency=concurrency,
            ).remote(p.checked.config, p.device, p.threads, schedule.lanes, start_faults)

        self.pool = WorkerPool(
            make, schedule.workers, schedule.lanes, options.start_timeout, options.max_start_failures
        )
        longest = max(c.dreamed for c in p.plan.chunks)
        # until the job's first frame measures the pace: a minute a frame, at least half an hour
        self.watchdog = Watchdog(options.chunk_timeout, first_limit=max(1800.0, 60.0 * longest))

    def workers_up(self) -> tuple[int, int]:
        """(workers that have answered, workers asked for)."""
        return self.pool.answering(), len(self.pool.slots)

    def summary(self) -> RunSummary:
        return self.schedule.summary()

    def busy(self) -> bool:
        return bool(self.schedule.queue or self.running or self.seams)

    def step(self) -> None:
        self.schedule.check_leases()  # lost: stop before writing anything more
        self._dispatch()
        refs = list(self.running) + list(self.seams) + self.pool.pings()
        ready, _ = ray.wait(refs, num_returns=1, timeout=0.5) if refs else ([], [])
        self._count_progress()
        for ref in ready:
            if self.pool.owns(ref):
                self.pool.answered(ref)
            elif ref in self.seams:
                self._seam_done(ref)
            elif ref in self.running:
                self._chunk_done(ref)
        self._watchdog()
        self.pool.check_starts()
        if not self.schedule.queue and not self.running:
            self.pool.retire_idle()  # their CPUs are the seam tasks' now
        elif self.schedule.queue:
            self.pool.revive()

    def stop(self) -> None:
        for ref in list(self.running) + list(self.seams):
            ray.cancel(ref, force=False)
        self.pool.shutdown()
        if self.schedule.layout.frames_to is not None:  # a worker killed mid-frame leaves its temp in the output folder
            sweep_temps(self.schedule.layout.frames_to)

    # -- chunks -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self.schedule.queue and self.pool.idle:
            chunk = self.schedule.next_chunk()
            if chunk is None:
                return  # every queued chunk waits for its predecessor's carried state
            slot = self.pool.take()
            assert slot is not None
            attempt = self.schedule.attempts[chunk.index] - 1
            ref = self.pool.actor(slot).render_chunk.remote(
                self.index_ref, chunk, self.schedule.workdir, attempt, self.progress, self.faults, self.schedule.layout
            )
            self.running[ref] = (chunk, slot, self.pool.incarnation(slot))
            self.watchdog.start(chunk.index, time.monotonic())

    def _count_progress(self) -> None:
        try:
            frames = ray.get(self.progress.take.remote(), timeout=10)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):  # lost with its node
            self.progress = progress_counter()
            return
        now = time.monotonic()
        for index, n in frames.items():
            self.watchdog.progress(index, n, now)
        self.schedule.board.add_done_frames(sum(frames.values()))

    def _chunk_done(self, ref: Any) -> None:
        chunk, slot, born = self.running.pop(ref)
        self.watchdog.stop(chunk.index)
        try:
            record = ray.get(ref)
        except ray.exceptions.ActorUnavailableError as exc:  # a live worker Ray could not reach, for now
            self.pool.unreachable(slot, born)
            self.schedule.failed(chunk, f"worker unreachable ({cause_of(exc)})")
            return
        except ray.exceptions.RayTaskError as exc:
            self.pool.give_back(slot)
            self.schedule.failed(chunk, cause_of(exc))
            return
        except ray.exceptions.RayActorError as exc:
            self.pool.lost(slot, born)
            self.schedule.failed(chunk, f"worker died ({exc.__class__.__name__})")
            return
        self.pool.give_back(slot)
        self.schedule.finished(chunk, record)
        self.launch_seams()

    def _watchdog(self) -> None:
        """A chunk far past its time is on a lost or hung worker: kill the worker, retry the chunk."""
        now = time.monotonic()
        frames = {chunk.index: chunk.dreamed for chunk, _, _ in self.running.values()}
        late = set(self.watchdog.late(frames, now))
        for ref, (chunk, slot, born) in list(self.running.items()):
            if chunk.index in late:
                self.running.pop(ref)
                self.watchdog.stop(chunk.index)
                self.pool.kill(slot, born)  # its other lanes fail with it
                self.pool.lost(slot, born)
                self.schedule.failed(
                    chunk,
                    f"no answer after {self.watchdog.limit(chunk.dreamed):.0f} s (watchdog: "
                    f"{self.watchdog.why(chunk.dreamed)}); --chunk-timeout sets the limit",
                )
        if self.seams and not self.schedule.queue and not self.running:
            limit = self.watchdog.limit(max(c.lead_in for c in self.seams.values()))
            self.seam_deadline = self.seam_deadline or now + limit
            if now > self.seam_deadline:
                late_seams = sorted(c.index for c in self.seams.values())
                raise JobError(f"seam crossfades of chunks {late_seams} did not finish within {limit:.0f} s")

    # -- seams --------------------------------------------------------------------------------

    def launch_seams(self) -> None:
        for c, (side_a, side_b, window) in self.schedule.seams_due(list(self.seams.values())):
            ref = seam_task.options(max_retries=2).remote(
                side_a, side_b, window, self.schedule.encoding, self.index_ref, c.lead_in, c.first
            )
            self.seams[ref] = c

    def _seam_done(self, ref: Any) -> None:
        c = self.seams.pop(ref)
        try:
            fingerprint = ray.get(ref)
        except ray.exceptions.RayError as exc:  # a full disk, a damaged side: say which window
            raise JobError(f"the crossfade of the seam before chunk {c.index} failed: {cause_of(exc)}") from None
        self.schedule.window_made(c, fingerprint)
