"""Lossless joining: segments are remuxed in order (no re-encode), every frame gets the input's own
timestamp (variable frame rates survive), the input's audio is copied, and the result is written
to a temporary name and published whole. A join can be abandoned up to the moment it publishes:
its caller's check runs between packets."""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .. import storage
from ..errors import VideoError
from .index import open_input, video_stream
from .record import VideoIndex


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
    with open_input(path) as container:
        stream = video_stream(container, path)
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
            # Matroska stores milliseconds: at 24 or 24000/1001 fps a frame's time is rounded, so
            # its position is the nearest whole frame (a quarter frame off is not one of ours)
            position = round(value)
            if abs(value - position) > Fraction(1, 4):
                raise VideoError(f"segment {path} is not a constant-rate segment written by SegmentWriter")
            frames.append(position)
        if len(set(frames)) != len(frames):
            raise VideoError(f"segment {path} has two frames at one time; it was not written by SegmentWriter")
        return _Segment(path, frames, _stream_signature(stream))


def concat(
    segments: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    index: VideoIndex,
    *,
    audio: bool = True,
    trim_audio: bool = False,
    rebase: bool = False,
    check: Callable[[], None] = lambda: None,
    before_publish: Callable[[], None] = lambda: None,
) -> Path | str:
    """Join ``segments`` (in order) into ``output`` by remuxing, with the input's timestamps.

    Together the segments must hold exactly ``index.frame_count`` frames. Every output frame gets
    the input's presentation timestamp (so a variable-rate input keeps its timing); with
    ``audio``, the input's audio streams are stream-copied and interleaved by time; with
    ``trim_audio`` (for an index sliced to a frame range) only the audio packets that start
    within the video's time span are kept; with ``rebase`` every timestamp is shifted so that the
    first frame starts at 0 (a range render plays from its start, not minutes into silence). The
    file is written under a temporary name in the output directory and renamed on success.

    ``check`` runs before each segment is scanned and before each packet is written: what it
    raises abandons the join (the temporary file is removed, the output untouched).
    ``before_publish`` runs once, last, before the file is published: from there on the join
    finishes.
    """
    out_path = storage.check_writable(output, VideoError)
    if not segments:
        raise VideoError("no segments to join")
    tmp = storage.temp_for(out_path)
    try:
        parts = []
        for seg in segments:
            check()
            parts.append(_scan_segment(seg))  # small: frame indices only
        total = sum(part.count for part in parts)
        if total != index.frame_count:
            raise VideoError(
                f"segments hold {total} frames but {index.path} has {index.frame_count}; a segment is missing or short"
            )
        _check_compatible(parts)
        with contextlib.ExitStack() as opened:
            source = opened.enter_context(open_input(index.path)) if audio and index.audio else None
            template = opened.enter_context(open_input(parts[0].path))
            with av.open(str(tmp), mode="w") as out:
                v_out, a_pairs = _add_streams(out, template, source, index, out_path)
                origin = int(index.pts[0]) if rebase else 0
                video = _video_packets(parts, index, v_out, origin)
                t0 = index.pts[0] * index.time_base
                span = (t0, t0 + Fraction(index.frame_count * index.frame_duration) * index.time_base)
                shift = t0 if rebase else Fraction(0)
                sound = (
                    _audio_packets(source, a_pairs, span if trim_audio else None, shift)
                    if source is not None
                    else iter(())
                )
                for _, _, packet in heapq.merge(video, sound, key=lambda item: (item[0], item[1])):
                    check()
                    out.mux(packet)
        before_publish()
        storage.publish(tmp, out_path, VideoError)
        return out_path
    except av.error.FFmpegError as exc:
        raise VideoError(f"joining segments into {out_path} failed: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _add_streams(
    out: Any, template: Any, source: Any | None, index: VideoIndex, out_path: Path | str
) -> tuple[Any, list[tuple[Any, Any]]]:
    """The output's video stream (copied from the first segment's, the input's rotation) and its
    audio streams paired with the input's; the header is written."""
    v_out = out.add_stream_from_template(template.streams.video[0])
    v_out.time_base = index.time_base
    source_tag = template.streams.video[0].codec_context.codec_tag
    if "mov" in template.format.name and ("mov" in out.format.name or source_tag.startswith("ap")):
        # the sample entry names the variant: without it the muxer tags ProRes 4444 as
        # 422 HQ ("apch"), and decoders and players take it for that
        v_out.codec_context.codec_tag = source_tag  # Matroska keeps a ProRes tag in its private data
    if index.rotation:
        v_out.set_display_rotation(index.rotation)
    a_pairs = [
        (a_in, out.add_stream_from_template(a_in)) for a_in in (source.streams.audio if source is not None else ())
    ]
    try:
        out.start_encoding()
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"cannot write {Path(str(out_path)).suffix or 'this'} container with these streams "
            f"({exc.strerror}); try an .mkv output"
        ) from None
    return v_out, a_pairs


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
        with open_input(part.path) as container:
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
    source: Any,
    pairs: list[tuple[Any, Any]],
    span: tuple[Fraction, Fraction] | None = None,
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
