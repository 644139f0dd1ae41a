"""Planning: the cut scan, the job's chunks, and how many chunks run at once. No Ray imported
unless the job is on it.

One sizing path serves :func:`plan` (what a render would do, nothing dreamed) and a starting
:class:`~.job.Job` (:func:`plan_job`): the same sizing, the same slots, the same chunks. Where the
job will need Ray and the scan runs here, Ray starts in the caller's thread while a helper thread
scans (Ray's processes end with the thread that started them).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import storage
from ..chunking import Chunk, plan_chunks
from ..config import RenderConfig
from ..errors import InputError
from ..models import load_model
from ..options import JobOptions, job_options_of
from ..video import VideoIndex, probe
from .cuts import scan_cuts
from .preflight import location, output_format, plan_record
from .records import JobPlan, Phase
from .sizing import Sizing, chunk_slots, in_process, local_totals, size_workers
from .workdir import settings_hash

__all__ = ["Planner", "find_cuts", "job_chunks", "on_ray", "plan", "scan_slices", "sizing_now"]

# frames per cut-scan task: a task's start-up (a worker process importing torch, cv2 and PyAV)
# costs seconds, while a small frame's two flows cost milliseconds; long videos still spread
# over many tasks (a two-hour film at 24 fps: 346)
SCAN_SLICE = 500
# the fewest frames a scan thread of this process takes (each opens the video and seeks)
LOCAL_SCAN_SLICE = 60


def plan(
    input: str | os.PathLike[str],
    config: RenderConfig | None = None,
    options: JobOptions | None = None,
    *,
    output: str | os.PathLike[str] = "dream.mp4",
    **shorthand: Any,
) -> JobPlan:
    """The chunks a render of ``input`` into ``output`` would use and how each begins. Nothing is
    dreamed or written. ``options`` (and keyword ``shorthand``, as :func:`submit` takes them) are
    the job's. A long video's cut scan (``scan_cuts``, the default) runs as Ray tasks when this
    process is connected to Ray, or when ``address`` is given; otherwise here. The plan's chains
    assume the slots (workers × lanes) of that cluster, or of this machine. Its ``settings_hash``
    is the one the job records in its work directory (for this ``output``'s format and the weights
    as they resolve here)."""
    config = (config or RenderConfig()).validate()
    options = job_options_of(options, shorthand)
    input = storage.resolve(input, "input", InputError)
    index = probe(input, fps=config.fps)
    if options.address or (options.scan_cuts and options.ray == "always" and len(scan_slices(index, options)) > 1):
        from .cluster import connect  # Ray's side: imported only for a plan made on Ray

        connect(options.address, options.connect_timeout)
    sizing = sizing_now(options)
    chunks = job_chunks(index, config, options, chunk_slots(options, sizing, on_ray()))
    resolved, _ = output_format(location(output), index, config)
    weights = load_model(config.dream.model, config.dream.weights).weights
    record = plan_record(input, index, resolved, weights, sizing.device, chunks)
    return JobPlan(input, index, tuple(chunks), settings_hash(record))


def on_ray() -> bool:
    """Whether this process is connected to Ray already (without importing it if it is not)."""
    ray = sys.modules.get("ray")
    initialized = getattr(ray, "is_initialized", None)  # None too while another thread imports it
    return initialized is not None and initialized()


def sizing_now(options: JobOptions) -> Sizing:
    """The job's workers, sized for the cluster this process is connected to, or for this machine."""
    if on_ray():
        from .cluster import resources  # Ray's side: imported only when this process is on Ray

        return resources(options)
    return size_workers(options, *local_totals())


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
        from .worker import scan_on_ray  # Ray's side: imported only when this process is on Ray

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


@dataclass(frozen=True)
class Planner:
    """How a starting job plans: its options, whether it must run on Ray whatever its size (a
    test's injected faults), how it connects to Ray (``connect(meanwhile)``) and whom it tells of
    its phases."""

    options: JobOptions
    ray_forced: bool
    connect: Callable[[str], None]
    on_phase: Callable[[Phase], None]

    def in_process(self, sizing: Sizing, chunks: list[Chunk] | None) -> bool:
        """Whether the job's workers run as threads of this process (:func:`~.sizing.in_process`)."""
        if self.ray_forced:
            return False
        return in_process(self.options, sizing, None if chunks is None else len(chunks), on_ray())

    def chunks(self, index: VideoIndex, config: RenderConfig, sizing: Sizing) -> tuple[list[Chunk], bool]:
        """The chunks, and whether they run in this process. Where Ray will be needed and the scan
        runs here (one slice), Ray starts (in this thread) while a helper thread scans."""
        here = self.in_process(sizing, None)
        options = self.options
        slices = scan_slices(index, options)
        slots = chunk_slots(options, sizing, on_ray())
        frames = sum(b - a for a, b in slices)
        ray_ahead = not here and not on_ray() and frames > options.chunk_frames  # more than one chunk
        if ray_ahead and options.scan_cuts and len(slices) > 1:
            self.connect("")  # scan on Ray, in parallel
            sizing = sizing_now(options)
        scanned = [0]
        quiet = threading.Event()  # set while Ray starts: its phase is the one shown

        def scanning(n: int) -> None:
            scanned[0] += n
            if not quiet.is_set():
                self.on_phase(Phase("scanning cuts", scanned[0], frames))

        def plan() -> list[Chunk]:
            return job_chunks(index, config, options, slots, progress=scanning)

        if ray_ahead and not on_ray():
            quiet.set()
            chunks = self._while_ray_starts(plan)
        else:
            if options.scan_cuts:
                scanning(0)
            chunks = plan()
        return chunks, here or self.in_process(sizing, chunks)

    def _while_ray_starts(self, plan: Callable[[], list[Chunk]]) -> list[Chunk]:
        """Plan (the cut scan) on a helper thread while this thread starts Ray."""
        made: list[list[Chunk] | BaseException] = []

        def body() -> None:
            try:
                made.append(plan())
            except BaseException as exc:  # raised here, in the caller's thread
                made.append(exc)

        helper = threading.Thread(target=body, name="distdream-plan", daemon=True)
        helper.start()
        self.connect("scanning cuts meanwhile")  # if this fails (or is stopped), the scan ends with the process
        helper.join()
        if isinstance(made[0], BaseException):
            raise made[0]
        return made[0]
