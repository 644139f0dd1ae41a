"""A :class:`Job`: the handle a caller holds, the run on a thread of its own, and the drive.

:meth:`Job.start` checks (:mod:`.preflight`), plans and locks (:mod:`.prepare`, :mod:`.plan`) in
the caller's thread; the driver thread then drives a chunk runner (:mod:`.runner`): threads of
this process (:mod:`.thread_runner`) or Ray actors (:mod:`.ray_runner`), as
:func:`~.sizing.in_process` decided, and stitches the result. Ray is imported only on that path
(importing it costs a second of every start, starting it several more).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import storage
from ..config import RenderConfig
from ..errors import JobCancelled, JobError
from ..options import JobOptions
from ..video import frame_file
from ..video.naming import existing_numbers, sweep_temps
from .board import Board
from .faults import Fault, hold, join_faults
from .planning import Planner, on_ray
from .preflight import preflight
from .prepare import Prepared, prepare
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus, Phase
from .runner import ChunkRunner
from .schedule import Schedule
from .stitch import stitch
from .thread_runner import ThreadRunner
from .workdir import finished

__all__ = ["Job"]


# how long a stop waits for a join that is publishing the output (a rename, or an upload to object
# storage), past the stop's own wait: it ends what it began, holding the leases
PUBLISH_WAIT = 300.0


class Job:
    """A render started by :func:`~distdream.engine.submit`: its state, its progress and its result."""

    def __init__(
        self,
        input: str,
        output: str,
        config: RenderConfig,
        options: JobOptions,
        *,
        on_phase: Callable[[Phase], None] | None = None,
    ) -> None:
        self.input, self.output = input, output
        self._faults: tuple[Fault, ...] = ()  # failures a test injects (engine.testing.FaultyJob)
        self._on_phase = on_phase
        self._phase = Phase("starting")
        self._loop: ChunkRunner | None = None
        self.config, self.options = config, options
        self._board = Board()
        self._status = JobStatus.STARTING
        self._prepared: Prepared | None = None
        self._result: JobResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="distdream-driver", daemon=True)
        # set when _run has ended; not Thread.join, which a signal's exception can leave saying a
        # running thread ended (CPython 3.11, _wait_for_tstate_lock)
        self._ended = threading.Event()
        self._publishing = threading.Event()  # past the join's last check: the output is being published
        self.workdir: Path | str | None = None
        """The work directory: chunks, ledger and plan (known once the job has been checked)."""
        self.plan: JobPlan | None = None
        """The job's plan (known once the job has started)."""
        self.waiting: str | None = None
        """What the job waits for before it can start its workers (a node with a free GPU), if anything."""
        self.in_process: bool | None = None
        """Whether the workers are threads of this process rather than Ray actors (known once started)."""

    # -- public surface -----------------------------------------------------------------------

    def status(self) -> JobStatus:
        """starting, running, stitching, succeeded, failed or cancelled."""
        return self._status

    def phase(self) -> Phase:
        """What the job is doing now (probing, scanning cuts n/N, starting workers n/N, dreaming, joining)."""
        if self._phase.name == "starting workers" and self._loop is not None:
            up, asked = self._loop.workers_up()
            if up >= asked:
                self._set_phase(Phase("dreaming", detail=self._phase.detail))
            elif up != self._phase.done:
                self._set_phase(Phase("starting workers", up, asked, self._phase.detail))
        return self._phase

    def _set_phase(self, phase: Phase) -> None:
        self._phase = phase
        if self._on_phase is not None:
            self._on_phase(phase)

    def cancelled(self) -> bool:
        """Whether the job was asked to stop (cancel, a stop, or a lost lease)."""
        return self._board.cancelled()

    def progress(self) -> tuple[int, int]:
        """(frames dreamed, frames to dream), finished chunks from a resumed ledger included."""
        return self._board.progress()

    def chunks(self) -> list[ChunkState]:
        """Every chunk of the plan, with its state and the attempts made at it."""
        return self._board.chunks()

    def done(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self._ended.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        return self._ended.wait(timeout)

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the job; returns its result or raises what stopped it."""
        if not self.wait(timeout):
            raise TimeoutError(f"job still {self._status} after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop the job: in-flight chunks are abandoned, finished ones stay for a resume."""
        self._board.stop.set()

    def stop(self, timeout: float) -> bool:
        """Cancel and wait up to ``timeout`` seconds for the job to wind down; whether it did. A
        join that is already publishing the output is not abandoned halfway: the wait extends
        until it has (up to ``PUBLISH_WAIT`` more), and the job ends succeeded. If the job did not
        end (a Ray call that hangs because the cluster went down with the signal that stopped
        us), its leases are released here, unless it is publishing: the process is about to exit,
        and a resume must not find the work directory locked."""
        self.cancel()
        if self.wait(timeout):
            return True
        if self._publishing.is_set():
            return self.wait(PUBLISH_WAIT)  # holding the leases: the output is not ours to give up yet
        for lease in self._prepared.leases if self._prepared is not None else ():
            lease.release()
        return False

    def follow(
        self,
        on_progress: Callable[[Job], None] | None = None,
        stop_wait: float = 10.0,
        on_stop: Callable[[KeyboardInterrupt], None] | None = None,
    ) -> JobResult:
        """Wait for the job, calling ``on_progress(job)`` every quarter second, and return its
        result. A ``KeyboardInterrupt`` (Ctrl-C, or a stop signal under
        :func:`~distdream.stops.signals_stop`) is passed to ``on_stop`` at once, stops the job
        within ``stop_wait`` seconds, finished chunks kept, and is raised again; unless it came
        as the output was being published: then the job finishes, and its result is returned
        (:meth:`cancelled` says a stop came)."""
        try:
            while not self.wait(0.25):
                if on_progress is not None:
                    on_progress(self)
        except KeyboardInterrupt as exc:
            if on_stop is not None:
                on_stop(exc)
            self.stop(stop_wait)
            if self._status is not JobStatus.SUCCEEDED:
                raise
        return self.result()

    # -- start --------------------------------------------------------------------------------

    def start(self) -> None:
        """Check everything in the caller's thread (bad input fails here, before Ray starts), plan
        and lock, connect to Ray if the job runs there (Ray's init wants the main thread), then hand
        the loop to the driver thread. :func:`~distdream.engine.submit` calls it, once."""
        self._set_phase(Phase("probing", detail=str(self.input)))
        checked = preflight(
            self.input, self.output, self.config, self.options, on_step=lambda what: self._set_phase(Phase(what))
        )
        self.workdir = checked.workdir
        if self.options.address or self.options.ray == "always":
            self._connect()
        planner = Planner(
            self.options, bool(self._faults) and self.options.ray != "never", self._connect, self._set_phase
        )
        self._prepared = prepare(self.input, checked, planner, on_lost=lambda _why: self._board.stop.set())
        self.plan = self._prepared.plan
        self.in_process = self._prepared.in_process
        # in the caller's thread, before the loop's: a display shows the plan before the workers start
        self._set_phase(Phase("planned", detail=self.plan.describe()))
        self._thread.start()

    def _connect(self, meanwhile: str = "") -> None:
        from .cluster import connect  # Ray's side (see the module docstring)

        if not on_ray():
            where = f"at {self.options.address}" if self.options.address else "a local instance"
            self._set_phase(Phase("starting Ray", detail=f"({where}{'; ' + meanwhile if meanwhile else ''})"))
        connect(self.options.address, self.options.connect_timeout)

    # -- run ----------------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._prepared is not None
        try:
            self._result = self._drive(self._prepared)
            self._status = JobStatus.SUCCEEDED
        except JobCancelled as exc:
            lost = next((lease.lost for lease in self._prepared.leases if lease.lost), None)
            self._status = JobStatus.FAILED if lost else JobStatus.CANCELLED
            self._error = JobError(f"stopped: {lost}; finished chunks are kept for a resume") if lost else exc
        except OSError as exc:  # a full disk, a vanished mount: say which file, as a typed error
            where = f" {exc.filename}" if exc.filename else ""
            self._status = JobStatus.FAILED
            self._error = JobError(
                f"writing{where} failed: {exc.strerror or exc}; free space or fix the location, then resume"
            )
        except BaseException as exc:
            self._status, self._error = JobStatus.FAILED, exc
        finally:
            for lease in self._prepared.leases:
                lease.release()
            self._ended.set()

    def _waiting(self, what: str | None) -> None:
        self.waiting = what

    def _remove_stale_frames(self, p: Prepared) -> None:
        """``--overwrite``: the output's files outside the rendered range are another render's."""
        pattern, offset = str(p.checked.layout.frames_to), p.checked.layout.offset
        a, b = p.plan.chunks[0].start + offset, p.plan.chunks[-1].end + offset
        for number in existing_numbers(pattern):
            if not a <= number < b:
                storage.remove(frame_file(pattern, number))

    def _runner(self, p: Prepared, schedule: Schedule) -> ChunkRunner:
        """The chunk runner: threads of this process, or Ray actors once a node can host a worker."""
        where = "in this process" if p.in_process else "on Ray"
        workers, lanes = schedule.workers, schedule.lanes
        self._set_phase(
            Phase(
                "starting workers",
                0,
                workers if schedule.queue else 0,
                f"{workers} worker(s) × {lanes} lane(s) {where}",
            )
        )
        if p.in_process:
            return ThreadRunner(schedule, self._faults)
        from .cluster import wait_for_resources  # Ray's side (see the module docstring)
        from .ray_runner import RayRunner

        if schedule.queue:
            wait = self.options.resource_wait
            if wait is None:  # a local instance of our own gets no nodes later; a cluster may autoscale
                wait = 600.0 if self.options.address not in (None, "", "local") else 0.0
            wait_for_resources(p.cpus, p.gpus, wait, self._board.stop, on_wait=self._waiting)
        return RayRunner(schedule, self._faults)

    def _join_check(self, workdir: str) -> Callable[[], None]:
        """What the join runs between packets: a stop abandons it (the output untouched, the
        finished chunks kept), up to its last check."""
        held = join_faults(self._faults, "join-wait")

        def check() -> None:
            for fault in held:
                hold(fault, self._board.cancelled)
            if self._board.cancelled():
                raise JobCancelled(
                    f"job cancelled while joining; finished chunks are kept in {workdir} (resume with --resume)"
                )

        return check

    def _before_publish(self, p: Prepared, check: Callable[[], None]) -> None:
        """The join's last check: the job still runs and still owns its leases. From here on it
        finishes, a stop or not (:meth:`stop` waits for it)."""
        check()
        for lease in p.leases:
            lease.check()
        self._publishing.set()
        for fault in join_faults(self._faults, "publish-wait"):
            hold(fault)

    def _drive(self, p: Prepared) -> JobResult:
        t_start = time.perf_counter()
        workdir = str(p.checked.workdir)
        chunks = p.plan.chunks
        sweep_temps(str(p.checked.output))  # what a killed job left beside the output (its lease is ours)
        done, windows = finished(workdir, chunks, p.ledger, p.checked.layout)
        self._board.set_frames(sum(c.dreamed for c in chunks if c.index in done), p.plan.dreamed_frames)
        for c in chunks:
            self._board.mark(c, ChunkStatus.DONE if c.index in done else ChunkStatus.PENDING, 0)
        todo = [c for c in chunks if c.index not in done]
        workers = max(1, min(p.workers, len(todo))) if todo else 0
        lanes = max(1, min(p.lanes, -(-len(todo) // max(workers, 1))))  # no lane that could never get a chunk
        schedule = Schedule(self._board, self.options, p, workdir, todo, done, windows, workers, lanes)
        run = self._runner(p, schedule)
        run.start()
        self._loop = run
        self._status = JobStatus.RUNNING
        try:
            run.launch_seams()
            while run.busy():
                if self._board.cancelled():
                    raise JobCancelled(f"job cancelled; finished chunks are kept in {workdir} (resume with --resume)")
                run.step()
        finally:
            if self._board.cancelled():
                for fault in join_faults(self._faults, "stop-wait"):
                    hold(fault)
            run.stop()
        self._board.all_done()
        self._status = JobStatus.STITCHING
        self._set_phase(Phase("joining", 0, len(chunks), str(p.checked.output)))
        check = self._join_check(workdir)
        for lease in p.leases:
            lease.check()  # the output is published only by the job that still owns it
        out = stitch(
            list(chunks),
            workdir,
            p.checked.output,
            p.plan.index,
            keep_source_time=self.options.keep_source_time,
            layout=p.checked.layout,
            check=check,
            before_publish=lambda: self._before_publish(p, check),
        )
        if self.options.overwrite and p.checked.layout.frames_to is not None:
            self._remove_stale_frames(p)
        if p.checked.owned_workdir:
            p.leases[0].release()
            storage.remove_tree(workdir)
        summary = run.summary()
        notes = set(summary.notes) | ({p.ledger.note} if p.ledger.note else set())
        if p.checked.layout.frames_to is not None and p.plan.index.audio:
            notes.add("the input's audio is not written: an image sequence holds pictures only")
        return JobResult(
            output=out,
            frames=p.plan.frames,
            chunks=len(chunks),
            rendered=summary.rendered,
            seconds=time.perf_counter() - t_start,
            workdir=p.checked.workdir,
            lead_in_overhead=p.plan.lead_in_overhead,
            chunk_stats=summary.stats,
            workers=workers,
            lanes=lanes,
            compute=summary.compute,
            notes=tuple(sorted(notes)),
            largest_batch=summary.largest_batch,
        )
