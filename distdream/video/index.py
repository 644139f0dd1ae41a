"""The video index and probing: a demux-only pass gives exact frame count, every timestamp,
keyframes and audio streams; container metadata is not trusted (MKV stores no frame count, MP4
edit lists lie). Also the input checks the engine runs before a job (packet digest, output
container)."""

from __future__ import annotations

import itertools
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .. import storage
from ..errors import VideoError
from .colour import Colour
from .imageseq import probe_sequence
from .naming import is_sequence
from .record import AudioStreamInfo, VideoIndex

# ---------------------------------------------------------------------------------------------
# Opening and probing


def open_input(path: str | os.PathLike[str]) -> Any:
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


def video_stream(container: Any, path: str | os.PathLike[str]) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no"]
        raise VideoError(f"{path} has no video stream (it has {', '.join(kinds)} streams only)")
    return container.streams.video[0]


def _rotation(frame: Any) -> int:
    # PyAV reports the display-matrix rotation, counter-clockwise degrees; quarter turns only.
    raw = getattr(frame, "rotation", 0) or 0
    return int(round(raw / 90.0)) % 4 * 90


def probe(path: str | os.PathLike[str], *, fps: Any = None) -> VideoIndex:
    """Index ``path``: a demux-only pass over the video packets, plus one decoded frame.

    An image sequence (a printf pattern or a directory, :mod:`.imageseq`) is indexed from its file
    names and headers and needs ``fps``; a video has its own rate, and ``fps`` must be None.
    Raises :class:`VideoError` for a missing, empty, unreadable or truncated file, a file with no
    video stream, or a video whose frames cannot be decoded.
    """
    if is_sequence(path):
        return probe_sequence(path, fps)
    if fps is not None:
        raise VideoError(f"--fps is for image-sequence input; {path} is a video and keeps its own rate")
    with open_input(path) as container:
        stream = video_stream(container, path)
        pts, keys = _stamps(container, stream, path)
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
            audio=tuple(_audio_info(a) for a in container.streams.audio),
            colour=Colour.of(first),
        )


def _stamps(container: Any, stream: Any, path: str | os.PathLike[str]) -> tuple[list[int], list[int]]:
    """The timestamps of the video's packets in decode order, and those of its keyframes."""
    pts: list[int] = []
    keys: list[int] = []
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
    return pts, keys


def _audio_info(stream: Any) -> AudioStreamInfo:
    context = stream.codec_context
    return AudioStreamInfo(
        index=stream.index,
        codec=context.name,
        sample_rate=int(context.sample_rate or 0),
        channels=int(context.channels or 0),
        duration=float(stream.duration * stream.time_base) if stream.duration else None,
    )


def packet_digest(path: str | os.PathLike[str], index: VideoIndex, packets: int = 3) -> str:
    """sha256 of the first and last ``packets`` video packets: which content this is, cheaply.

    A re-graded or re-exported cut of the same length and timing has other packets; reading them
    costs two short demuxes (the start, and from the last keyframe on), not a pass over the file.
    """
    import hashlib

    digest = hashlib.sha256()
    with open_input(path) as container:
        stream = container.streams[index.stream_index]
        head = [bytes(p) for p in itertools.islice((p for p in container.demux(stream) if p.size), packets)]
        container.seek(int(index.pts[index.keyframes[-1]]), stream=stream, backward=True, any_frame=False)
        tail = [bytes(p) for p in container.demux(stream) if p.size][-packets:]
    for data in (*head, b"|", *tail):
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:32]


def check_output_container(path: str | os.PathLike[str], index: VideoIndex | None = None, fmt: Any = None) -> str:
    """The container format ``path``'s suffix names, if it takes the video ``fmt`` describes
    (default H.264) and the input's audio, given ``index``; else :class:`VideoError`.

    Test-opens the muxer in a scratch file with the streams the stitcher will write.
    """
    suffix = Path(storage.name_of(path)).suffix.lower()
    if not suffix:
        raise VideoError(f"output {path} has no suffix; give it .mp4, .mkv or .mov")
    with tempfile.TemporaryDirectory(prefix="distdream-mux-") as tmp:
        scratch = Path(tmp) / f"probe{suffix}"
        source = open_input(index.path) if index is not None and index.audio else None
        try:
            with av.open(str(scratch), mode="w") as out:
                stream = out.add_stream(fmt.encoder if fmt is not None else "libx264", rate=25)
                stream.width, stream.height = 64, 64
                stream.pix_fmt = fmt.pix_fmt if fmt is not None else "yuv420p"
                stream.options = dict(fmt.options) if fmt is not None else {}  # x265: quiet, as the writer is
                for audio in source.streams.audio if source is not None else ():
                    out.add_stream_from_template(audio)
                out.start_encoding()
                name = out.format.name
        except (av.error.FFmpegError, ValueError) as exc:
            codec = {"libx264": "H.264", "libx265": "H.265", "prores_ks": "ProRes", "ffv1": "FFV1"}
            what = (
                codec.get(fmt.encoder if fmt is not None else "libx264", "this")
                + " video"
                + (" with the input's audio" if source is not None else "")
            )
            fits = {"prores_ks": ".mov or .mkv", "ffv1": ".mkv"}.get(
                fmt.encoder if fmt is not None else "", ".mp4, .mkv or .mov"
            )
            raise VideoError(
                f"output {path}: {suffix} is not a container that takes {what} ({exc}); use {fits}"
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
