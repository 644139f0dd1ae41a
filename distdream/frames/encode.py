"""Dreamed frames into their segment files: a range's frames go to one or more spans, each its own
file (or numbered image files), encoded on a thread of its own (x264 and PyAV release the GIL, so frame ``i`` is encoded
while frame ``i + 1`` is dreamed)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Encoding
from ..errors import VideoError
from ..video import ImageWriter, SegmentWriter, VideoIndex, format_for, open_writer

__all__ = ["Encoder", "Span"]

_DONE = object()  # the queue's end marker


@dataclass(frozen=True)
class Span:
    """Frames ``[start, end)`` of a dreamed range go to the segment file ``path`` (or, where it is a
    printf pattern, to numbered image files)."""

    start: int
    end: int
    path: Path | str
    encoding: Encoding


class Encoder:
    """Encodes dreamed frames into their span files on a thread of its own.

    x264 and PyAV release the GIL while they work, so frame ``i`` is encoded while frame ``i + 1``
    is dreamed; the dreamer blocks only when the encoder falls ``depth`` frames behind (memory:
    ``depth`` frames). A span's file appears (temp name + rename) once its last frame is encoded;
    a failure in the encoder reaches the dreamer at its next :meth:`put` or at :meth:`finish`.
    """

    def __init__(self, index: VideoIndex, spans: Sequence[Span], *, depth: int = 4) -> None:
        self._index, self._spans = index, list(spans)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self.busy_seconds = 0.0  # encoding (the thread's own time)
        self.wait_seconds = 0.0  # the dreamer blocked in put()
        self._thread = threading.Thread(target=self._run, name="distdream-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        writer: SegmentWriter | ImageWriter | None = None
        pending, left = list(self._spans), 0
        try:
            while True:
                rgb = self._queue.get()
                if rgb is _DONE or self._abort.is_set():
                    return
                t0 = time.perf_counter()
                if writer is None:
                    span = pending.pop(0)
                    writer = open_writer(span.path, self._index, format_for(span.encoding, self._index), span.start)
                    left = span.end - span.start
                writer.write(rgb)
                left -= 1
                if left == 0:
                    done, writer = writer, None
                    try:
                        done.close()
                    except BaseException:
                        done.abort()  # no partial file beside the segment's final name
                        raise
                self.busy_seconds += time.perf_counter() - t0
        except BaseException as exc:  # handed to the dreamer's thread, which raises it
            self._error = exc
        finally:
            if writer is not None:
                writer.abort()

    def put(self, rgb: np.ndarray) -> None:
        """Queue one frame; raises what the encoder failed with, if it did."""
        t0 = time.perf_counter()
        try:
            while True:
                if self._error is not None:
                    raise self._error
                if not self._thread.is_alive():
                    raise VideoError("the encoder thread stopped before every frame was written")
                try:
                    self._queue.put(rgb, timeout=0.1)
                    return
                except queue.Full:
                    continue
        finally:
            self.wait_seconds += time.perf_counter() - t0

    def finish(self, timeout: float = 600.0) -> None:
        """Wait until every queued frame is encoded and the last file is in place."""
        self.put(_DONE)  # type: ignore[arg-type]  # the sentinel that ends the encoder thread, not a frame
        t0 = time.perf_counter()
        self._thread.join(timeout)
        self.wait_seconds += time.perf_counter() - t0
        if self._thread.is_alive():
            raise VideoError(f"encoding the last frames took over {timeout:.0f} s")
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop without finishing: the span being written is dropped (nothing at its final path)."""
        self._abort.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_DONE)
        self._thread.join(timeout=60)
