"""Image sequences: numbered PNG, TIFF or JPEG files as a video, in and out.

A sequence is named by a printf pattern (``shots/plate.%05d.png``) or by its directory. It has no
timing, so its frame rate is given (``--fps``, a rational such as ``24000/1001``). Probing lists
the files once and reads only their headers: a gap in the numbering or a frame of another size is
an error naming the first offending file, found before anything is dreamed. Frame ``i`` of the
sequence is file number ``first_number + i``; chunks read their own files, nothing else.

Written sequences keep the input's numbering (a video's frame ``i`` is file ``i``). Every frame is
written to a temporary name and renamed, so a file at its final name is always whole. 16-bit PNG
and TIFF are read and written at 16 bits (RGB 48).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .. import storage
from ..errors import VideoError
from ..values import parse_rate
from .colour import Colour, rgb_to_frame
from .naming import SUFFIXES, existing_numbers, frame_file
from .record import VideoIndex

__all__ = ["ImageWriter", "numbered", "probe_sequence", "read_image"]


def _pattern_of_directory(directory: Path) -> str:
    """The one numbered sequence in ``directory`` as a pattern (zero-padded where every number has
    the same count of digits)."""
    groups: dict[tuple[str, str], set[int]] = {}
    for entry in directory.iterdir():
        m = re.fullmatch(r"(.*?)(\d+)(\.[A-Za-z]+)", entry.name)
        if m and m.group(3).lower() in SUFFIXES:
            groups.setdefault((m.group(1), m.group(3)), set()).add(len(m.group(2)))
    if not groups:
        raise VideoError(
            f"{directory} holds no numbered {', '.join(SUFFIXES)} files; name the sequence with a "
            "pattern such as plate.%05d.png"
        )
    if len(groups) > 1:
        found = ", ".join(sorted(f"{p}#{s}" for p, s in groups))
        (prefix, suffix), _ = sorted(groups.items())[0]
        raise VideoError(
            f"{directory} holds several sequences ({found}); name one with a pattern such as "
            f"{directory / (prefix + '%05d' + suffix)}"
        )
    (prefix, suffix), widths = groups.popitem()
    digits = f"%0{widths.pop()}d" if len(widths) == 1 else "%d"
    return str(directory / f"{prefix}{digits}{suffix}")


def _numbers(pattern: str) -> list[int]:
    directory, name = os.path.split(pattern)
    if Path(name).suffix.lower() not in SUFFIXES:
        raise VideoError(
            f"image sequence {pattern}: {Path(name).suffix or 'no suffix'} is not one of {', '.join(SUFFIXES)}"
        )
    folder = Path(directory or ".")
    if not folder.is_dir():
        raise VideoError(f"image sequence {pattern}: the directory {folder} does not exist")
    numbers = existing_numbers(pattern)
    if not numbers:
        raise VideoError(f"image sequence {pattern} matches no files")
    return numbers


def _check_contiguous(pattern: str, numbers: list[int]) -> None:
    for a, b in zip(numbers, numbers[1:]):
        if b != a + 1:
            raise VideoError(
                f"image sequence {pattern} has a gap: {frame_file(pattern, a + 1)} is missing (frames {numbers[0]}–{a} "
                f"exist, then {b}); fill the gap, or render the parts as separate sequences"
            )


def _check_sizes(pattern: str, numbers: list[int]) -> None:
    """Every file's size from its header (Pillow reads headers only): one size for all."""
    from PIL import Image

    first = frame_file(pattern, numbers[0])
    size = None
    for n in numbers:
        path = frame_file(pattern, n)
        try:
            with Image.open(path) as image:
                here = image.size
        except (OSError, SyntaxError) as exc:
            raise VideoError(f"{path} is not a readable image ({exc}); replace it") from None
        if size is None:
            size = here
        elif here != size:
            raise VideoError(
                f"{path} is {here[0]}×{here[1]} but {first} is {size[0]}×{size[1]}; every frame of a "
                "sequence must have one size"
            )


def read_image(path: str) -> Any:
    """The one frame of an image file, decoded by FFmpeg (16-bit PNG and TIFF stay 16-bit)."""
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                return frame
    except (av.error.FFmpegError, IndexError) as exc:
        raise VideoError(f"{path} is not a readable image ({exc}); replace it") from None
    raise VideoError(f"{path} holds no image; replace it")


def colour_of(frame: Any) -> Colour:
    """RGB files are sRGB; a JPEG's Y'CbCr is BT.601, full range (JFIF)."""
    if frame.format.is_rgb or frame.format.name.startswith(("gray", "pal8", "ya")):
        return Colour.srgb()
    return Colour("bt709", "iec61966-2-1", "bt470bg", "pc")


def probe_sequence(path: str | os.PathLike[str], fps: Any) -> VideoIndex:
    """The :class:`~distdream.video.VideoIndex` of an image sequence (pattern or directory)."""
    text = str(path)
    if storage.is_uri(text):
        raise VideoError(f"image sequence {text}: sequences are read from a local or shared filesystem, not a URI")
    pattern = _pattern_of_directory(Path(text)) if Path(text).is_dir() else text
    rate = parse_rate(fps) if fps is not None else None
    if rate is None:
        raise VideoError(
            f"image sequence {pattern} carries no timing; give its frame rate, e.g. --fps 24 or --fps 24000/1001"
        )
    numbers = _numbers(pattern)
    _check_contiguous(pattern, numbers)
    _check_sizes(pattern, numbers)
    first = read_image(frame_file(pattern, numbers[0]))
    count = len(numbers)
    return VideoIndex(
        path=os.path.abspath(pattern),
        stream_index=0,
        codec=Path(pattern).suffix.lower().lstrip("."),
        width=first.width,
        height=first.height,
        rotation=0,
        pix_fmt=first.format.name,
        time_base=Fraction(1) / rate,
        average_rate=rate,
        pts=np.arange(count, dtype=np.int64),
        keyframes=np.arange(count, dtype=np.int64),
        colour=colour_of(first),
        first_number=numbers[0],
    )


def numbered(index: VideoIndex, pattern: str) -> VideoIndex:
    """The index of numbered image files written for the video ``index`` describes (by
    :class:`ImageWriter`, frame ``i`` as file ``first_number + i``), to read them back with
    :func:`~distdream.video.read_frames`."""
    return replace(
        index, path=str(pattern), first_number=index.first_number or 0, pix_fmt="rgb48be", colour=Colour.srgb()
    )


def sequence_frames(index: VideoIndex, start: int, end: int) -> Iterator[Any]:
    """Decoded frames ``[start, end)`` of a sequence, each checked against the sequence's size."""
    for i in range(start, end):
        path = frame_file(index.path, (index.first_number or 0) + i)
        if not os.path.exists(path):
            raise VideoError(f"{path} (frame {i} of the sequence) is missing; it was there when the job started")
        frame = read_image(path)
        if (frame.width, frame.height) != (index.width, index.height):
            raise VideoError(f"{path} is {frame.width}×{frame.height}, not the sequence's {index.width}×{index.height}")
        yield frame


class ImageWriter:
    """Write frames as numbered image files, each whole at its name (temp name, then rename).

    Frame ``k`` written goes to ``pattern`` numbered ``first + k``. The same interface as
    :class:`~distdream.video.SegmentWriter` (``write``, ``close``, ``abort``; a context manager).
    """

    def __init__(self, pattern: str, first: int, fmt: Any, *, rotation: int = 0) -> None:
        self.path, self.first, self.format, self.rotation = pattern, first, fmt, rotation
        self.frames = 0
        self._codec = av.CodecContext.create(fmt.encoder, "w")
        self._opened = False
        storage.makedirs(os.path.dirname(pattern) or ".")

    def write(self, rgb: np.ndarray) -> None:
        stored = np.ascontiguousarray(np.rot90(rgb, k=-(self.rotation // 90))) if self.rotation else rgb
        frame = rgb_to_frame(stored, self.format.pix_fmt, self.format.colour)
        if not self._opened:
            self._codec.width, self._codec.height, self._codec.pix_fmt = frame.width, frame.height, self.format.pix_fmt
            self._codec.time_base = Fraction(1, 25)
            self.format.colour.tag(self._codec)
            self._opened = True
        frame.pts = self.frames
        data = b"".join(bytes(p) for p in self._codec.encode(frame))
        storage.write_bytes(frame_file(self.path, self.first + self.frames), data)
        self.frames += 1

    def close(self) -> str:
        return self.path

    def abort(self) -> None:
        """Frames already written are whole; nothing partial exists to drop."""

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None
