"""Video I/O against naive I/O, on a clip with long GOPs made on the fly.

Reading a range from the middle (seek to the keyframe, decode forward) against decoding from the
start to the same point; joining N segments by remuxing against re-encoding them into one file
(what a naive stitcher does).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Encoding
from ..samples import pan_frames, write_clip
from ..video import SegmentWriter, VideoIndex, concat, probe, read_frames
from .base import BenchRun, Echo, Figures, Panel, Parts, bars, recorded, row

__all__ = ["IOBenchmark", "bench_io"]


@dataclass(frozen=True)
class IOBenchmark:
    """Video I/O figures: range reads against decoding from the start, joins against re-encodes."""

    frames: int
    width: int
    height: int
    gop: int
    probe_seconds: float  # demux-only index of the whole clip
    range_start: int
    range_frames: int
    range_read_fps: float  # wanted frames per second, seeking to the keyframe before the range
    from_start_fps: float  # wanted frames per second, decoding everything before the range too
    segments: int
    join_seconds: float  # remux N segments + copy audio
    reencode_seconds: float  # decode N segments and encode them again into one file

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _encode(path: Path, frames: Iterable[np.ndarray], index: VideoIndex) -> Path | str:
    """Encode ``frames`` into one segment at ``path`` at the indexed video's size and rate."""
    encoding = Encoding(crf=18, preset="veryfast")
    with SegmentWriter(
        path, width=index.width, height=index.height, rate=index.average_rate, encoding=encoding
    ) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def bench_io(
    *,
    frames: int = 1500,
    width: int = 320,
    height: int = 180,
    gop: int = 250,
    segments: int = 8,
    range_frames: int = 50,
) -> IOBenchmark:
    """Measure range reads and segment joins on a clip made on the fly (pan over a real photo)."""
    with tempfile.TemporaryDirectory(prefix="distdream-bench-") as tmp:
        d = Path(tmp)
        clip = write_clip(
            d / "clip.mp4", pan_frames(frames, width, height), x264_params=f"keyint={gop}:min-keyint={gop}"
        )
        t0 = time.perf_counter()
        index = probe(clip)
        probe_s = time.perf_counter() - t0
        start = frames // 2 + gop // 2  # mid-GOP in the middle: the keyframe lies gop/2 back
        start = min(start, frames - range_frames)

        t0 = time.perf_counter()
        got = sum(1 for _ in read_frames(clip, start, start + range_frames, index=index))
        range_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        everything = sum(1 for _ in read_frames(clip, 0, start + range_frames, index=index))
        from_start_s = time.perf_counter() - t0
        assert got == range_frames and everything == start + range_frames

        bounds = [round(k * frames / segments) for k in range(segments + 1)]
        paths = [
            _encode(d / f"{k:05d}.mp4", read_frames(clip, a, b, index=index), index)
            for k, (a, b) in enumerate(zip(bounds, bounds[1:]))
        ]
        t0 = time.perf_counter()
        concat(paths, d / "joined.mp4", index)
        join_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _encode(d / "reencoded.mp4", (frame for path in paths for frame in read_frames(path)), index)
        reencode_s = time.perf_counter() - t0
        return IOBenchmark(
            frames=frames,
            width=width,
            height=height,
            gop=gop,
            probe_seconds=probe_s,
            range_start=start,
            range_frames=range_frames,
            range_read_fps=range_frames / range_s,
            from_start_fps=range_frames / from_start_s,
            segments=segments,
            join_seconds=join_s,
            reencode_seconds=reencode_s,
        )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_io(run: BenchRun) -> Any:
    return bench_io(frames=300 if run.plan.quick else 1500, gop=100 if run.plan.quick else 250)


def _show_io(io: Mapping[str, Any], echo: Echo) -> None:
    span = f"{io['range_start']}–{io['range_start'] + io['range_frames']}"
    echo(f"video I/O, {io['frames']} frames {io['width']}×{io['height']}, GOP {io['gop']}, H.264:")
    row(echo, "probe (demux-only index)", f"{io['probe_seconds']:8.2f} s")
    row(echo, f"read frames {span}: seek to keyframe", f"{io['range_read_fps']:8.0f} frames/s")
    row(echo, f"read frames {span}: decode from start", f"{io['from_start_fps']:8.0f} frames/s")
    row(echo, f"join {io['segments']} segments by remuxing (+ audio)", f"{io['join_seconds']:8.2f} s")
    row(echo, f"re-encode {io['segments']} segments into one file", f"{io['reencode_seconds']:8.2f} s")


def _panels_io(figures: Figures) -> list[Panel]:
    if "io" not in figures:
        return []
    io = figures["io"]
    return [
        lambda ax: bars(
            ax, ["seek", "from start"], [io["range_read_fps"], io["from_start_fps"]], "range read (frames/s)"
        )
    ]


PARTS = {
    "io": Parts(recorded("io", _run_io), _show_io, _panels_io),
}
