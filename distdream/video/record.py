"""The video index record: what the pipeline knows of a video, small enough to ship in every job
plan. At the bottom of :mod:`distdream.video`: probing (:mod:`.index`) and image sequences
(:mod:`.imageseq`) both make one, and it needs neither."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from .colour import Colour
from .formats import bit_depth

__all__ = ["AudioStreamInfo", "VideoIndex"]


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of the input (copied into the output as it is)."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float | None  # seconds, from the container; None when it does not say


@dataclass(frozen=True, eq=False)
class VideoIndex:
    """What the pipeline needs to know of a video, small enough to ship in every job plan.

    ``pts`` holds every frame's presentation timestamp in ``time_base`` units, sorted; frame ``i``
    is the ``i``-th frame a decoder outputs. In JSON the timestamps are stored as zlib-compressed
    deltas: a constant-rate 2-hour video costs a few hundred bytes, a jittery variable-rate one
    well under a megabyte.
    """

    path: str
    stream_index: int
    codec: str
    width: int  # upright (after rotation), as read_frames yields frames
    height: int
    rotation: int  # degrees counter-clockwise a player rotates the stored frames by: 0, 90, 180, 270
    pix_fmt: str
    time_base: Fraction
    average_rate: Fraction
    pts: np.ndarray = field(repr=False)  # (frame_count,) int64, sorted
    keyframes: np.ndarray = field(repr=False)  # (k,) int64 frame indices of keyframes, sorted
    audio: tuple[AudioStreamInfo, ...] = ()
    colour: Colour = Colour()  # the tags as the input gives them
    # an image sequence: ``path`` is a printf pattern and frame ``i`` is file number ``first_number + i``
    first_number: int | None = None

    @property
    def is_sequence(self) -> bool:
        return self.first_number is not None

    @property
    def working_colour(self) -> Colour:
        """The colour frames are converted with (the tags, resolved where they are silent)."""
        return self.colour.resolved(self.width, self.height)

    @property
    def frame_count(self) -> int:
        return int(self.pts.shape[0])

    @property
    def frame_duration(self) -> int:
        """Nominal frame duration in ``time_base`` units (the last frame lasts this long)."""
        if self.frame_count > 1:
            return int(np.median(np.diff(self.pts)))
        return max(1, round(1 / (self.average_rate * self.time_base))) if self.average_rate else 1

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        if not self.frame_count:
            return 0.0
        return float((int(self.pts[-1]) - int(self.pts[0]) + self.frame_duration) * self.time_base)

    @property
    def constant_rate(self) -> bool:
        """Whether every frame lasts equally long (one run of timestamps)."""
        return self.frame_count < 3 or bool((np.diff(self.pts) == self.pts[1] - self.pts[0]).all())

    def gop_range(self) -> tuple[int, int]:
        """Shortest and longest distance between keyframes, in frames (the last GOP included)."""
        gops = np.diff(np.append(self.keyframes, self.frame_count))
        return int(gops.min()), int(gops.max())

    def slice(self, start: int, end: int) -> VideoIndex:
        """The index of frames ``[start, end)`` only (timestamps kept as they are)."""
        keys = self.keyframes[(self.keyframes >= start) & (self.keyframes < end)] - start
        return replace(self, pts=self.pts[start:end].copy(), keyframes=keys.astype(np.int64))

    def keyframe_at_or_before(self, frame: int) -> int:
        """Index of the last keyframe whose position is ``<= frame`` (0 when there is none)."""
        pos = int(np.searchsorted(self.keyframes, frame, side="right")) - 1
        return int(self.keyframes[pos]) if pos >= 0 else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary; :meth:`from_dict` restores it exactly."""
        return {
            "path": self.path,
            "stream_index": self.stream_index,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "pix_fmt": self.pix_fmt,
            "time_base": str(self.time_base),
            "average_rate": str(self.average_rate),
            "frame_count": self.frame_count,
            "duration": self.duration,
            "pts_deltas_zlib": _pack(self.pts),
            "keyframes_deltas_zlib": _pack(self.keyframes),
            "audio": [vars(a) for a in self.audio],
            "colour": self.colour.to_dict(),
            "bit_depth": bit_depth(self.pix_fmt),
            "first_number": self.first_number,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoIndex:
        return cls(
            path=data["path"],
            stream_index=data["stream_index"],
            codec=data["codec"],
            width=data["width"],
            height=data["height"],
            rotation=data["rotation"],
            pix_fmt=data["pix_fmt"],
            time_base=Fraction(data["time_base"]),
            average_rate=Fraction(data["average_rate"]),
            pts=_unpack(data["pts_deltas_zlib"]),
            keyframes=_unpack(data["keyframes_deltas_zlib"]),
            audio=tuple(AudioStreamInfo(**a) for a in data["audio"]),
            colour=Colour(**data.get("colour", {})),
            first_number=data.get("first_number"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VideoIndex) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # unhashable, as __eq__ compares contents; typeshed types it a method


def _pack(values: np.ndarray) -> str:
    """Sorted int64 values → base64 of zlib-compressed deltas (regular spacing: a few bytes per hour)."""
    deltas = np.diff(values, prepend=np.int64(0)).astype("<i8")
    return base64.b64encode(zlib.compress(deltas.tobytes(), 9)).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8")).astype(np.int64)
