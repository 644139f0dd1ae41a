"""Segment encoding: the pieces a job writes, all in one :class:`~.formats.Format` and each starting
on a keyframe, so they join by remuxing. Frames arrive as upright RGB (float32 at full precision,
or uint8/uint16) and are converted with the format's matrix and range (:mod:`.colour`). A segment
appears at its path only when complete. :func:`open_writer` picks a segment or numbered images."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .. import storage
from ..config import Encoding
from ..errors import VideoError
from .colour import Colour, rgb_to_frame
from .formats import Format, output_format
from .imageseq import ImageWriter
from .naming import is_pattern


def add_video_stream(container: Any, codec: str, rate: Fraction) -> av.VideoStream:
    """A video stream of ``codec`` added to an output ``container`` (PyAV types it by codec name)."""
    _check_encoder(codec, "video")
    stream = container.add_stream(codec, rate=rate)
    assert isinstance(stream, av.VideoStream)
    return stream


def add_audio_stream(container: Any, codec: str, rate: int) -> av.AudioStream:
    """An audio stream of ``codec`` added to an output ``container``."""
    _check_encoder(codec, "audio")
    stream = container.add_stream(codec, rate=rate)
    assert isinstance(stream, av.AudioStream)
    return stream


def _check_encoder(codec: str, kind: str) -> None:
    try:
        found = av.codec.Codec(codec, "w").type
    except av.codec.codec.UnknownCodecError:  # no encoder of that name
        found = None
    if found != kind:
        raise VideoError(f"{codec} is not {'an' if kind == 'audio' else 'a'} {kind} encoder")


class SegmentWriter:
    """Encode upright RGB frames into one segment file, written atomically.

    All segments of a job must be written with the same ``width``, ``height``, ``rate``,
    ``rotation`` and ``fmt`` (:func:`~distdream.video.output_format`); :func:`concat` checks that
    they match. Without ``fmt``, H.264 with ``encoding``'s quality, 4:2:0 (4:4:4 for odd sizes),
    BT.601/BT.709 by size. Frames are stored in the input's orientation (un-rotated), so the joined
    output keeps the input's layout.

    Use as a context manager: the file appears at ``path`` only when the block exits cleanly.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction,
        encoding: Encoding = Encoding(),
        rotation: int = 0,
        fmt: Format | None = None,
    ) -> None:
        encoding.validate()
        self.path = storage.check_writable(path, VideoError)
        self.width, self.height, self.rotation = width, height, rotation
        self.frames = 0
        self._tmp = storage.temp_for(self.path)
        rate = Fraction(rate).limit_denominator(1_000_000) if rate else Fraction(25)
        stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
        self.format = fmt or output_format(encoding, "yuv420p", Colour().resolved(width, height), stored_w, stored_h)
        try:
            self._container = av.open(str(self._tmp), mode="w", format=self.format.container)
        except BaseException as exc:
            self._tmp.unlink(missing_ok=True)  # nothing of a segment that never opened stays behind
            if isinstance(exc, av.error.FFmpegError):
                raise VideoError(f"cannot write segment {storage.name_of(self.path)}: {exc.strerror}") from None
            raise
        self._stream = add_video_stream(self._container, self.format.encoder, rate)
        self._time_base = Fraction(1, 1) / rate
        self._stream.width, self._stream.height = stored_w, stored_h
        self._stream.pix_fmt = self.format.pix_fmt
        self.format.colour.tag(self._stream.codec_context)
        self._stream.options = dict(self.format.options)

    def write(self, rgb: np.ndarray) -> None:
        """Append one upright (H, W, 3) frame: float32 R'G'B' (1.0 full scale), or uint8/uint16."""
        if rgb.shape != (self.height, self.width, 3):
            raise VideoError(
                f"segment {storage.name_of(self.path)} takes ({self.height}, {self.width}, 3) frames, got {rgb.shape}"
            )
        stored = np.ascontiguousarray(np.rot90(rgb, k=-(self.rotation // 90))) if self.rotation else rgb
        frame = rgb_to_frame(stored, self.format.pix_fmt, self.format.colour)
        frame.pts = self.frames  # nominal constant rate; concat assigns the input's real timestamps
        frame.time_base = self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path | str:
        """Flush the encoder, close the file and rename (or put) it into place; returns where it is.

        If any of that fails, the partial file is removed before the error propagates.
        """
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            storage.publish(self._tmp, self.path, VideoError)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file (nothing appears at the final path)."""
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_writer(path: str | os.PathLike[str], index: Any, fmt: Format, first: int) -> SegmentWriter | ImageWriter:
    """A writer for frames ``first, first + 1, …`` of the video ``index`` describes: numbered image
    files where ``path`` is a pattern, else one segment file."""
    if is_pattern(path):
        return ImageWriter(str(path), (index.first_number or 0) + first, fmt, rotation=index.rotation)
    return SegmentWriter(
        path, width=index.width, height=index.height, rate=index.average_rate, rotation=index.rotation, fmt=fmt
    )
