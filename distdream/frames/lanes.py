"""Lanes: several chunks dreamed together on one device, one batch per frame position.

At batch size 1 a GPU spends most of a dream step launching small kernels. A worker with
``lanes`` > 1 runs that many chunks at once, each in its own thread with its own decoder, flow,
occlusion masks, generator and dream state, exactly as it would alone; only the network call is
shared. Every lane hands its next frame to a :class:`LaneBatcher`, which waits until each lane
that is running has a frame ready, then dreams them all as one batch
(:meth:`~distdream.dream.Dreamer.dream_batch`) and hands each lane its own result back.

Lanes are independent: one that finishes (or fails) leaves, and the next chunk joins whenever the
engine gives the worker one. If the device runs out of memory, the batch is redone in halves (the
lanes' generators rewound, so their frames do not change) and later batches stay that small. A
lane's result equals its unbatched rendering up to the rounding of batched kernels (see ``Dreamer.dream_batch``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..dream import Anchor, Dreamer

__all__ = ["Lane", "LaneBatcher"]

log = logging.getLogger("distdream")


@dataclass(eq=False)
class _Request:
    image: torch.Tensor  # (1, 3, H, W)
    generator: torch.Generator
    num_iterations: int | None
    progress: Callable[[int], None] | None
    anchor: Anchor | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: torch.Tensor | None = None
    error: BaseException | None = None


class Lane:
    """One lane's view of the batcher: dreams like a :class:`~distdream.dream.Dreamer`."""

    def __init__(self, batcher: LaneBatcher, slot: int) -> None:
        self._batcher, self.slot = batcher, slot

    @property
    def device(self) -> torch.device:
        """The device the batch's network runs on."""
        return self._batcher.dreamer.device

    def dream(
        self,
        image: torch.Tensor,
        *,
        generator: torch.Generator,
        num_iterations: int | None = None,
        progress: Callable[[int], None] | None = None,
        anchor: Anchor | None = None,
    ) -> torch.Tensor:
        """Dream ``image`` (1, 3, H, W) in this lane; blocks until the batch it joined is done."""
        request = _Request(image, generator, num_iterations, progress, anchor)
        self._batcher._submit(self.slot, request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result


class LaneBatcher:
    """Runs the frames of all open lanes as one batch through one :class:`Dreamer`.

    Open a lane per chunk with ``with batcher.lane() as lane:`` and dream through ``lane``. A
    batch runs as soon as every open lane has submitted a frame, so lanes advance together,
    frame position by frame position. Batches are ordered by lane slot, so the same lanes give
    the same batch. ``batches`` and ``frames`` count what ran (for tests and reports).
    """

    def __init__(self, dreamer: Dreamer | Callable[[], Dreamer]) -> None:
        """``dreamer``, or a function that builds one on the batching thread.

        Build it there on multi-threaded CPU workers: libgomp (PyTorch's OpenMP) slows every
        parallel region about threefold once two threads have each run one, because their
        worker pools together outnumber the cores and it stops spinning (docs/benchmarks/cpu.md).
        With the model built on the thread that dreams, only
        one pool exists.
        """
        self._cond = threading.Condition()
        self._open: set[int] = set()
        self._pending: dict[int, _Request] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.frames = 0
        self.largest_batch = 0
        self.busy_seconds = 0.0  # time spent dreaming batches (the rest, it waited for lanes)
        self.max_batch: int | None = None  # set after the device ran out of memory
        if isinstance(dreamer, Dreamer):
            self.dreamer = dreamer
        else:
            built: list[Dreamer | BaseException] = []
            ready = threading.Event()
            self._start(lambda: self._build(dreamer, built, ready))
            ready.wait()
            if isinstance(built[0], BaseException):
                raise built[0]
            self.dreamer = built[0]

    @staticmethod
    def _build(factory: Callable[[], Dreamer], built: list, ready: threading.Event) -> bool:
        try:
            built.append(factory())
        except BaseException as exc:  # a bad model name, weights missing: the caller raises it
            built.append(exc)
        ready.set()
        return not isinstance(built[0], BaseException)

    def _start(self, first: Callable[[], bool] | None = None) -> None:
        def body() -> None:
            if first is None or first():
                self._run()

        self._thread = threading.Thread(target=body, name="distdream-lanes", daemon=True)
        self._thread.start()

    @contextmanager
    def lane(self) -> Iterator[Lane]:
        """A lane for one chunk; it leaves the batch when the block ends, however it ends."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the lane batcher is closed")
            slot = next(i for i in range(len(self._open) + 1) if i not in self._open)
            self._open.add(slot)
            if self._thread is None:
                self._start()
        try:
            yield Lane(self, slot)
        finally:
            with self._cond:
                self._open.discard(slot)
                self._pending.pop(slot, None)
                self._cond.notify_all()  # the others may now all be waiting: their batch can run

    def close(self) -> None:
        """Stop the batching thread once the open lanes have left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _submit(self, slot: int, request: _Request) -> None:
        with self._cond:
            if slot not in self._open or self._closed:
                raise RuntimeError(f"lane {slot} is not open" if not self._closed else "the lane batcher is closed")
            self._pending[slot] = request
            self._cond.notify_all()

    def _ready(self) -> bool:
        return self._closed or (bool(self._pending) and self._pending.keys() >= self._open)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready)
                if not self._pending:  # closed, nothing left
                    return
                batch = [self._pending.pop(slot) for slot in sorted(self._pending)]
            t0 = time.perf_counter()
            try:
                results = self._dream(batch)
            except BaseException as exc:  # every lane of a failed batch fails (a bad frame, OOM at batch 1)
                for r in batch:
                    r.error = exc
            else:
                for r, out in zip(batch, results, strict=True):
                    r.result = out
            self.busy_seconds += time.perf_counter() - t0
            for r in batch:
                r.done.set()

    def _dream(self, batch: list[_Request]) -> list[torch.Tensor]:
        """Dream ``batch`` in pieces of at most ``max_batch``; halve that when the device runs out of memory.

        Each piece restarts from the generators' states before it, so a piece redone after an
        out-of-memory error draws the same jitter: its frames are those it would have had.
        """
        results: list[torch.Tensor] = []
        while len(results) < len(batch):
            size = min(self.max_batch or len(batch), len(batch) - len(results))
            piece = batch[len(results) : len(results) + size]
            states = [r.generator.get_state() for r in piece]
            try:
                results += self.dreamer.dream_batch(
                    [r.image for r in piece],
                    generators=[r.generator for r in piece],
                    num_iterations=[r.num_iterations for r in piece],
                    progress=[r.progress for r in piece],
                    anchors=[r.anchor for r in piece],
                )
            except torch.OutOfMemoryError:
                if size == 1:
                    raise
                for r, state in zip(piece, states, strict=True):
                    r.generator.set_state(state)
                self.max_batch = size // 2
                if self.dreamer.device.type == "cuda":
                    torch.cuda.empty_cache()
                note = f"out of device memory at {size} lanes; batches of at most {self.max_batch} from here"
                log.warning(note)
                self.dreamer.notes.append(note)
                continue
            self.batches += 1
            self.frames += size
            self.largest_batch = max(self.largest_batch, size)
        return results
