"""A :class:`Job`: it checks, plans, takes the leases on its work directory and on its output's
files, runs the chunk loop on a thread of its own, and stitches the result.

Where the chunks run is decided here: in this process (:mod:`.local`, workers as threads) or on Ray
(:mod:`.loop`), by :func:`~.sizing.in_process`. Ray is imported only on that
path (importing it costs a second of every start, starting it several more).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import storage
from ..chunking import Chunk, plan_chunks
from ..config import JobOptions, RenderConfig
from ..errors import JobCancelled, JobError
from ..pipeline import scan_cuts
from ..video import VideoIndex, frame_file
from ..video.naming import existing_numbers, family, sweep_temps
from .board import Board
from .faults import Fault, checked_faults, hold, join_faults
from .lease import Lease
from .local import LocalLoop
from .preflight import Checked, plan_record, preflight
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus, Phase
from .schedule import Prepared, Schedule
from .sizing import (
    Sizing,
    chunk_slots,
    in_process,
    local_totals,
    size_workers,
    workers_here,
)
from .stitch import stitch
from .workdir import Ledger, differences, finished, settings_hash, workdir_lease

__all__ = ["Job", "find_cuts", "job_chunks", "on_ray"]


# frames per cut-scan task: a task's start-up (a worker process importing torch, cv2 and PyAV)
# costs seconds, while a small frame's two flows cost milliseconds; long videos still spread
# over many tasks (a two-hour film at 24 fps: 346)
SCAN_SLICE = 500
# the fewest frames a scan thread of this process takes (each opens the video and seeks)
LOCAL_SCAN_SLICE = 60
# how long a stop waits for a join that is publishing the output (a rename, or an upload to object
# storage), past the stop's own wait: it ends what it began, holding the leases
PUBLISH_WAIT = 300.0


def on_ray() -> bool:
    """Whether this process is connected to Ray already (without importing it if it is not)."""
    ray = sys.modules.get("ray")
    initialized = getattr(ray, "is_initialized", None)  # None too while another thread imports it
    return initialized is not None and initialized()


def scan_slices(index: VideoIndex, options: JobOptions, slice_frames: int = SCAN_SLICE) -> list[tuple[int, int]]:
    """The rendered range cut into scan slices, each from one frame before it (a cut on a slice
    boundary is seen)."""
    a, b = options.frame_range or (0, index.frame_count)
    step = max(slice_frames, 1)
    return [(max(a, s - 1), min(b, s + step)) for s in range(a, b, step)]


def find_cuts(
    index: VideoIndex,
    config: RenderConfig,
    options: JobOptions,
    *,
    slice_frames: int = SCAN_SLICE,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Scene cuts of the rendered range: by Ray tasks in parallel when this process is on Ray and
    the range is more than one slice, else here, on a thread per CPU (decoding and flow leave the
    GIL). ``progress(n)`` hears of frames scanned."""
    slices = scan_slices(index, options, slice_frames)
    tell = progress or (lambda _n: None)
    if len(slices) > 1 and on_ray():
        from .worker import scan_on_ray  # Ray's side (see the module docstring)

        return scan_on_ray(index, slices, config, tell)
    # here: one slice (starting a task would take longer than the scan itself), or no Ray
    frames = sum(b - a for a, b in slices)
    threads = max(1, min(os.cpu_count() or 1, frames // LOCAL_SCAN_SLICE))
    local = scan_slices(index, options, -(-frames // threads))
    lock = threading.Lock()

    def told(n: int) -> None:
        with lock:
            tell(n)

    with ThreadPoolExecutor(threads, thread_name_prefix="distdream-scan") as pool:
        found = pool.map(lambda s: scan_cuts(index, s[0], s[1], config, told), local)
        return sorted({c for cuts in found for c in cuts})


def job_chunks(
    index: VideoIndex,
    config: RenderConfig,
    options: JobOptions,
    slots: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Chunk]:
    """The chunks of a render for ``slots`` chunks at once (scanning for cuts first when asked to).
    The scan runs even for one slot: a chunk that begins on a cut is seeded by its start, so the
    frames do not depend on the worker count."""
    cuts = find_cuts(index, config, options, progress=progress) if options.scan_cuts else []
    return plan_chunks(
        index.frame_count,
        options.chunk_frames,
        options.overlap,
        cuts,
        frame_range=options.frame_range,
        seed=config.dream.seed,
        seams=options.seams,
        slots=slots,
    )


class Job:
    """A render running on Ray (started by :func:`~distdream.engine.submit`)."""

    def __init__(
        self,
        input: str,
        output: str,
        config: RenderConfig,
        options: JobOptions,
        *,
        on_phase: Callable[[Phase], None] | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        self.input, self.output = input, output
        # a testing aid (engine.faults): such a job runs on Ray, unless told ray="never"
        self.faults = checked_faults(faults, in_process=options.ray == "never")
        self._on_phase = on_phase
        self._phase = Phase("starting")
        self._loop: Schedule | None = None
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
        self.workdir: Path | str | None = None  # known after preflight
        self.plan: JobPlan | None = None  # known once the job has started
        self.waiting: str | None = None  # what the job waits for before it can start its workers
        self.in_process: bool | None = None  # known once the job has started: no Ray (see the module docstring)

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
        self._prepared = self._prepare(checked)
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

    def _sizing(self) -> Sizing:
        if on_ray():
            from .cluster import resources

            return resources(self.options)
        return size_workers(self.options, *local_totals())

    def _in_process(self, sizing: Sizing, chunks: list[Chunk] | None) -> bool:
        if self.faults and self.options.ray != "never":
            return False
        return in_process(self.options, sizing, None if chunks is None else len(chunks), on_ray())

    def _plan(self, checked: Checked, sizing: Sizing) -> tuple[list[Chunk], bool]:
        """The chunks, and whether they run in this process. Where Ray will be needed and the scan
        runs here (one slice), Ray starts (in this thread: its processes end with the thread that
        started them) while a helper thread scans."""
        in_process = self._in_process(sizing, None)
        options = self.options
        slices = scan_slices(checked.index, options)
        slots = chunk_slots(options, sizing, on_ray())
        scanned_here = options.scan_cuts
        frames = sum(b - a for a, b in slices)
        ray_ahead = not in_process and not on_ray() and frames > options.chunk_frames  # more than one chunk
        if ray_ahead and scanned_here and len(slices) > 1:
            self._connect()  # scan on Ray, in parallel
            sizing = self._sizing()
        scanned = [0]
        quiet = threading.Event()  # set while Ray starts: its phase is the one shown

        def scanning(n: int) -> None:
            scanned[0] += n
            if not quiet.is_set():
                self._set_phase(Phase("scanning cuts", scanned[0], frames))

        def plan() -> list[Chunk]:
            return job_chunks(checked.index, checked.config, options, slots, progress=scanning)

        if ray_ahead and not on_ray():
            quiet.set()
            chunks = self._plan_while_ray_starts(plan)
        else:
            if scanned_here:
                scanning(0)
            chunks = plan()
        return chunks, in_process or self._in_process(sizing, chunks)

    def _plan_while_ray_starts(self, plan: Callable[[], list[Chunk]]) -> list[Chunk]:
        """Plan (the cut scan) on a helper thread while this thread starts Ray."""
        made: list[list[Chunk] | BaseException] = []

        def body() -> None:
            try:
                made.append(plan())
            except BaseException as exc:  # raised here, in the caller's thread
                made.append(exc)

        helper = threading.Thread(target=body, name="distdream-plan", daemon=True)
        helper.start()
        self._connect("scanning cuts meanwhile")  # if this fails (or is stopped), the scan ends with the process
        helper.join()
        if isinstance(made[0], BaseException):
            raise made[0]
        return made[0]

    def _leases(self, checked: Checked) -> tuple[Lease, ...]:
        """Take the work directory's lease and the output's: one lock for every output that can
        name the same files (``.d.#.png.lock`` for ``d.%04d.png`` and ``d.%d.png``, which share
        ``d.1000.png`` onward; ``.out.mp4.lock`` for ``out.mp4``). They cancel the job if lost."""

        def lost(_why: str) -> None:
            self._board.stop.set()

        taken: list[Lease] = []
        shared = family(str(checked.output))
        wanted = [
            workdir_lease(str(checked.workdir), unsafe_ok=self.options.unsafe_lock, on_lost=lost),
            Lease(
                storage.join(storage.parent(shared), f".{storage.name_of(shared)}.lock"),
                f"output {checked.output}",
                unsafe_ok=self.options.unsafe_lock,
                on_lost=lost,
            ),
        ]
        try:
            for lease in wanted:
                lease.acquire()
                taken.append(lease)
        except BaseException:
            for lease in taken:
                lease.release()
            raise
        return tuple(taken)

    def _prepare(self, checked: Checked) -> Prepared:
        workdir = str(checked.workdir)
        plan_file = storage.join(workdir, "plan.json")
        storage.makedirs(workdir)
        leases = self._leases(checked)  # before reading the plan: a second job must not even look
        try:
            sizing = self._sizing()
            saved = self._saved_plan(plan_file)
            if saved is not None and self.options.resume and isinstance(saved.get("chunks"), list):
                # resume re-plans nothing: the chunks stay (another worker count may plan other chains)
                chunks = [Chunk(**c) for c in saved["chunks"]]
                in_process = self._in_process(sizing, chunks)
            else:
                chunks, in_process = self._plan(checked, sizing)
            if in_process:
                workers = 1 if len(chunks) == 1 or sizing.device != "cpu" else sizing.workers  # see chunk_slots
                sizing = workers_here(
                    self.options,
                    replace(sizing, workers=workers),
                    local_totals()[0],
                    checked.index.width * checked.index.height,
                )
            else:
                self._connect()
                sizing = self._sizing()
            record = plan_record(self.input, checked, checked.config, sizing.device, chunks)
            record["settings_hash"] = settings_hash(record)
            if saved is not None:
                self._check_resume(workdir, saved, record)
            for sub in ("chunks", "windows"):
                storage.makedirs(storage.join(workdir, sub))
            storage.write_text(
                plan_file, json.dumps(record | {"output": str(checked.output)}, indent=1, sort_keys=True)
            )
            ledger = Ledger.load(storage.join(workdir, "ledger.json"))
        except BaseException:
            for lease in leases:
                lease.release()
            raise
        job_plan = JobPlan(str(self.input), checked.index, tuple(chunks), record["settings_hash"])
        return Prepared(
            job_plan,
            checked,
            ledger,
            leases,
            sizing.device,
            sizing.workers,
            sizing.cpus,
            sizing.gpus,
            sizing.threads,
            sizing.lanes,
            in_process=in_process,
            model=checked.model,
        )

    @staticmethod
    def _saved_plan(plan_file: str) -> dict[str, Any] | None:
        if not storage.exists(plan_file):
            return None
        try:
            saved = json.loads(storage.read_text(plan_file))
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            raise JobError(
                f"{plan_file} is damaged; remove the work directory {storage.parent(plan_file)} to start over"
            )
        return saved

    def _check_resume(self, workdir: str, saved: dict[str, Any], record: dict[str, Any]) -> None:
        """Refuse a work directory of another render (naming what differs), or this one without --resume."""
        if saved.get("settings_hash") != record["settings_hash"]:
            diff = differences(saved, record) or ["the chunking or plan format"]
            raise JobError(
                f"work directory {workdir} holds another render; it differs in: {'; '.join(diff[:6])}"
                + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
                + ". Use another --workdir, or remove this one to start over"
            )
        if not self.options.resume:
            raise JobError(f"work directory {workdir} holds this render already; pass --resume to continue it")

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

    def _start_loop(
        self, p: Prepared, todo: list[Chunk], done: set[int], windows: set[int], workers: int, lanes: int
    ) -> Schedule:
        """The chunk loop: in this process, or on Ray once a node can host a worker."""
        where = "in this process" if p.in_process else "on Ray"
        self._set_phase(
            Phase("starting workers", 0, workers if todo else 0, f"{workers} worker(s) × {lanes} lane(s) {where}")
        )
        run = (self._board, self.options, p, str(p.checked.workdir), todo, done, windows, workers, lanes)
        if p.in_process:
            return LocalLoop(*run, faults=self.faults)
        from .cluster import wait_for_resources  # Ray's side (see the module docstring)
        from .loop import ChunkLoop

        if todo:
            wait = self.options.resource_wait
            if wait is None:  # a local instance of our own gets no nodes later; a cluster may autoscale
                wait = 600.0 if self.options.address not in (None, "", "local") else 0.0
            wait_for_resources(p.cpus, p.gpus, wait, self._board.stop, on_wait=self._waiting)
        return ChunkLoop(*run, faults=self.faults)

    def _join_check(self, workdir: str) -> Callable[[], None]:
        """What the join runs between packets: a stop abandons it (the output untouched, the
        finished chunks kept), up to its last check."""
        held = join_faults(self.faults, "join-wait")

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
        for fault in join_faults(self.faults, "publish-wait"):
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
        run = self._loop = self._start_loop(p, todo, done, windows, workers, lanes)
        self._status = JobStatus.RUNNING
        try:
            run.launch_seams()
            while run.busy():
                if self._board.cancelled():
                    raise JobCancelled(f"job cancelled; finished chunks are kept in {workdir} (resume with --resume)")
                run.step()
        finally:
            if self._board.cancelled():
                for fault in join_faults(self.faults, "stop-wait"):
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
        notes = set(run.notes) | ({p.ledger.note} if p.ledger.note else set())
        if p.checked.layout.frames_to is not None and p.plan.index.audio:
            notes.add("the input's audio is not written: an image sequence holds pictures only")
        return JobResult(
            output=out,
            frames=p.plan.frames,
            chunks=len(chunks),
            rendered=run.rendered,
            seconds=time.perf_counter() - t_start,
            workdir=p.checked.workdir,
            lead_in_overhead=p.plan.lead_in_overhead,
            chunk_stats=tuple(run.stats),
            workers=workers,
            lanes=lanes,
            compute=run.compute,
            notes=tuple(sorted(notes)),
            largest_batch=run.largest_batch,
        )
