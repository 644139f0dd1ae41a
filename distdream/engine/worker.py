"""What runs on Ray's workers: the dreaming actor, the seam and cut-scan tasks, the progress counter.

A :class:`DreamWorker` loads the model once and dreams whole chunks into the work directory with
a :class:`~.chunkrun.ChunkRenderer` (the same one the in-process loop runs). It returns a small
record: frames never travel through the driver or the object store.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import ray

from ..chunking import Chunk
from ..config import Encoding, RenderConfig
from ..errors import JobError
from ..video import VideoIndex
from .chunkrun import ChunkRenderer, crossfade_window
from .cuts import scan_cuts
from .faults import Fault, chunk_faults, hold
from .pieces import Layout

__all__ = ["DreamWorker", "progress_counter", "scan_cuts_task", "scan_on_ray", "seam_task"]


def _start_faults(faults: tuple[Fault, ...]) -> None:
    for fault in faults:
        if fault.kind == "start-raise":
            raise RuntimeError("injected fault: the worker failed while starting")
        if fault.kind == "start-hang":
            time.sleep(3600)


@ray.remote
class DreamWorker:
    """Loads the model once; dreams whole chunks into the work directory (a
    :class:`~.chunkrun.ChunkRenderer` in a Ray actor, with fault injection for tests).

    With ``lanes`` > 1 it is a threaded actor: each concurrent :meth:`render_chunk` call is a lane.
    """

    def __init__(
        self,
        config: RenderConfig,
        device: str | None,
        torch_threads: int,
        lanes: int = 1,
        faults: tuple[Fault, ...] = (),
    ) -> None:
        import torch

        _start_faults(faults)
        torch.set_num_threads(torch_threads)  # this process is ours: keep workers off each other's cores
        self.token = uuid.uuid4().hex  # which incarnation of this worker answers (see ping)
        self.ping_hangs = any(f.kind == "ping-hang" for f in faults)
        self.renderer = ChunkRenderer(config, device, lanes)

    def ping(self) -> str:
        """This incarnation's token, once the worker is up: the driver waits for a new one after a crash.

        A worker with lanes answers pings while its lanes run, so a worker being killed can still
        answer one: the token tells the driver it heard the old process, not the restarted one.
        """
        if self.ping_hangs:
            time.sleep(3600)
        return self.token

    def render_chunk(
        self,
        index: VideoIndex,
        chunk: Chunk,
        workdir: str,
        attempt: int,
        progress: Any,
        faults: tuple[Fault, ...],
        layout: Layout = Layout(),
    ) -> dict[str, Any]:
        """Dream ``chunk`` into its pieces; returns a small record (stats, fingerprints, where it ran)."""
        mine = chunk_faults(faults, chunk.index, attempt)

        def on_frame(i: int) -> None:
            for fault in mine:
                if i - chunk.first == fault.at_frame:
                    if fault.kind == "wait":  # until the go-ahead, or until the job stops this worker
                        hold(fault)
                        continue
                    if fault.kind == "exit":
                        os._exit(1)  # a worker process dying mid-chunk, as a lost node would
                    if fault.kind == "hang":
                        time.sleep(3600)  # a worker that stops answering, as on a wedged GPU
                    if fault.kind == "unavailable":  # what Ray raises while it cannot reach a live actor
                        raise ray.exceptions.ActorUnavailableError("injected fault: unreachable", None)
                    raise RuntimeError(f"injected fault in chunk {chunk.index} at frame {i}")

        record = self.renderer.render(
            index, chunk, workdir, layout, lambda n: progress.add.remote(chunk.index, n), on_frame if mine else None
        )
        return record | {"host": os.uname().nodename, "node": ray.get_runtime_context().get_node_id()}


@ray.remote(num_cpus=1)  # a CPU of its own: it decodes two streams and encodes one
def seam_task(
    side_a: str, side_b: str, output: str, encoding: Encoding, index: VideoIndex, frames: int, first: int
) -> str:
    return crossfade_window(side_a, side_b, output, encoding, index, frames, first)


@ray.remote(num_cpus=1)
def scan_cuts_task(index: VideoIndex, start: int, end: int, config: RenderConfig) -> list[int]:
    return scan_cuts(index, start, end, config)


def scan_on_ray(
    index: VideoIndex, slices: list[tuple[int, int]], config: RenderConfig, on_slice: Callable[[int], None]
) -> list[int]:
    """Scene cuts of ``slices`` scanned by Ray tasks in parallel (each decodes its own slice);
    ``on_slice(frames)`` hears of each finished slice. Fails within a limit set by the frames."""
    index_ref = ray.put(index)
    refs = {scan_cuts_task.remote(index_ref, start, end, config): end - start for start, end in slices}
    limit = 600.0 + 2.0 * sum(refs.values())  # decoding and two flows a frame: far below a second each
    deadline = time.monotonic() + limit
    cuts: set[int] = set()
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise JobError(f"the scene-cut scan did not finish within {limit:.0f} s; pass --no-scan-cuts")
        cuts.update(ray.get(ready[0]))
        on_slice(refs[ready[0]])
    return sorted(cuts)


@ray.remote
class _Progress:
    """Frames dreamed per chunk since the driver last asked (workers report, the driver polls)."""

    def __init__(self) -> None:
        self.frames: dict[int, int] = {}

    def add(self, chunk: int, n: int) -> None:
        self.frames[chunk] = self.frames.get(chunk, 0) + n

    def take(self) -> dict[int, int]:
        frames, self.frames = self.frames, {}
        return frames


def progress_counter() -> Any:
    """The progress counter, on the driver's own node: if a worker node is lost, the count is not."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
    # @ray.remote made _Progress an ActorClass; Ray's annotations keep the class's own type
    return _Progress.options(num_cpus=0, scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
