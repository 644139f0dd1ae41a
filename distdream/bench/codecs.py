"""Output codecs side by side on one clip: encode speed, file size and what the round trip costs.

The clip is 10-bit 4:2:0 BT.709 (a pan over a real photo, made on the fly and stored losslessly),
so each codec is measured at the depth it keeps from such an input: H.264 and H.265 10-bit 4:2:0,
ProRes 10-bit 4:2:2 HQ, FFV1 10-bit 4:2:0, PNG 16-bit RGB. Every codec encodes the same decoded
frames through the writer a job uses; the error is the mean and largest |decoded − source| per
channel in levels of 255.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Encoding
from ..samples import pan_frames, write_clip
from ..video import Colour, available_codecs, format_for, open_writer, probe, read_frames
from ..video.imageseq import numbered
from .base import BenchRun, Echo, Parts, no_panels, recorded

__all__ = ["CodecBenchmark", "bench_codecs"]


@dataclass(frozen=True)
class CodecBenchmark:
    frames: int
    width: int
    height: int
    source: str  # the source's pixel format and colour
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(folder: Path) -> int:
    """Bytes of everything written into ``folder`` (one file, or the numbered images)."""
    return sum(p.stat().st_size for p in folder.iterdir())


def bench_codecs(*, frames: int = 48, width: int = 640, height: int = 360, crf: int = 18) -> CodecBenchmark:
    """Encode the same frames with every codec this FFmpeg has (H.264 and H.265 at ``crf``)."""
    with tempfile.TemporaryDirectory(prefix="distdream-codecs-") as tmp:
        d = Path(tmp)
        clip = write_clip(
            d / "source.mkv",
            pan_frames(frames, width, height),
            codec="ffv1",
            pix_fmt="yuv420p10le",
            colour=Colour("bt709", "bt709", "bt709", "tv"),
            audio=None,
        )
        index = probe(clip)
        source = list(read_frames(clip, index=index, dtype=np.float32))
        rows = []
        for codec in ("h264", "h265", "prores", "ffv1", "png"):
            if codec not in available_codecs():
                continue
            fmt = format_for(Encoding(codec=codec, crf=crf), index)
            folder = d / codec
            folder.mkdir()
            target = folder / ("f.%05d.png" if codec == "png" else f"out{fmt.suffix}")
            t0 = time.perf_counter()
            with open_writer(target, index, fmt, 0) as writer:
                for frame in source:
                    writer.write(frame)
            seconds = time.perf_counter() - t0
            files = numbered(index, str(target)) if codec == "png" else None
            decoded = read_frames(str(target), index=files, dtype=np.float32)
            errors = [np.abs(a - b) * 255 for a, b in zip(decoded, source, strict=True)]
            size = _size(folder)
            rows.append(
                {
                    "codec": codec,
                    "pix_fmt": fmt.pix_fmt,
                    "options": dict(fmt.options),
                    "seconds": seconds,
                    "fps": frames / seconds,
                    "bytes": size,
                    "bits_per_pixel": 8 * size / (frames * width * height),
                    "mean_error": float(np.mean([e.mean() for e in errors])),
                    "max_error": float(max(e.max() for e in errors)),
                }
            )
        return CodecBenchmark(
            frames, width, height, f"{index.pix_fmt} {index.colour.matrix}/{index.colour.range}", rows
        )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_codecs(run: BenchRun) -> Any:
    return bench_codecs(
        frames=12 if run.plan.quick else 48, width=160 if run.plan.quick else 640, height=90 if run.plan.quick else 360
    )


def _show_codecs(c: Mapping[str, Any], echo: Echo) -> None:
    echo(f"codecs, {c['frames']} frames {c['width']}×{c['height']} from {c['source']}:")
    echo(f"  {'codec':8} {'pixel format':14} {'frames/s':>9} {'MB':>8} {'bits/px':>8} {'mean err':>9} {'max err':>8}")
    for r in c["rows"]:
        echo(
            f"  {r['codec']:8} {r['pix_fmt']:14} {r['fps']:9.1f} {r['bytes'] / 1e6:8.2f} {r['bits_per_pixel']:8.2f} "
            f"{r['mean_error']:9.3f} {r['max_error']:8.2f}"
        )


PARTS = {
    "codecs": Parts(recorded("codecs", _run_codecs), _show_codecs, no_panels),
}
