"""Video I/O with PyAV: probe/index, exact frame-range reads, segment encoding, lossless joining.

The only module that imports ``av``. Four operations carry chunked rendering:

- :func:`probe` builds a :class:`VideoIndex` from a demux-only pass (no decoding but the first
  frame): exact frame count, every presentation timestamp, keyframe positions, audio streams.
  Container metadata is not trusted (MKV stores no frame count; MP4 edit lists lie).
- :func:`read_frames` yields exactly frames ``[start, end)`` as upright RGB arrays: it seeks to the
  keyframe at or before ``start``, decodes forward, drops what precedes ``start`` and stops at
  ``end``. Frames are identified by timestamp, so the result equals a sequential decode.
- :class:`SegmentWriter` encodes frames to an H.264 segment. Every segment of a job is opened with
  identical settings and starts on an IDR frame, so segments can be joined by remuxing.
- :func:`concat` joins segments by remuxing packets (no re-encode), gives every frame the input's
  own timestamp (variable frame rates survive), copies the input's audio streams, and writes to a
  temporary name that is renamed into place.

Odd frame sizes: H.264 4:2:0 cannot represent them (its cropping unit is 2 pixels in each
direction, so x264 refuses an odd crop rectangle). Segments of odd-sized video are therefore
encoded in 4:4:4 (``yuv444p``, High 4:4:4 profile), which allows any size; even-sized video uses
``yuv420p`` for the widest player support. Either way the output has the input's exact size.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .config import EncoderSettings
from . import storage
from .errors import VideoError
from .paths import check_output_path, temp_sibling

__all__ = [
    "AudioStreamInfo",
    "EncoderSettings",
    "SegmentWriter",
    "VideoIndex",
    "check_output_container",
    "concat",
    "packet_digest",
    "probe",
    "read_frames",
]


# ---------------------------------------------------------------------------------------------
# The index


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
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VideoIndex) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _pack(values: np.ndarray) -> str:
    """Sorted int64 values → base64 of zlib-compressed deltas (regular spacing: a few bytes per hour)."""
    deltas = np.diff(values, prepend=np.int64(0)).astype("<i8")
    return base64.b64encode(zlib.compress(deltas.tobytes(), 9)).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8")).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Opening and probing


def _open_input(path: str | os.PathLike[str]) -> Any:
    if storage.is_uri(path):
        uri = str(path)
        if not storage.exists(uri, VideoError):
            raise VideoError(f"video {uri} does not exist")
        if storage.size(uri) == 0:
            raise VideoError(f"video {uri} is empty (0 bytes)")
        handle = storage.open_read(uri, VideoError)  # ranged reads: only what is decoded is fetched
        try:
            return av.open(handle, mode="r")
        except av.error.FFmpegError as exc:
            raise VideoError(f"{uri} is not a readable video ({exc.strerror})") from None
    path = Path(path)
    if not path.exists():
        raise VideoError(f"video {path} does not exist")
    if not path.is_file():
        raise VideoError(f"video {path} is not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"video {path} is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"{path} is not a readable video ({exc.strerror}); is it truncated, or not a video at all?"
        ) from None


def _video_stream(container: Any, path: str | os.PathLike[str]) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no"]
        raise VideoError(f"{path} has no video stream (it has {', '.join(kinds)} streams only)")
    return container.streams.video[0]


def _rotation(frame: Any) -> int:
    # PyAV reports the display-matrix rotation, counter-clockwise degrees; quarter turns only.
    raw = getattr(frame, "rotation", 0) or 0
    return int(round(raw / 90.0)) % 4 * 90


def probe(path: str | os.PathLike[str]) -> VideoIndex:
    """Index ``path``: a demux-only pass over the video packets, plus one decoded frame.

    Raises :class:`VideoError` for a missing, empty, unreadable or truncated file, a file with no
    video stream, or a video whose frames cannot be decoded.
    """
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        pts: list[int] = []
        keys: list[int] = []  # pts of keyframe packets
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:  # flush marker; edit-list-dropped frames
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    raise VideoError(
                        f"{path} has video packets without timestamps (a raw elementary stream?); "
                        "remux it into MP4 or MKV first, e.g. ffmpeg -i IN -c copy OUT.mkv"
                    )
                pts.append(int(ts))
                if packet.is_keyframe:
                    keys.append(int(ts))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path} is damaged: demuxing failed after {len(pts)} frames ({exc.strerror})") from None
        if not pts:
            raise VideoError(f"{path} has a video stream with no frames")
        sorted_pts = np.unique(np.asarray(pts, dtype=np.int64))  # presentation order; drops duplicates
        time_base = Fraction(stream.time_base)
        _check_not_truncated(container, path, sorted_pts, time_base)
        first = _first_frame(container, stream, path)
        rotation = _rotation(first)
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        rate = stream.average_rate or stream.guessed_rate
        if not rate and len(sorted_pts) > 1:
            rate = Fraction(len(sorted_pts) - 1, 1) / ((int(sorted_pts[-1]) - int(sorted_pts[0])) * time_base)
        keyframes = np.searchsorted(sorted_pts, np.unique(np.asarray(keys or [sorted_pts[0]], dtype=np.int64)))
        audio = tuple(
            AudioStreamInfo(
                index=s.index,
                codec=s.codec_context.name,
                sample_rate=int(s.codec_context.sample_rate or 0),
                channels=int(s.codec_context.channels or 0),
                duration=float(s.duration * s.time_base) if s.duration else None,
            )
            for s in container.streams.audio
        )
        return VideoIndex(
            path=str(path),
            stream_index=stream.index,
            codec=stream.codec_context.name,
            width=width,
            height=height,
            rotation=rotation,
            pix_fmt=first.format.name,
            time_base=time_base,
            average_rate=Fraction(rate or 0),
            pts=sorted_pts,
            keyframes=keyframes.astype(np.int64),
            audio=audio,
        )


def packet_digest(path: str | os.PathLike[str], index: VideoIndex, packets: int = 3) -> str:
    """sha256 of the first and last ``packets`` video packets: which content this is, cheaply.

    A re-graded or re-exported cut of the same length and timing has other packets; reading them
    costs two short demuxes (the start, and from the last keyframe on), not a pass over the file.
    """
    import hashlib

    digest = hashlib.sha256()
    with _open_input(path) as container:
        stream = container.streams[index.stream_index]
        head = [bytes(p) for p in itertools.islice((p for p in container.demux(stream) if p.size), packets)]
        container.seek(int(index.pts[index.keyframes[-1]]), stream=stream, backward=True, any_frame=False)
        tail = [bytes(p) for p in container.demux(stream) if p.size][-packets:]
    for data in (*head, b"|", *tail):
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:32]


def check_output_container(path: str | os.PathLike[str], index: VideoIndex | None = None) -> str:
    """The container format ``path``'s suffix names, if it takes H.264 video (and the input's
    audio, given ``index``); else :class:`VideoError`.

    Test-opens the muxer in a scratch file with the streams the stitcher will write.
    """
    suffix = Path(storage.name_of(path)).suffix.lower()
    if not suffix:
        raise VideoError(f"output {path} has no suffix; give it .mp4, .mkv or .mov")
    with tempfile.TemporaryDirectory(prefix="distdream-mux-") as tmp:
        scratch = Path(tmp) / f"probe{suffix}"
        source = _open_input(index.path) if index is not None and index.audio else None
        try:
            with av.open(str(scratch), mode="w") as out:
                stream = out.add_stream("libx264", rate=25)
                stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
                for audio in source.streams.audio if source is not None else ():
                    out.add_stream_from_template(audio)
                out.start_encoding()
                name = out.format.name
        except (av.error.FFmpegError, ValueError) as exc:
            what = "H.264 video" + (" with the input's audio" if source is not None else "")
            raise VideoError(
                f"output {path}: {suffix} is not a container that takes {what} ({exc}); use .mp4, .mkv or .mov"
            ) from None
        finally:
            if source is not None:
                source.close()
    return name


def _check_not_truncated(container: Any, path: Any, pts: np.ndarray, time_base: Fraction) -> None:
    # A truncated MKV demuxes cleanly up to the cut; only the container's own duration (written
    # in its header) shows that frames are missing.
    if not container.duration or len(pts) < 2:
        return
    said = container.duration / av.time_base  # seconds
    step = float(np.median(np.diff(pts)) * time_base)
    seen = float((int(pts[-1]) - int(pts[0])) * time_base) + step
    if seen + max(3 * step, 0.25) < said:
        raise VideoError(
            f"{path} is truncated or damaged: its frames stop after frame {len(pts) - 1} "
            f"({seen:.2f} s) but the container says it lasts {said:.2f} s"
        )


def _first_frame(container: Any, stream: Any, path: Any) -> Any:
    container.seek(0, stream=stream, backward=True)
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path} has no decodable video frames ({exc.strerror})") from None
    raise VideoError(f"{path} has no decodable video frames")


# ---------------------------------------------------------------------------------------------
# Reading a frame range


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(array, k=rotation // 90)) if rotation else array


def read_frames(
    path: str | os.PathLike[str], start: int = 0, end: int | None = None, *, index: VideoIndex | None = None
) -> Iterator[np.ndarray]:
    """Yield frames ``[start, end)`` of ``path`` as upright (H, W, 3) uint8 RGB arrays.

    Seeks to the keyframe at or before ``start`` and decodes forward; never decodes past ``end``.
    Pass the ``index`` from :func:`probe` to skip re-indexing (workers get it from the plan).
    A decoding failure raises :class:`VideoError` naming the frame it happened at.
    """
    index = index or probe(path)
    end = index.frame_count if end is None else end
    if not 0 <= start <= end <= index.frame_count:
        raise VideoError(f"frame range [{start}, {end}) is outside {path}, which has {index.frame_count} frames")
    if start == end:
        return
    with _open_input(path) as container:
        stream = container.streams[index.stream_index]
        stream.codec_context.thread_type = "AUTO"  # frame + slice threads: decode is the reader's cost
        yield from _decode_range(container, stream, index, start, end, path)


def _decode_range(container: Any, stream: Any, index: VideoIndex, start: int, end: int, path: Any) -> Iterator[np.ndarray]:
    key = index.keyframe_at_or_before(start)
    for attempt in itertools.count():
        # Seeking lands on a keyframe at or before the target timestamp in every demuxer we know;
        # if one lands after it (a sparse or odd index), retry from an earlier keyframe, then 0.
        seek_to = key if attempt == 0 else index.keyframe_at_or_before(max(key - 1, 0)) if attempt == 1 else 0
        key = seek_to
        container.seek(int(index.pts[seek_to]), stream=stream, backward=True, any_frame=False)
        stream.codec_context.flush_buffers()
        frames = _frames_from(container, stream, index, start, end, path)
        first = next(frames, None)
        if first is None:
            raise VideoError(f"decoding {path} produced no frame at or after frame {start}")
        if first is _OVERSHOT:
            if seek_to == 0 and attempt >= 2:
                raise VideoError(f"cannot reach frame {start} of {path}: the decoder never outputs it")
            continue
        yield first
        yield from frames
        return


_OVERSHOT = np.zeros(0)  # sentinel: the first decoded frame lies after the requested start


def _frames_from(container: Any, stream: Any, index: VideoIndex, start: int, end: int, path: Any) -> Iterator[np.ndarray]:
    target = int(index.pts[start])
    expected = start
    rotation = index.rotation
    decoded = container.decode(stream)
    while expected < end:
        try:
            frame = next(decoded, None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"decoding {path} failed at frame {expected} ({exc.strerror}); the file is damaged there") from None
        if frame is None:
            raise VideoError(
                f"{path} ended at frame {expected}, but it has {index.frame_count} frames by its index "
                "(truncated or damaged file?)"
            )
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is None or ts < target:
            continue  # before the range (decoded from the keyframe), or a frame with no timestamp
        if expected == start and ts > target:
            yield _OVERSHOT
            return
        if int(index.pts[expected]) < ts:  # the decoder skipped a frame it could not conceal
            raise VideoError(f"decoding {path} failed at frame {expected}: the decoder dropped it (damaged data)")
        if int(index.pts[expected]) != ts:
            continue  # a duplicate timestamp, already delivered
        yield _upright(frame.to_ndarray(format="rgb24"), rotation)
        expected += 1


# ---------------------------------------------------------------------------------------------
# Writing segments


def _writable(path: str | os.PathLike[str]) -> Path | str:
    """Check an output location; URIs are checked for their bucket, local paths for a writable folder."""
    if storage.is_uri(path):
        storage.check_container(str(path), VideoError)
        return str(path)
    return check_output_path(path, error=VideoError)


def _local_target(final: Path | str) -> Path:
    """Where to write before the file appears at ``final``: beside it, or in local temp for a URI."""
    if storage.is_uri(final):
        fd, tmp = tempfile.mkstemp(prefix=".distdream.", suffix=f".partial.{storage.name_of(final).rsplit('.', 1)[-1]}")
        os.close(fd)
        return Path(tmp)
    return temp_sibling(final)


def _publish(tmp: Path, final: Path | str) -> None:
    """Rename (local) or put (URI) the finished temp file at its final place."""
    if storage.is_uri(final):
        try:
            storage.put_file(tmp, str(final), VideoError)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)


class SegmentWriter:
    """Encode upright RGB frames into one H.264 segment file, written atomically.

    All segments of a job must be written with the same ``width``, ``height``, ``rate``,
    ``rotation`` and ``settings``; :func:`concat` checks that they match. Frames are stored in the
    input's orientation (un-rotated), so the joined output keeps the input's layout.

    Use as a context manager: the file appears at ``path`` only when the block exits cleanly.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        rate: Fraction,
        settings: EncoderSettings = EncoderSettings(),
        rotation: int = 0,
    ) -> None:
        settings.validate()
        self.path = _writable(path)
        self.width, self.height, self.rotation = width, height, rotation
        self.frames = 0
        self._tmp = _local_target(self.path)
        rate = Fraction(rate).limit_denominator(1_000_000) if rate else Fraction(25)
        stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
        except BaseException as exc:
            self._tmp.unlink(missing_ok=True)  # nothing of a segment that never opened stays behind
            if isinstance(exc, av.error.FFmpegError):
                raise VideoError(f"cannot write segment {storage.name_of(self.path)}: {exc.strerror}") from None
            raise
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._time_base = Fraction(1, 1) / rate
        self._stream.width, self._stream.height = stored_w, stored_h
        self._stream.pix_fmt = settings.pix_fmt(stored_w, stored_h)
        self._stream.options = {"crf": str(settings.crf), "preset": settings.preset}

    def write(self, rgb: np.ndarray) -> None:
        """Append one upright (H, W, 3) uint8 frame."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise VideoError(
                f"segment {storage.name_of(self.path)} takes ({self.height}, {self.width}, 3) uint8 frames, got {rgb.shape} {rgb.dtype}"
            )
        stored = np.ascontiguousarray(np.rot90(rgb, k=-(self.rotation // 90))) if self.rotation else rgb
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
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
            _publish(self._tmp, self.path)
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


# ---------------------------------------------------------------------------------------------
# Joining segments


@dataclass
class _Segment:
    """What a pre-pass learns of a segment: its frames in decode order and its stream signature."""

    path: str | os.PathLike[str]
    frames: list[int]  # local frame index (from pts) of each packet, in decode order
    signature: tuple[Any, ...]

    @property
    def count(self) -> int:
        return len(self.frames)


def _scan_segment(path: str | os.PathLike[str]) -> _Segment:
    """Demux-only pass: frame indices of a segment's packets (small ints, no packet data kept)."""
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        tb = Fraction(stream.time_base)
        rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
        if not rate:
            raise VideoError(f"segment {path} has no frame rate; was it written by SegmentWriter?")
        stamps, first_key = [], None
        for packet in container.demux(stream):
            if packet.size > 0:
                stamps.append(int(packet.pts))
                first_key = bool(packet.is_keyframe) if first_key is None else first_key
        if not stamps:
            raise VideoError(f"segment {path} has no frames")
        if not first_key:
            raise VideoError(f"segment {path} does not start with a keyframe; it cannot be joined")
        origin = min(stamps)
        frames = []
        for ts in stamps:
            value = (ts - origin) * tb * rate
            if value.denominator != 1:
                raise VideoError(f"segment {path} is not a constant-rate segment written by SegmentWriter")
            frames.append(int(value))
        return _Segment(path, frames, _stream_signature(stream))


def concat(
    segments: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    index: VideoIndex,
    *,
    audio: bool = True,
    trim_audio: bool = False,
    rebase: bool = False,
) -> Path | str:
    """Join ``segments`` (in order) into ``output`` by remuxing, with the input's timestamps.

    Together the segments must hold exactly ``index.frame_count`` frames. Every output frame gets
    the input's presentation timestamp (so a variable-rate input keeps its timing); with
    ``audio``, the input's audio streams are stream-copied and interleaved by time; with
    ``trim_audio`` (for an index sliced to a frame range) only the audio packets that start
    within the video's time span are kept; with ``rebase`` every timestamp is shifted so that the
    first frame starts at 0 (a range render plays from its start, not minutes into silence). The
    file is written under a temporary name in the output directory and renamed on success.
    """
    out_path = _writable(output)
    if not segments:
        raise VideoError("no segments to join")
    tmp = _local_target(out_path)
    opened: list[Any] = []
    try:
        parts = [_scan_segment(seg) for seg in segments]  # small: frame indices only
        total = sum(part.count for part in parts)
        if total != index.frame_count:
            raise VideoError(
                f"segments hold {total} frames but {index.path} has {index.frame_count}; a segment is missing or short"
            )
        _check_compatible(parts)
        source = _open_input(index.path) if audio and index.audio else None
        if source is not None:
            opened.append(source)
        template = _open_input(parts[0].path)
        opened.append(template)
        with av.open(str(tmp), mode="w") as out:
            v_out = out.add_stream_from_template(template.streams.video[0])
            v_out.time_base = index.time_base
            if index.rotation:
                v_out.set_display_rotation(index.rotation)
            a_pairs = []
            if source is not None:
                for a_in in source.streams.audio:
                    a_pairs.append((a_in, out.add_stream_from_template(a_in)))
            try:
                out.start_encoding()
            except av.error.FFmpegError as exc:
                raise VideoError(
                    f"cannot write {Path(str(out_path)).suffix or 'this'} container with these streams ({exc.strerror}); "
                    "try an .mkv output"
                ) from None
            origin = int(index.pts[0]) if rebase else 0
            video = _video_packets(parts, index, v_out, origin)
            span = None
            t0 = index.pts[0] * index.time_base
            if trim_audio:
                span = (t0, t0 + Fraction(index.frame_count * index.frame_duration) * index.time_base)
            shift = t0 if rebase else Fraction(0)
            audio_packets = _audio_packets(source, a_pairs, span, shift) if source is not None else iter(())
            for _, _, packet in heapq.merge(video, audio_packets, key=lambda item: (item[0], item[1])):
                out.mux(packet)
        _publish(tmp, out_path)
        return out_path
    except av.error.FFmpegError as exc:
        raise VideoError(f"joining segments into {out_path} failed: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
        for container in opened:
            container.close()


def _check_compatible(parts: list[_Segment]) -> None:
    for part in parts[1:]:
        if part.signature != parts[0].signature:
            raise VideoError(
                f"segment {part.path} was encoded with other settings than {parts[0].path} "
                "(size, pixel format or encoder parameters differ); it cannot be joined losslessly"
            )


def _stream_signature(stream: Any) -> tuple[Any, ...]:
    cc = stream.codec_context
    return (cc.name, cc.width, cc.height, cc.pix_fmt, bytes(cc.extradata or b""))


def _video_packets(
    parts: list[_Segment], index: VideoIndex, v_out: Any, origin: int = 0
) -> Iterator[tuple[Fraction, int, Any]]:
    """Segment packets in decode order with the input's timestamps, keyed by dts in seconds.

    Segments are read one after another, so memory holds one packet at a time. A segment's
    packet for local frame ``p`` gets the input pts of global frame ``offset + p``. Decode
    timestamps are rebuilt rather than copied: the packet at global decode position ``J`` gets
    the timestamp of frame ``J - D``, where ``D`` is the largest reorder delay (decode position
    minus frame) of any segment. Segments encoded alone can start with different B-frame delays
    (a two-frame seam window has none), so copied dts would go backwards at a join; rebuilt ones
    rise strictly and never pass their packet's pts. ``origin`` is subtracted from every stamp.
    """
    pts = index.pts
    step = index.frame_duration
    first = int(pts[0])
    delay = max(max(j - p for j, p in enumerate(part.frames)) for part in parts)

    def stamp(i: int) -> int:
        if i < 0:
            return first + i * step
        if i >= len(pts):
            return int(pts[-1]) + (i - len(pts) + 1) * step
        return int(pts[i])

    offset = 0
    for part in parts:
        with _open_input(part.path) as container:
            packets = (p for p in container.demux(container.streams.video[0]) if p.size > 0)
            for j, (p, packet) in enumerate(zip(part.frames, packets)):
                g = offset + p
                packet.stream = v_out
                packet.time_base = index.time_base
                packet.pts = stamp(g) - origin
                packet.dts = stamp(offset + j - delay) - origin
                packet.duration = stamp(g + 1) - stamp(g)
                yield (packet.dts * index.time_base, offset + j, packet)
        offset += part.count


def _audio_packets(
    source: Any, pairs: list[tuple[Any, Any]], span: tuple[Fraction, Fraction] | None = None,
    shift: Fraction = Fraction(0),
) -> Iterator[tuple[Fraction, int, Any]]:
    mapping = {a_in.index: a_out for a_in, a_out in pairs}
    seq = 0
    for packet in source.demux(*[a_in for a_in, _ in pairs]):
        if packet.size == 0 or packet.dts is None and packet.pts is None:
            continue
        tb = Fraction(packet.time_base)
        ts = packet.dts if packet.dts is not None else packet.pts
        if span is not None and not span[0] <= (packet.pts if packet.pts is not None else ts) * tb < span[1]:
            continue
        packet.stream = mapping[packet.stream_index]
        if shift:
            moved = round(shift / tb)  # whole ticks of this stream's clock
            packet.pts = None if packet.pts is None else packet.pts - moved
            packet.dts = None if packet.dts is None else packet.dts - moved
            ts -= moved
        seq += 1
        # audio sorts after video at equal times; sequence numbers keep each stream's own order
        yield (ts * tb, 1 << 40 | seq, packet)



# ---------------------------------------------------------------------------------------------
# Synthetic clips (the demo, the benchmark and the tests make their media with this)


def write_clip(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    *,
    rate: Fraction = Fraction(25),
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    x264_params: str | None = None,
    audio: str | None = "aac",
    tone_hz: float = 440.0,
    rotation: int = 0,
) -> Path:
    """Encode RGB ``frames`` (as stored, not rotated) to ``path`` with an optional sine tone.

    ``pts``/``time_base`` give explicit (e.g. variable-rate) timestamps; by default frames are
    evenly spaced at ``rate``. ``audio`` names an audio encoder (``aac``, ``libopus``, ``flac``)
    or is ``None``; the tone lasts exactly as long as the video. The container comes from the
    file extension.
    """
    path = check_output_path(path, error=VideoError)
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    time_base = time_base or Fraction(1, 1) / Fraction(rate)
    stamps: list[int] = []
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(rate))
        stream.width, stream.height = width, height
        stream.pix_fmt = EncoderSettings().pix_fmt(width, height)
        stream.codec_context.time_base = time_base
        options = {"crf": str(crf), "preset": preset}
        if x264_params:
            options["x264-params"] = x264_params
        stream.options = options
        if rotation:
            stream.set_display_rotation(rotation)
        a_stream = None
        if audio:
            a_stream = out.add_stream(audio, rate=48000)
            a_stream.layout = "stereo"
        for i, array in enumerate(itertools.chain([first], frames)):
            ts = pts[i] if pts is not None else i
            stamps.append(ts)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts, frame.time_base = ts, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if a_stream is not None:
            step = stamps[-1] - stamps[-2] if len(stamps) > 1 else Fraction(1, 1) / (Fraction(rate) * time_base)
            seconds = float((stamps[-1] - stamps[0] + step) * time_base)
            _write_tone(out, a_stream, seconds, tone_hz)
    return path


def _write_tone(out: Any, stream: Any, seconds: float, hz: float) -> None:
    rate = stream.codec_context.sample_rate
    total = int(round(seconds * rate))
    block = stream.codec_context.frame_size or 1024
    t = np.arange(total) / rate
    tone = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    fmt = stream.codec_context.format.name
    for start in range(0, total, block):
        chunk = np.ascontiguousarray(np.stack([tone[start : start + block]] * 2))  # (2, n) planar
        if fmt == "s16":  # packed 16-bit (flac)
            chunk = np.ascontiguousarray((chunk.T * 32767).astype(np.int16).reshape(1, -1))
        elif fmt == "s32":
            chunk = np.ascontiguousarray((chunk.T * 2**31 * 0.99).astype(np.int32).reshape(1, -1))
        elif fmt == "flt":
            chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
