"""Frames and their motion, decoded ahead of the dreamer on a thread of its own.

OpenCV and PyAV release the GIL while they work, so the flow of upcoming frames is computed while
torch dreams the current one. The reader stays at most ``lookahead`` frames (and their flows)
ahead: memory is bounded by that window, not by the range.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from ..config import FlowConfig
from ..errors import VideoError
from ..video import VideoIndex, read_frames
from .flow import FrameMotion, MotionEstimator

__all__ = ["MotionReader"]

_DONE = object()  # the queue's end marker


class MotionReader:
    """Frames ``[start, end)`` of ``index`` with each one's motion against the frame before it.

    Iterating yields ``(i, frame, motion)`` (``motion`` is None for the first frame) and re-raises
    any failure of the thread. ``times`` gets the thread's ``decode`` and ``flow`` seconds and the
    consumer's ``flow_wait`` (the time it waited for the next frame). Always :meth:`close` it.
    """

    def __init__(
        self, index: VideoIndex, start: int, end: int, config: FlowConfig, lookahead: int, times: dict[str, float]
    ) -> None:
        for key in ("flow_wait", "decode", "flow"):
            times.setdefault(key, 0.0)
        self._times = times
        self._queue: queue.Queue = queue.Queue(maxsize=lookahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(index, start, end, config), name="distdream-flow", daemon=True
        )
        self._thread.start()

    def _run(self, index: VideoIndex, start: int, end: int, config: FlowConfig) -> None:
        """Thread body: decode frames and compute their motion (only this thread writes its keys)."""
        times = self._times
        try:
            estimator = MotionEstimator(config)  # per thread: DIS keeps state
            prev: np.ndarray | None = None
            frames = read_frames(index.path, start, end, index=index, dtype=np.float32)  # at full precision
            for i in range(start, end):
                t0 = time.perf_counter()
                frame = next(frames, None)
                t1 = time.perf_counter()
                times["decode"] += t1 - t0
                if frame is None:
                    break
                motion = estimator.motion(prev, frame) if prev is not None else None
                times["flow"] += time.perf_counter() - t1
                prev = frame
                if not self._offer((i, frame, motion)):
                    return
            self._offer(_DONE)
        except BaseException as exc:  # hand every failure to the consumer, which re-raises it
            self._offer(exc)

    def _offer(self, item: object) -> bool:
        """Put ``item`` unless the consumer has stopped (a full queue nobody reads must not block forever)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _take(self) -> object:
        """The next item; a reader that died without handing one over is an error, not a wait."""
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise VideoError("the frame reader stopped without a frame or an error") from None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, FrameMotion | None]]:
        while True:
            t0 = time.perf_counter()
            item = self._take()
            self._times["flow_wait"] += time.perf_counter() - t0
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # the queue holds frames, errors and _DONE; both others are handled above

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
