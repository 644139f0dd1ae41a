"""What runs on Ray's workers: the dreaming actor, the seam and cut-scan tasks, the progress counter.

A :class:`DreamWorker` loads the model once and dreams whole chunks into the work directory,
writing each chunk's pieces (see :class:`~distdream.engine.workdir.ChunkFiles`) under temp names
and renaming them, so a retried chunk never leaves a duplicate or a torn file. It returns a small
record: frames never travel through the driver or the object store.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict
from typing import Any

import ray

from .. import storage
from ..chunking import Chunk
from ..config import Encoding, Fault, RenderConfig
from ..video import VideoIndex
from .stitch import crossfade
from .pieces import ChunkFiles, Layout, Piece, piece_fingerprint

__all__ = ["DreamWorker", "progress_counter", "scan_cuts_task", "seam_task"]


def _start_faults(faults: tuple[Fault, ...]) -> None:
    for fault in faults:
        if fault.kind == "start-raise":
            raise RuntimeError("injected fault: the worker failed while starting")
        if fault.kind == "start-hang":
            time.sleep(3600)


@ray.remote
class DreamWorker:
    """Loads the model once; dreams whole chunks into the work directory.

    With ``lanes`` > 1 it is a threaded actor: each concurrent :meth:`render_chunk` call is a lane,
    and a :class:`~distdream.lanes.LaneBatcher` dreams the lanes' frames as one batch.
    """

    def __init__(self, config: RenderConfig, device: str | None, torch_threads: int, lanes: int = 1,
                 faults: tuple[Fault, ...] = ()) -> None:
        import torch

        from ..dream import Dreamer
        from ..lanes import LaneBatcher

        _start_faults(faults)
        torch.set_num_threads(torch_threads)  # this process is ours: keep workers off each other's cores
        self.token = uuid.uuid4().hex  # which incarnation of this worker answers (see ping)
        self.config = config
        self.ping_hangs = any(f.kind == "ping-hang" for f in faults)
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
        if self.ping_hangs:
            time.sleep(3600)
        return self.token

    def render_chunk(
        self, index: VideoIndex, chunk: Chunk, workdir: str, attempt: int, progress: Any, faults: tuple[Fault, ...],
        layout: Layout = Layout(),
    ) -> dict[str, Any]:
        """Dream ``chunk`` into its pieces; returns a small record (stats, fingerprints, where it ran)."""
        from ..encode import Span
        from ..pipeline import Carried, dream_range

        files = ChunkFiles(workdir, chunk, layout)
        carried = Carried.from_bytes(storage.read_bytes(files.carried_in)) if chunk.begins == "handoff" else None
        hand_off: dict[str, Carried] | None = {} if chunk.hands_off else None
        storage.makedirs(storage.parent(files.state))
        pieces = files.pieces(self.config.encoding)
        spans = [Span(p.start, p.end, p.path, p.encoding) for p in pieces]  # type: ignore[arg-type]
        mine = [f for f in faults if not f.at_start and f.chunk == chunk.index
                and (not f.attempts or attempt in f.attempts)]

        def on_frame(i: int) -> None:
            for fault in mine:
                if i - chunk.first == fault.at_frame:
                    if fault.kind == "exit":
                        os._exit(1)  # a worker process dying mid-chunk, as a lost node would
                    if fault.kind == "hang":
                        time.sleep(3600)  # a worker that stops answering, as on a wedged GPU
                    if fault.kind == "unavailable":  # what Ray raises while it cannot reach a live actor
                        raise ray.exceptions.ActorUnavailableError("injected fault: unreachable", None)
                    raise RuntimeError(f"injected fault in chunk {chunk.index} at frame {i}")

        def run(dreamer: Any) -> Any:
            return dream_range(
                index, chunk.first, chunk.end, spans, self.config, dreamer=dreamer, seed=chunk.seed,
                progress=lambda n: progress.add.remote(chunk.index, n), on_frame=on_frame, carried=carried, hand_off=hand_off,
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
        fingerprints = {p.key: piece_fingerprint(p, layout.offset) for p in pieces}
        if hand_off is not None:  # the next chunk of the shot continues from here
            storage.write_bytes(files.state, hand_off["carried"].to_bytes())
            fingerprints[files.state_key] = storage.fingerprint(files.state)
        return {"chunk": chunk.index, "frames": chunk.dreamed, "stats": asdict(stats), "host": os.uname().nodename,
                "node": ray.get_runtime_context().get_node_id(), "compute": self.dreamer.compute.describe(),
                "notes": list(self.dreamer.notes),
                "fingerprints": fingerprints,
                "batch": self.batcher.largest_batch if self.batcher is not None else 1}


@ray.remote(num_cpus=1)  # a CPU of its own: it decodes two streams and encodes one
def seam_task(side_a: str, side_b: str, output: str, encoding: Encoding, index: VideoIndex,
              frames: int, first: int) -> str:
    crossfade(side_a, side_b, output, encoding, index, frames, first)
    return piece_fingerprint(Piece(first, first + frames, output, encoding), index.first_number or 0)


@ray.remote(num_cpus=1)
def scan_cuts_task(index: VideoIndex, start: int, end: int, config: RenderConfig) -> list[int]:
    from ..pipeline import scan_cuts

    return scan_cuts(index, start, end, config)


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
    return _Progress.options(num_cpus=0, scheduling_strategy=strategy).remote()
