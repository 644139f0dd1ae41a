"""The distributed engine: Ray actors dream chunks, seam tasks crossfade, the driver stitches.

The only module that imports ray. A job lives in a **work directory**:

    plan.json          the video index summary, the chunks, the settings and their hash
    ledger.json        finished chunks and windows, rewritten atomically (temp + rename)
    chunks/NNNNN.*.mp4 each chunk's lead-in, middle and tail (deterministic names)
    windows/NNNNN.mp4  each crossfaded seam window

Resume re-plans nothing: it keeps every chunk that is in the ledger *and* whose files exist with
the right frame counts, and refuses a work directory whose settings hash differs. Ray re-runs
work rather than running it exactly once, so every file is written to a temp name and renamed.

Failures: actors restart (``max_restarts``); a chunk whose worker died or raised is resubmitted
up to ``max_attempts``; a watchdog kills an actor whose chunk runs far past its time so a lost
node cannot hang the job; a chunk that fails every attempt fails the job with
:class:`~distdream.errors.ChunkFailed`, and the output path is never touched before the final
rename. Frames never travel through the driver or the object store: workers decode their own
range and write their own files; tasks return small records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray

from . import storage
from .config import RenderConfig
from .errors import ChunkFailed, ConfigError, JobCancelled, JobError, VideoError
from .paths import check_output_path
from .plan import Chunk, plan_chunks
from .stitch import LOSSLESS, ChunkFiles, crossfade, stitch
from .video import EncoderSettings, VideoIndex, probe

__all__ = [
    "Fault",
    "Job",
    "JobOptions",
    "JobPlan",
    "JobResult",
    "RemoteJobs",
    "plan",
    "render",
    "submission_id",
    "submit",
]

PLAN_VERSION = 1


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a worker (for tests of the failure paths).

    At frame offset ``at_frame`` of chunk ``chunk`` on the listed ``attempts`` (all when empty),
    the worker raises (``kind="raise"``), its process exits at once (``kind="exit"``), or it stops
    answering (``kind="hang"``, for the watchdog).
    """

    chunk: int
    at_frame: int = 0
    attempts: tuple[int, ...] = ()
    kind: str = "raise"


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """How a render is split and run. None of these change a pixel except the chunking ones."""

    workers: int | None = None  # default: one per GPU when the cluster has GPUs, else one per CPU
    gpus_per_worker: float | None = None  # default: 1 when the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0  # CPU workers get this many torch threads (rounded, at least 1)
    lanes: int | None = None  # chunks each worker dreams at once, as one batch; default: 8 on GPU, 1 on CPU
    chunk_frames: int = 120  # owned frames per chunk
    overlap: int = 8  # lead-in frames: dreamed by both neighbours and crossfaded
    frame_range: tuple[int, int] | None = None  # render only frames [a, b)
    workdir: str | None = None  # default: a hidden folder beside the output, removed on success
    resume: bool = False  # continue the job in workdir instead of refusing to touch it
    address: str | None = None  # an existing Ray cluster ("auto", "ray://…"); default: local
    max_attempts: int = 3  # tries per chunk before the job fails
    chunk_timeout: float | None = None  # watchdog seconds per attempt; default: generous estimate
    max_restarts: int = 3  # per actor
    snap_to_cuts: bool = False  # scan for scene cuts first (in parallel) and put chunk boundaries on them
    inject_faults: tuple[Fault, ...] = ()  # testing aid

    def validate(self) -> JobOptions:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers (--workers) is {self.workers}; it must be >= 1")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise ConfigError(f"gpus_per_worker (--gpus-per-worker) is {self.gpus_per_worker}; it must be >= 0")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"cpus_per_worker is {self.cpus_per_worker}; it must be > 0")
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts is {self.max_attempts}; it must be >= 1")
        if self.lanes is not None and not 1 <= self.lanes <= 64:
            raise ConfigError(f"lanes (--lanes) is {self.lanes}; it must be an integer in 1–64")
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


@dataclass(frozen=True)
class ChunkState:
    """The state of one chunk: pending, running, done, failed; attempts made; frames dreamed."""

    index: int
    start: int
    end: int
    state: str
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
    notes: tuple[str, ...] = ()  # settings a worker could not honour (e.g. bf16 on CPU)
    largest_batch: int = 0  # most frames a worker dreamed in one batch (lanes that met)


# ---------------------------------------------------------------------------------------------
# Plan, ledger and work directory


# How the network is laid out and compiled changes speed, not the recipe (only rounding, as lanes
# and thread counts do): a resume may switch them. Precision stays in: it is a choice about numbers.
_SPEED_ONLY = ("channels_last", "compile")


def _settings_hash(config: RenderConfig, index: VideoIndex, chunks: Sequence[Chunk]) -> str:
    settings = config.to_dict()
    settings["dream"] = {k: v for k, v in settings["dream"].items() if k not in _SPEED_ONLY}
    payload = {
        "version": PLAN_VERSION,
        "config": settings,
        "input": {"frames": index.frame_count, "width": index.width, "height": index.height,
                  "pts": index.to_dict()["pts_deltas_zlib"]},
        "chunks": [c.to_dict() for c in chunks],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _write_json(path: str, data: Any) -> None:
    storage.write_text(path, json.dumps(data, indent=1, sort_keys=True))  # whole or not at all


def _location(path: str | os.PathLike[str]) -> Path | str:
    """Local paths as Path, object-storage URIs as str."""
    return str(path) if storage.is_uri(path) else Path(path)


def _default_workdir(output: Path | str) -> Path | str:
    return _location(storage.join(storage.parent(output), f".{storage.name_of(output)}.distdream"))


@ray.remote(num_cpus=1)
def _scan(index: VideoIndex, start: int, end: int, config: RenderConfig) -> list[int]:
    from .pipeline import scan_cuts

    return scan_cuts(index, start, end, config)


def _find_cuts(index: VideoIndex, config: RenderConfig, options: JobOptions) -> list[int]:
    """Scene cuts of the rendered range, scanned by Ray tasks (each decodes its own slice)."""
    a, b = options.frame_range or (0, index.frame_count)
    step = max(options.chunk_frames, 1)
    index_ref = ray.put(index)
    # each slice starts one frame early so that a cut on a slice boundary is seen
    refs = [_scan.remote(index_ref, max(a, s - 1), min(b, s + step), config) for s in range(a, b, step)]
    return sorted({c for part in ray.get(refs) for c in part})


def make_plan(input: str | os.PathLike[str], config: RenderConfig, options: JobOptions) -> JobPlan:
    index = probe(input)
    cuts: list[int] = []
    if options.snap_to_cuts:
        _connect(options.address)
        cuts = _find_cuts(index, config, options)
    chunks = plan_chunks(
        index.frame_count, options.chunk_frames, options.overlap, cuts, frame_range=options.frame_range,
        seed=config.dream.seed,
    )
    return JobPlan(str(input), index, tuple(chunks), _settings_hash(config, index, chunks))


class _Ledger:
    """Finished chunks and windows, persisted atomically after every change."""

    def __init__(self, path: str, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data = data or {"chunks": {}, "windows": {}}

    @classmethod
    def load(cls, path: str) -> _Ledger:
        return cls(path, json.loads(storage.read_text(path))) if storage.exists(path) else cls(path)

    def add(self, kind: str, name: str, record: dict[str, Any]) -> None:
        self.data[kind][name] = record
        _write_json(self.path, self.data)

    def has(self, kind: str, name: str) -> bool:
        return name in self.data[kind]

    def drop(self, kind: str, name: str) -> None:
        self.data[kind].pop(name, None)


def _files_ok(files: Sequence[tuple[str, int]]) -> bool:
    for path, frames in files:
        if not storage.exists(path):
            return False
        try:
            if probe(path).frame_count != frames:
                return False
        except VideoError:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Ray side


@ray.remote
class _Progress:
    """Frames dreamed since the driver last asked (workers report, the driver polls)."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, n: int) -> None:
        self.frames += n

    def take(self) -> int:
        n, self.frames = self.frames, 0
        return n


def _progress_actor() -> Any:
    """The progress counter, on the driver's own node: if a worker node is lost, the count is not."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
    return _Progress.options(num_cpus=0, scheduling_strategy=strategy).remote()


@ray.remote
class DreamWorker:
    """Loads the model once; dreams whole chunks into the work directory.

    With ``lanes`` > 1 it is a threaded actor: each concurrent :meth:`render_chunk` call is a lane,
    and a :class:`~distdream.lanes.LaneBatcher` dreams the lanes' frames as one batch.
    """

    def __init__(self, config: RenderConfig, device: str | None, torch_threads: int, lanes: int = 1) -> None:
        import torch

        from .dream import Dreamer
        from .lanes import LaneBatcher

        torch.set_num_threads(torch_threads)  # this process is ours: keep workers off each other's cores
        self.token = uuid.uuid4().hex  # which incarnation of this worker answers (see ping)
        self.config = config
        self.batcher: LaneBatcher | None = None
        if lanes > 1:  # the model is built on the thread that will dream (see LaneBatcher)
            self.batcher = LaneBatcher(lambda: Dreamer(config.dream, device=device))
            self.dreamer = self.batcher.dreamer
        else:
            self.dreamer = Dreamer(config.dream, device=device)

    def ping(self) -> str:
        """This incarnation's token, once the worker is up: the driver waits for a new one after a crash.

        A worker with lanes answers pings while its lanes run, so a worker being killed can still
        answer one: the token tells the driver it heard the old process, not the restarted one.
        """
        return self.token

    def render_chunk(
        self, index: VideoIndex, chunk: Chunk, workdir: str, attempt: int, progress: Any, faults: tuple[Fault, ...]
    ) -> dict[str, Any]:
        from .pipeline import Span, render_spans

        files = ChunkFiles(workdir, chunk)
        storage.makedirs(storage.parent(files.middle))
        settings = EncoderSettings(crf=self.config.crf, preset=self.config.preset)
        spans = []
        if chunk.lead_in:
            spans.append(Span(chunk.first, chunk.start, files.lead, LOSSLESS))
        spans.append(Span(chunk.start, chunk.end - chunk.tail, files.middle, settings))
        if chunk.tail:
            spans.append(Span(chunk.end - chunk.tail, chunk.end, files.tail, LOSSLESS))
        mine = [f for f in faults if f.chunk == chunk.index and (not f.attempts or attempt in f.attempts)]

        def on_frame(i: int) -> None:
            for fault in mine:
                if i - chunk.first == fault.at_frame:
                    if fault.kind == "exit":
                        os._exit(1)  # a worker process dying mid-chunk, as a lost node would
                    if fault.kind == "hang":
                        time.sleep(3600)  # a worker that stops answering, as on a wedged GPU
                    raise RuntimeError(f"injected fault in chunk {chunk.index} at frame {i}")

        def run(dreamer: Any) -> Any:
            return render_spans(
                index, chunk.first, chunk.end, spans, self.config, dreamer=dreamer, seed=chunk.seed,
                progress=lambda n: progress.add.remote(n), on_frame=on_frame,
            )

        if self.batcher is None:
            stats = run(self.dreamer)
        else:
            import torch

            # This lane's thread does only small per-frame tensor work; one OpenMP thread keeps it
            # from starting a thread pool of its own next to the batching thread's (see LaneBatcher).
            torch.set_num_threads(1)
            with self.batcher.lane() as lane:
                stats = run(lane)
        return {"chunk": chunk.index, "frames": chunk.dreamed, "stats": asdict(stats), "host": os.uname().nodename,
                "node": ray.get_runtime_context().get_node_id(), "compute": self.dreamer.compute.describe(),
                "notes": list(self.dreamer.notes),
                "batch": self.batcher.largest_batch if self.batcher is not None else 1}


@ray.remote(num_cpus=0)
def _seam(side_a: str, side_b: str, output: str, settings: EncoderSettings, index: VideoIndex) -> int:
    crossfade(side_a, side_b, output, settings, index)
    return 1


def _connect(address: str | None) -> None:
    if ray.is_initialized():
        return
    try:
        # Ray's start-up chatter (token notices, "started a local instance") is not the user's news
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:  # a new instance of our own, even if another driver runs one on this machine
            ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"cannot connect to a Ray cluster at {address or 'a new local instance'}: {exc}") from None


# Lanes per worker when not given. GPU: at batch size 1 a dream step of a video frame is bound by
# kernel launches; on an H200 at 1280×720, lanes 2/4/8 gave 1.6×/2.1×/2.3× one lane's frames/s
# (fp32) and an 8-lane render 2.6× (1080p: 2.0×), at 0.8 GB per lane. CPU: see README, "Lanes".
GPU_LANES = 8
CPU_LANES = 1


def _resources(options: JobOptions) -> tuple[int, float, float, int, str | None, int]:
    total = ray.cluster_resources()
    gpus = total.get("GPU", 0.0)
    gpus_per = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    threads = max(1, int(options.cpus_per_worker))
    if gpus_per > 0:
        workers = options.workers or max(1, int(gpus // gpus_per))
        return workers, options.cpus_per_worker, gpus_per, threads, "cuda", options.lanes or GPU_LANES
    cpus = total.get("CPU", 1.0)
    workers = options.workers or max(1, int(cpus // options.cpus_per_worker))
    return workers, options.cpus_per_worker, 0.0, threads, "cpu", options.lanes or CPU_LANES


# ---------------------------------------------------------------------------------------------
# The driver


class Job:
    """A render running on Ray (started by :func:`submit`)."""

    def __init__(self, input: str, output: str, config: RenderConfig, options: JobOptions) -> None:
        self.input, self.output = input, _location(output)
        self.config, self.options = config, options
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._states: dict[int, ChunkState] = {}
        self._done_frames = 0
        self._total_frames = 0
        self._status = "starting"
        self._prepared: tuple[JobPlan, Path | str, _Ledger, bool] | None = None
        self._result: JobResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="distdream-driver", daemon=True)

    # -- public surface -----------------------------------------------------------------------

    def status(self) -> str:
        """starting, running, stitching, succeeded, failed or cancelled."""
        return self._status

    def progress(self) -> tuple[int, int]:
        """(frames dreamed, frames to dream), finished chunks from a resumed ledger included."""
        with self._lock:
            return self._done_frames, self._total_frames

    def chunks(self) -> list[ChunkState]:
        with self._lock:
            return [self._states[k] for k in sorted(self._states)]

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the job; returns its result or raises what stopped it."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"job still {self._status} after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop the job: in-flight chunks are abandoned, finished ones stay for a resume."""
        self._cancel.set()

    # -- driver -------------------------------------------------------------------------------

    def _set(self, chunk: Chunk, state: str, attempts: int) -> None:
        with self._lock:
            self._states[chunk.index] = ChunkState(chunk.index, chunk.start, chunk.end, state, attempts)

    def _start(self) -> None:
        """Plan and check in the caller's thread (bad input fails here, before Ray starts), then
        connect to Ray (its init wants the main thread) and hand the rest to the driver thread."""
        self._prepared = self._prepare()
        _connect(self.options.address)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._drive()
            self._status = "succeeded"
        except JobCancelled as exc:
            self._status, self._error = "cancelled", exc
        except BaseException as exc:
            self._status, self._error = "failed", exc

    def _prepare(self) -> tuple[JobPlan, Path | str, _Ledger, bool]:
        workdir = _location(self.options.workdir) if self.options.workdir else _default_workdir(self.output)
        for place in (self.output, workdir):  # a missing bucket or folder fails here, not after the work
            if storage.is_uri(place):
                storage.check_container(str(place), JobError)
        if not storage.is_uri(self.output):
            check_output_path(self.output, error=JobError)
        job_plan = make_plan(self.input, self.config, self.options)
        plan_file = storage.join(workdir, "plan.json")
        if storage.exists(plan_file):
            saved = json.loads(storage.read_text(plan_file))
            if saved.get("settings_hash") != job_plan.settings_hash:
                raise JobError(
                    f"work directory {workdir} holds another job (settings hash {saved.get('settings_hash')}, "
                    f"this job {job_plan.settings_hash}); use another --workdir or remove it"
                )
            if not self.options.resume:
                raise JobError(f"work directory {workdir} holds this job already; pass --resume to continue it")
        for sub in ("chunks", "windows"):
            storage.makedirs(storage.join(workdir, sub))
        _write_json(plan_file, {
            "settings_hash": job_plan.settings_hash,
            "input": str(self.input),
            "output": str(self.output),
            "config": self.config.to_dict(),
            "index": job_plan.index.to_dict(),
            "chunks": [c.to_dict() for c in job_plan.chunks],
        })
        ledger = _Ledger.load(storage.join(workdir, "ledger.json"))
        return job_plan, workdir, ledger, self.options.workdir is None

    def _drive(self) -> JobResult:
        t_start = time.perf_counter()
        assert self._prepared is not None
        job_plan, workdir, ledger, owned_workdir = self._prepared
        chunks = job_plan.chunks
        by_index = {c.index: c for c in chunks}
        # resume = a filter: a chunk counts as done only if its files are there and complete
        done: set[int] = set()
        for c in chunks:
            if ledger.has("chunks", c.name) and _files_ok(ChunkFiles(workdir, c).chunk_outputs()):
                done.add(c.index)
            else:
                ledger.drop("chunks", c.name)
        windows_done = {
            c.index for c in chunks
            if c.lead_in and ledger.has("windows", c.name) and _files_ok([(ChunkFiles(workdir, c).window, c.lead_in)])
        }
        with self._lock:
            self._total_frames = job_plan.dreamed_frames
            self._done_frames = sum(by_index[k].dreamed for k in done)
        for c in chunks:
            self._set(c, "done" if c.index in done else "pending", 0)

        workers_n, cpus, gpus, threads, device, lanes = _resources(self.options)
        todo = [c for c in chunks if c.index not in done]
        workers_n = max(1, min(workers_n, len(todo))) if todo else 0
        lanes = max(1, min(lanes, -(-len(todo) // max(workers_n, 1))))  # no lane that could never get a chunk
        progress = _progress_actor()

        def new_worker() -> Any:
            # a lane is a concurrent call; one more thread so that a ping is answered while all lanes run
            concurrency = lanes + 1 if lanes > 1 else 1
            return DreamWorker.options(num_cpus=cpus, num_gpus=gpus, max_restarts=self.options.max_restarts,
                                       max_task_retries=0, max_concurrency=concurrency).remote(
                self.config, device, threads, lanes)

        actors = [new_worker() for _ in range(workers_n)]
        # A worker gets chunks once it answers a ping, and one that died gets none until it answers
        # again as a new incarnation: a task sent while Ray restarts it could fail at once and burn
        # an attempt of a chunk that did nothing wrong.
        recovering: dict[Any, int] = {actors[slot].ping.remote(): slot for slot in range(workers_n)}
        tokens: list[str | None] = [None] * workers_n  # the incarnation each worker last answered as
        dead: list[str | None] = [None] * workers_n  # the token of an incarnation known to be dying
        # Each worker's incarnation: when a worker dies, all of its lanes fail; the first failure
        # reported is news (ping it), the others are the same death (their lanes come back with it).
        incarnation = [0] * workers_n
        index_ref = ray.put(job_plan.index)
        settings = EncoderSettings(crf=self.config.crf, preset=self.config.preset)
        attempts: dict[int, int] = {}
        running: dict[Any, tuple[Chunk, int, float, int]] = {}  # ref → (chunk, actor slot, started, incarnation)
        seams: dict[Any, Chunk] = {}
        idle: list[int] = []  # free lanes, by worker slot; filled as workers answer their pings
        queue = list(todo)
        rendered = 0
        stats: list[dict[str, Any]] = []
        compute, notes, largest_batch = "", set(), 0
        # lanes share one device, so each chunk of a worker with N lanes may take N times as long
        timeout = self.options.chunk_timeout or lanes * max(600.0, 60.0 * max(c.dreamed for c in chunks))
        self._status = "running"

        def launch_seams() -> None:
            for c in chunks:
                if (c.lead_in and c.index not in windows_done and c.index in done and c.index - 1 in done
                        and c not in seams.values()):
                    prev = ChunkFiles(workdir, by_index[c.index - 1])
                    ref = _seam.remote(str(prev.tail), str(ChunkFiles(workdir, c).lead),
                                       str(ChunkFiles(workdir, c).window), settings, index_ref)
                    seams[ref] = c

        def lost(slot: int, born: int) -> None:
            """A chunk's worker died: the first report of a death pings it; its lanes wait for that."""
            if born == incarnation[slot]:
                incarnation[slot] += 1
                dead[slot] = tokens[slot]
                idle[:] = [s for s in idle if s != slot]
                recovering[actors[slot].ping.remote()] = slot
            elif slot not in recovering.values():  # the worker is back already: this lane is free
                idle.append(slot)

        def fail(chunk: Chunk, cause: str) -> None:
            n = attempts[chunk.index]
            if n >= self.options.max_attempts:
                self._set(chunk, "failed", n)
                raise ChunkFailed(chunk.index, (chunk.start, chunk.end), n, cause)
            self._set(chunk, "pending", n)
            queue.insert(0, chunk)

        try:
            launch_seams()
            while queue or running or seams:
                if self._cancel.is_set():
                    raise JobCancelled(f"job cancelled; finished chunks are kept in {workdir} (resume with --resume)")
                while queue and idle:
                    chunk, slot = queue.pop(0), idle.pop(0)
                    attempt = attempts.get(chunk.index, 0)
                    attempts[chunk.index] = attempt + 1
                    ref = actors[slot].render_chunk.remote(index_ref, chunk, str(workdir), attempt, progress,
                                                           self.options.inject_faults)
                    running[ref] = (chunk, slot, time.monotonic(), incarnation[slot])
                    self._set(chunk, "running", attempt + 1)
                refs = list(running) + list(seams) + list(recovering)
                ready, _ = ray.wait(refs, num_returns=1, timeout=0.5)
                with self._lock:
                    try:
                        self._done_frames += ray.get(progress.take.remote())
                    except ray.exceptions.RayActorError:  # lost with its node: count on with a new one
                        progress = _progress_actor()
                for ref in ready:
                    if ref in recovering:
                        slot = recovering.pop(ref)
                        try:
                            token = ray.get(ref)
                        except ray.exceptions.RayActorError:  # out of restarts: a fresh worker
                            actors[slot] = new_worker()
                            incarnation[slot] += 1
                            tokens[slot] = dead[slot] = None
                            recovering[actors[slot].ping.remote()] = slot
                            continue
                        if token is not None and token == dead[slot]:  # the dying process answered
                            recovering[actors[slot].ping.remote()] = slot
                            continue
                        tokens[slot], dead[slot] = token, None
                        # lanes still marked running here belong to the dead incarnation; each
                        # comes back when its failure is reported
                        idle.extend([slot] * (lanes - sum(r[1] == slot for r in running.values())))
                        continue
                    if ref in seams:
                        c = seams.pop(ref)
                        ray.get(ref)  # a failed crossfade is a bug or a full disk: let it surface
                        ledger.add("windows", c.name, {"frames": c.lead_in})
                        windows_done.add(c.index)
                        continue
                    chunk, slot, _, born = running.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        idle.append(slot)
                        fail(chunk, str(exc.cause if getattr(exc, "cause", None) else exc).splitlines()[0])
                        continue
                    except ray.exceptions.RayActorError as exc:
                        lost(slot, born)
                        fail(chunk, f"worker died ({exc.__class__.__name__})")
                        continue
                    idle.append(slot)
                    done.add(chunk.index)
                    rendered += 1
                    stats.append(record["stats"])
                    compute = compute or record.get("compute", "")
                    largest_batch = max(largest_batch, record.get("batch", 1))
                    notes.update(record.get("notes", []))
                    ledger.add("chunks", chunk.name, {"frames": chunk.dreamed, "stats": record["stats"],
                                                      "host": record["host"], "node": record["node"]})
                    self._set(chunk, "done", attempts[chunk.index])
                    launch_seams()
                # watchdog: a chunk far past its time is on a lost or hung worker
                now = time.monotonic()
                for ref, (chunk, slot, started, born) in list(running.items()):
                    if now - started > timeout:
                        running.pop(ref)
                        if born == incarnation[slot]:  # not already killed for another of its lanes
                            ray.kill(actors[slot], no_restart=False)  # its other lanes fail with it
                        lost(slot, born)
                        fail(chunk, f"no answer after {timeout:.0f} s (watchdog)")
        finally:
            for ref in list(running):
                ray.cancel(ref, force=False)
            for actor in actors:
                ray.kill(actor, no_restart=True)
        with self._lock:
            self._done_frames = self._total_frames
        self._status = "stitching"
        out = stitch(list(chunks), workdir, self.output, job_plan.index)
        if owned_workdir:
            storage.remove_tree(workdir)
        return JobResult(
            output=out, frames=job_plan.frames, chunks=len(chunks), rendered=rendered,
            seconds=time.perf_counter() - t_start, workdir=workdir, lead_in_overhead=job_plan.lead_in_overhead,
            chunk_stats=tuple(stats), workers=workers_n, lanes=lanes, compute=compute, notes=tuple(sorted(notes)),
            largest_batch=largest_batch,
        )


# ---------------------------------------------------------------------------------------------
# Public entry points


def _options(job_options: dict[str, Any]) -> JobOptions:
    try:
        return JobOptions(**job_options).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown job option: {exc}") from None


def plan(input: str | os.PathLike[str], config: RenderConfig | None = None, **job_options: Any) -> JobPlan:
    """The chunks a render of ``input`` would use (nothing is run)."""
    return make_plan(input, (config or RenderConfig()).validate(), _options(job_options))


def submit(
    input: str | os.PathLike[str], output: str | os.PathLike[str], config: RenderConfig | None = None,
    **job_options: Any,
) -> Job:
    """Start rendering ``input`` into ``output`` on Ray; returns at once with a :class:`Job`."""
    job = Job(str(input), str(output), (config or RenderConfig()).validate(), _options(job_options))
    job._start()
    return job


def render(
    input: str | os.PathLike[str], output: str | os.PathLike[str], config: RenderConfig | None = None,
    *, on_progress: Callable[[Job], None] | None = None, **job_options: Any,
) -> JobResult:
    """Render ``input`` into ``output`` and wait. Ctrl-C cancels cleanly, keeping finished chunks."""
    job = submit(input, output, config, **job_options)
    try:
        while job._thread.is_alive():
            job._thread.join(0.25)
            if on_progress is not None:
                on_progress(job)
    except KeyboardInterrupt:
        job.cancel()
        job._thread.join()
        raise
    return job.result()



# ---------------------------------------------------------------------------------------------
# Ray Jobs: renders submitted to a cluster's dashboard as batch jobs


def submission_id(input: str, output: str, entrypoint_args: Sequence[str]) -> str:
    """A job's submission id, derived from what it renders: a resubmit finds the same job."""
    digest = hashlib.sha256(json.dumps([input, output, list(entrypoint_args)]).encode()).hexdigest()[:12]
    return f"distdream-{digest}"


class RemoteJobs:
    """Submit, watch and stop renders on a Ray cluster through its dashboard (Ray Jobs API)."""

    TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

    def __init__(self, address: str, timeout: float = 15.0) -> None:
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as Timeout

        from ray.job_submission import JobSubmissionClient

        # The client checks the connection when built; a silent address must not hang the CLI.
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(JobSubmissionClient, address)
        try:
            self.client = future.result(timeout=timeout)
        except Timeout:
            raise JobError(f"no answer from the Ray dashboard at {address} within {timeout:.0f} s; "
                           "is the head running and the port (default 8265) reachable?") from None
        except Exception as exc:  # requests/ConnectionError/RuntimeError, depending on the failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            hint = ""
            if "uthentication" in first:  # the cluster uses Ray's token authentication
                hint = "; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (the cluster's token) in this shell"
            raise JobError(f"cannot reach the Ray dashboard at {address}: {first[:300]}{hint}") from None
        finally:
            pool.shutdown(wait=False)
        self.address = address

    def _ids(self, base: str) -> list[Any]:
        return [j for j in self.client.list_jobs() if (j.submission_id or "").startswith(base)]

    def submit(self, entrypoint: str, base_id: str) -> tuple[str, str | None]:
        """Submit ``entrypoint`` unless a job with this id runs or succeeded.

        Returns ``(id, None)`` for a new submission, or ``(id, state)`` of the job found.

        A failed or stopped earlier run keeps its id; the new one gets ``-2``, ``-3`` … and, since
        the entrypoint resumes, continues from that run's work directory.
        """
        earlier = self._ids(base_id)
        for job in earlier:
            state = str(job.status).split(".")[-1]
            if state not in self.TERMINAL or state == "SUCCEEDED":  # running, or done: nothing to add
                return job.submission_id, state
        sid = base_id if not earlier else f"{base_id}-{len(earlier) + 1}"
        self.client.submit_job(entrypoint=entrypoint, submission_id=sid,
                               runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
                               metadata={"tool": "distdream"})
        return sid, None

    def status(self, sid: str) -> str:
        try:
            return str(self.client.get_job_status(sid)).split(".")[-1]
        except RuntimeError as exc:
            raise JobError(f"no job {sid!r} on {self.address}: {str(exc).splitlines()[0][:200]}") from None

    def logs(self, sid: str) -> str:
        self.status(sid)
        return self.client.get_job_logs(sid)

    def stop(self, sid: str) -> bool:
        self.status(sid)
        return bool(self.client.stop_job(sid))
