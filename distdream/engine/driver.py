"""The driver: a :class:`Job` plans, checks, locks its work directory, and runs the chunk loop.

The loop (:meth:`_Run.step`, called until nothing is left) hands chunks to free worker lanes,
collects what finished, launches the seam crossfades whose two sides exist, and keeps every wait
bounded: ``ray.wait`` returns at least twice a second, a chunk far past its time is killed by the
watchdog and retried, a worker that cannot start fails the job after a bounded number of tries,
and seams must finish within the watchdog's time once the workers are gone.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from .. import storage
from ..config import JobOptions, RenderConfig
from ..errors import ChunkFailed, JobCancelled, JobError
from ..plan import Chunk, plan_chunks
from ..video import VideoIndex
from .connect import connect, resources
from .pool import WorkerPool, cause_of
from .preflight import Checked, plan_record, preflight
from .records import ChunkState, ChunkStatus, JobPlan, JobResult, JobStatus
from .stitch import stitch
from .workdir import ChunkFiles, Ledger, WorkdirLock, differences, finished, settings_hash
from .worker import DreamWorker, progress_counter, scan_cuts_task, seam_task

__all__ = ["Job", "find_cuts", "job_chunks"]


# frames per cut-scan task: a task's start-up (a worker process importing torch, cv2 and PyAV)
# costs seconds, while a small frame's two flows cost milliseconds; long videos still spread
# over many tasks (a two-hour film at 24 fps: 346)
SCAN_SLICE = 500


def find_cuts(index: VideoIndex, config: RenderConfig, options: JobOptions, *,
              slice_frames: int = SCAN_SLICE) -> list[int]:
    """Scene cuts of the rendered range: scanned here when it is one slice long, else by Ray
    tasks in parallel (each decodes its own slice, from one frame before it)."""
    from ..pipeline import scan_cuts

    a, b = options.frame_range or (0, index.frame_count)
    step = max(slice_frames, 1)
    # each slice starts one frame early so that a cut on a slice boundary is seen
    slices = [(max(a, s - 1), min(b, s + step)) for s in range(a, b, step)]
    if len(slices) == 1:  # starting a task would take longer than the scan itself
        return scan_cuts(index, *slices[0], config)
    index_ref = ray.put(index)
    refs = [scan_cuts_task.remote(index_ref, start, end, config) for start, end in slices]
    limit = 600.0 + 2.0 * (b - a)  # decoding and two flows a frame: far below a second each
    try:
        parts = ray.get(refs, timeout=limit)
    except ray.exceptions.GetTimeoutError:
        raise JobError(f"the scene-cut scan did not finish within {limit:.0f} s; pass --no-scan-cuts") from None
    return sorted({c for part in parts for c in part})


def job_chunks(index: VideoIndex, config: RenderConfig, options: JobOptions, slots: int) -> list[Chunk]:
    """The chunks of a render for ``slots`` chunks at once (scanning for cuts on Ray when asked to)."""
    cuts = find_cuts(index, config, options) if options.scan_cuts else []
    return plan_chunks(index.frame_count, options.chunk_frames, options.overlap, cuts,
                       frame_range=options.frame_range, seed=config.dream.seed, seams=options.seams, slots=slots)


@dataclass
class _Prepared:
    plan: JobPlan
    checked: Checked
    ledger: Ledger
    lock: WorkdirLock
    device: str
    workers: int
    cpus: float
    gpus: float
    threads: int
    lanes: int


class Job:
    """A render running on Ray (started by :func:`~distdream.engine.submit`)."""

    def __init__(self, input: str, output: str, config: RenderConfig, options: JobOptions) -> None:
        self.input, self.output = input, output
        self.config, self.options = config, options
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._states: dict[int, ChunkState] = {}
        self._done_frames = 0
        self._total_frames = 0
        self._status = JobStatus.STARTING
        self._prepared: _Prepared | None = None
        self._result: JobResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="distdream-driver", daemon=True)
        self.workdir: Path | str | None = None  # known after preflight
        self.plan: JobPlan | None = None  # known once the job has started

    # -- public surface -----------------------------------------------------------------------

    def status(self) -> JobStatus:
        """starting, running, stitching, succeeded, failed or cancelled."""
        return self._status

    def progress(self) -> tuple[int, int]:
        """(frames dreamed, frames to dream), finished chunks from a resumed ledger included."""
        with self._lock:
            return self._done_frames, self._total_frames

    def chunks(self) -> list[ChunkState]:
        with self._lock:
            return [self._states[k] for k in sorted(self._states)]

    def done(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self._status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED) and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

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
        self._cancel.set()

    # -- start --------------------------------------------------------------------------------

    def _set(self, chunk: Chunk, state: ChunkStatus, attempts: int) -> None:
        with self._lock:
            self._states[chunk.index] = ChunkState(chunk.index, chunk.start, chunk.end, state, attempts)

    def _start(self) -> None:
        """Check everything in the caller's thread (bad input fails here, before Ray starts), connect
        (Ray's init wants the main thread), plan and lock, then hand the loop to the driver thread."""
        checked = preflight(self.input, self.output, self.config, self.options)
        self.workdir = checked.workdir
        connect(self.options.address, self.options.connect_timeout)
        self._prepared = self._prepare(checked)
        self.plan = self._prepared.plan
        self._thread.start()

    def _prepare(self, checked: Checked) -> _Prepared:
        workers, cpus, gpus, threads, device, lanes = resources(self.options)
        workdir = str(checked.workdir)
        plan_file = storage.join(workdir, "plan.json")
        storage.makedirs(workdir)
        lock = WorkdirLock(workdir)
        lock.acquire()  # before reading the plan: a second job must not even look
        try:
            saved = self._saved_plan(plan_file)
            if saved is not None and self.options.resume and isinstance(saved.get("chunks"), list):
                # resume re-plans nothing: the chunks stay (another worker count may plan other chains)
                chunks = [Chunk(**c) for c in saved["chunks"]]
            else:
                chunks = job_chunks(checked.index, self.config, self.options, workers * lanes)
            record = plan_record(self.input, checked, self.config, device, chunks)
            record["settings_hash"] = settings_hash(record)
            if saved is not None:
                self._check_resume(workdir, saved, record)
            for sub in ("chunks", "windows"):
                storage.makedirs(storage.join(workdir, sub))
            storage.write_text(plan_file, json.dumps(record | {"output": str(checked.output)}, indent=1,
                                                     sort_keys=True))
            ledger = Ledger.load(storage.join(workdir, "ledger.json"))
        except BaseException:
            lock.release()
            raise
        job_plan = JobPlan(str(self.input), checked.index, tuple(chunks), record["settings_hash"])
        return _Prepared(job_plan, checked, ledger, lock, device, workers, cpus, gpus, threads, lanes)

    @staticmethod
    def _saved_plan(plan_file: str) -> dict[str, Any] | None:
        if not storage.exists(plan_file):
            return None
        try:
            saved = json.loads(storage.read_text(plan_file))
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            raise JobError(f"{plan_file} is damaged; remove the work directory {storage.parent(plan_file)} to "
                           "start over")
        return saved

    def _check_resume(self, workdir: str, saved: dict[str, Any], record: dict[str, Any]) -> None:
        """Refuse a work directory of another render (naming what differs), or this one without --resume."""
        if saved.get("settings_hash") != record["settings_hash"]:
            diff = differences(saved, record) or ["the chunking or plan format"]
            raise JobError(f"work directory {workdir} holds another render; it differs in: {'; '.join(diff[:6])}"
                           + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
                           + ". Use another --workdir, or remove this one to start over")
        if not self.options.resume:
            raise JobError(f"work directory {workdir} holds this render already; pass --resume to continue it")

    # -- run ----------------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._prepared is not None
        try:
            self._result = self._drive(self._prepared)
            self._status = JobStatus.SUCCEEDED
        except JobCancelled as exc:
            self._status, self._error = JobStatus.CANCELLED, exc
        except OSError as exc:  # a full disk, a vanished mount: say which file, as a typed error
            where = f" {exc.filename}" if exc.filename else ""
            self._status = JobStatus.FAILED
            self._error = JobError(f"writing{where} failed: {exc.strerror or exc}; free space or fix the location, "
                                   "then resume")
        except BaseException as exc:
            self._status, self._error = JobStatus.FAILED, exc
        finally:
            self._prepared.lock.release()

    def _drive(self, p: _Prepared) -> JobResult:
        t_start = time.perf_counter()
        workdir = str(p.checked.workdir)
        chunks = p.plan.chunks
        done, windows = finished(workdir, chunks, p.ledger)
        with self._lock:
            self._total_frames = p.plan.dreamed_frames
            self._done_frames = sum(c.dreamed for c in chunks if c.index in done)
        for c in chunks:
            self._set(c, ChunkStatus.DONE if c.index in done else ChunkStatus.PENDING, 0)
        todo = [c for c in chunks if c.index not in done]
        workers = max(1, min(p.workers, len(todo))) if todo else 0
        lanes = max(1, min(p.lanes, -(-len(todo) // max(workers, 1))))  # no lane that could never get a chunk
        run = _Run(self, p, workdir, todo, done, windows, workers, lanes)
        self._status = JobStatus.RUNNING
        try:
            run.launch_seams()
            while run.busy():
                if self._cancel.is_set():
                    raise JobCancelled(f"job cancelled; finished chunks are kept in {workdir} (resume with --resume)")
                run.step()
        finally:
            run.stop()
        with self._lock:
            self._done_frames = self._total_frames
        self._status = JobStatus.STITCHING
        out = stitch(list(chunks), workdir, p.checked.output, p.plan.index,
                     keep_source_time=self.options.keep_source_time)
        if p.checked.owned_workdir:
            p.lock.release()
            storage.remove_tree(workdir)
        notes = set(run.notes) | ({p.ledger.note} if p.ledger.note else set())
        return JobResult(
            output=out, frames=p.plan.frames, chunks=len(chunks), rendered=run.rendered,
            seconds=time.perf_counter() - t_start, workdir=p.checked.workdir,
            lead_in_overhead=p.plan.lead_in_overhead, chunk_stats=tuple(run.stats), workers=workers, lanes=lanes,
            compute=run.compute, notes=tuple(sorted(notes)), largest_batch=run.largest_batch,
        )


@dataclass
class _Run:
    """One pass of the chunk loop: what is queued, running, done, and the workers doing it."""

    job: Job
    prepared: _Prepared
    workdir: str
    queue: list[Chunk]
    done: set[int]
    windows: set[int]
    workers: int
    lanes: int
    running: dict[Any, tuple[Chunk, int, float, int]] = field(default_factory=dict)  # ref → chunk, slot, start, born
    seams: dict[Any, Chunk] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)
    rendered: int = 0
    compute: str = ""
    largest_batch: int = 0
    seam_deadline: float | None = None

    def __post_init__(self) -> None:
        p, options = self.prepared, self.job.options
        self.by_index = {c.index: c for c in p.plan.chunks}
        # chunks left in each chunk's chain from it on: the scheduler starts long chains first
        self.chain_rest: dict[int, int] = {}
        for c in reversed(p.plan.chunks):
            self.chain_rest[c.index] = 1 + (self.chain_rest.get(c.index + 1, 0) if c.hands_off else 0)
        self.index_ref = ray.put(p.plan.index)
        self.progress = progress_counter()
        self.settings = self.job.config.encoder
        start_faults = tuple(f for f in options.inject_faults if f.at_start)
        concurrency = self.lanes + 1 if self.lanes > 1 else 1  # a lane per call, and one more for pings

        def make() -> Any:
            return DreamWorker.options(num_cpus=p.cpus, num_gpus=p.gpus, max_restarts=options.max_restarts,
                                       max_task_retries=0, max_concurrency=concurrency).remote(
                self.job.config, p.device, p.threads, self.lanes, start_faults)

        self.pool = WorkerPool(make, self.workers, self.lanes, options.start_timeout, options.max_start_failures)
        longest = max(c.dreamed for c in p.plan.chunks)
        # lanes share one device, so each chunk of a worker with N lanes may take N times as long
        self.timeout = options.chunk_timeout or self.lanes * max(600.0, 60.0 * longest)

    def busy(self) -> bool:
        return bool(self.queue or self.running or self.seams)

    def step(self) -> None:
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
        if not self.queue and not self.running:
            self.pool.retire_idle()  # their CPUs are the seam tasks' now
        elif self.queue:
            self.pool.revive()

    def stop(self) -> None:
        for ref in list(self.running) + list(self.seams):
            ray.cancel(ref, force=False)
        self.pool.shutdown()

    # -- chunks -------------------------------------------------------------------------------

    def _ready(self) -> Chunk | None:
        """The queued chunk to start next: one whose handoff predecessor (if any) is done, from the
        chain with the most chunks left (long chains start first, single chunks fill the gaps in
        frame order)."""
        ready = [c for c in self.queue if c.begins != "handoff" or c.index - 1 in self.done]
        return max(ready, key=lambda c: (self.chain_rest[c.index], -c.index), default=None)

    def _dispatch(self) -> None:
        options = self.job.options
        while self.queue:
            chunk = self._ready()
            if chunk is None:
                return  # every queued chunk waits for its predecessor's carried state
            slot = self.pool.take()
            if slot is None:
                return
            self.queue.remove(chunk)
            attempt = self.attempts.get(chunk.index, 0)
            self.attempts[chunk.index] = attempt + 1
            ref = self.pool.actor(slot).render_chunk.remote(self.index_ref, chunk, self.workdir, attempt,
                                                           self.progress, options.inject_faults)
            self.running[ref] = (chunk, slot, time.monotonic(), self.pool.incarnation(slot))
            self.job._set(chunk, ChunkStatus.RUNNING, attempt + 1)

    def _count_progress(self) -> None:
        try:
            n = ray.get(self.progress.take.remote(), timeout=10)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):  # lost with its node
            self.progress = progress_counter()
            return
        with self.job._lock:
            self.job._done_frames += n

    def _fail(self, chunk: Chunk, cause: str) -> None:
        n = self.attempts[chunk.index]
        if n >= self.job.options.max_attempts:
            self.job._set(chunk, ChunkStatus.FAILED, n)
            raise ChunkFailed(chunk.index, (chunk.start, chunk.end), n, cause)
        self.job._set(chunk, ChunkStatus.PENDING, n)
        self.queue.insert(0, chunk)

    def _chunk_done(self, ref: Any) -> None:
        chunk, slot, _, born = self.running.pop(ref)
        try:
            record = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            self.pool.give_back(slot)
            self._fail(chunk, cause_of(exc))
            return
        except ray.exceptions.RayActorError as exc:
            self.pool.lost(slot, born)
            self._fail(chunk, f"worker died ({exc.__class__.__name__})")
            return
        self.pool.give_back(slot)
        self.done.add(chunk.index)
        self.rendered += 1
        self.stats.append(record["stats"])
        self.compute = self.compute or record.get("compute", "")
        self.largest_batch = max(self.largest_batch, record.get("batch", 1))
        self.notes.update(record.get("notes", []))
        self.prepared.ledger.add("chunks", chunk.name, {
            "frames": chunk.dreamed, "stats": record["stats"], "host": record["host"], "node": record["node"],
            "fingerprints": record.get("fingerprints", {}),
        })
        self.job._set(chunk, ChunkStatus.DONE, self.attempts[chunk.index])
        self.launch_seams()

    def _watchdog(self) -> None:
        """A chunk far past its time is on a lost or hung worker: kill the worker, retry the chunk."""
        now = time.monotonic()
        for ref, (chunk, slot, started, born) in list(self.running.items()):
            if now - started > self.timeout:
                self.running.pop(ref)
                self.pool.kill(slot, born)  # its other lanes fail with it
                self.pool.lost(slot, born)
                self._fail(chunk, f"no answer after {self.timeout:.0f} s (watchdog)")
        if self.seams and not self.queue and not self.running:
            self.seam_deadline = self.seam_deadline or now + self.timeout
            if now > self.seam_deadline:
                late = sorted(c.index for c in self.seams.values())
                raise JobError(f"seam crossfades of chunks {late} did not finish within {self.timeout:.0f} s")

    # -- seams --------------------------------------------------------------------------------

    def launch_seams(self) -> None:
        for c in self.prepared.plan.chunks:
            if (c.lead_in and c.index not in self.windows and c.index in self.done and c.index - 1 in self.done
                    and c not in self.seams.values()):
                side_a, side_b, window = ChunkFiles.window_sides(self.workdir, self.by_index[c.index - 1], c)
                ref = seam_task.options(max_retries=2).remote(side_a, side_b, window, self.settings, self.index_ref,
                                                              c.lead_in, c.first)
                self.seams[ref] = c

    def _seam_done(self, ref: Any) -> None:
        c = self.seams.pop(ref)
        try:
            fingerprint = ray.get(ref)
        except ray.exceptions.RayError as exc:  # a full disk, a damaged side: say which window
            raise JobError(f"the crossfade of the seam before chunk {c.index} failed: {cause_of(exc)}") from None
        window = ChunkFiles(self.workdir, c).window
        self.prepared.ledger.add("windows", c.name, {"frames": c.lead_in, "fingerprints": {window: fingerprint}})
        self.windows.add(c.index)

