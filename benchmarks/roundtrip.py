"""The video guide's colour round-trip table: inputs of several formats and tags, each rendered with no
dream (``--num-iterations 0``) into every output codec, compared with the input.

    python benchmarks/roundtrip.py OUTDIR [WIDTH HEIGHT FRAMES]

For every input × output: the tags in and out (as ``distdream probe --json`` reports them), the
largest per-channel mean |output − input| and the largest single difference, in levels of 255
(RGB, as read back at full precision), and for lossy codecs the same figure for the codec alone
(the input's decoded frames encoded directly, no pipeline). Writes ``roundtrip.json`` and prints
a Markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import render as engine_render
from distdream.samples import pan_frames, write_clip
from distdream.video import Colour, SegmentWriter, format_for, probe, read_frames


def inputs(d: Path, w: int, h: int, n: int) -> list[tuple[str, str, str | None]]:
    """(label, path, fps) of each input."""
    frames = list(pan_frames(n, w, h))
    made = []
    for label, codec, pix_fmt, colour in [
        ("H.264 8-bit 4:2:0 BT.601 limited", "libx264", "yuv420p", Colour("smpte170m", "smpte170m", "smpte170m", "tv")),
        ("H.264 8-bit 4:2:0 BT.709 full", "libx264", "yuv420p", Colour("bt709", "bt709", "bt709", "pc")),
        ("FFV1 10-bit 4:2:0 BT.709 limited", "ffv1", "yuv420p10le", Colour("bt709", "bt709", "bt709", "tv")),
        ("FFV1 10-bit 4:2:2 BT.601 full", "ffv1", "yuv422p10le", Colour("bt470bg", "gamma28", "bt470bg", "pc")),
        ("FFV1 10-bit HLG BT.2020", "ffv1", "yuv420p10le", Colour("bt2020", "arib-std-b67", "bt2020nc", "tv")),
    ]:
        path = write_clip(
            d / f"in-{len(made)}.mkv", frames, codec=codec, pix_fmt=pix_fmt, colour=colour, audio=None, crf=16
        )
        made.append((label, str(path), None))
    seq = d / "png16"
    seq.mkdir()
    rng = np.random.default_rng(0)
    for k, f in enumerate(frames):
        deep = (f.astype(np.uint16) * 257 + rng.integers(0, 200, f.shape)).astype(np.uint16)
        cv2.imwrite(str(seq / f"plate.{k + 1:04d}.png"), np.ascontiguousarray(deep[..., ::-1]))
    made.append(("PNG 16-bit RGB sequence", str(seq / "plate.%04d.png"), "24"))
    return made


OUTPUTS = [
    ("h264 crf 18", "h264", 18, ".mp4"),
    ("h264 crf 0", "h264", 0, ".mp4"),
    ("h265 crf 18", "h265", 18, ".mp4"),
    ("prores", "prores", 18, ".mov"),
    ("ffv1", "ffv1", 18, ".mkv"),
    ("png", "auto", 18, ".%05d.png"),
]


def compare(a: str, b: str, fps: str | None) -> tuple[float, float]:
    x = np.stack(list(read_frames(a, index=probe(a, fps=fps), dtype=np.float32))) * 255
    y = np.stack(list(read_frames(b, index=probe(b, fps="24" if "%" in b else None), dtype=np.float32))) * 255
    diff = np.abs(np.clip(x, 0, 255) - np.clip(y, 0, 255))
    return float(diff.mean(axis=(0, 1, 2)).max()), float(diff.max())


def codec_alone(path: str, fps: str | None, config: RenderConfig, target: Path) -> float:
    """The codec's own error: the input's decoded frames encoded directly with the job's format."""
    index = probe(path, fps=fps)
    fmt = format_for(config.encoding, index)
    with SegmentWriter(target, width=index.width, height=index.height, rate=index.average_rate, fmt=fmt) as writer:
        for frame in read_frames(path, index=index, dtype=np.float32):
            writer.write(frame)
    return compare(path, str(target), fps)[0]


def tags(path: str, fps: str | None) -> str:
    data = probe(path, fps=fps).to_dict()
    c = data["colour"]
    return f"{data['pix_fmt']} {c['primaries']}/{c['transfer']}/{c['matrix']}/{c['range']}"


def main(out: Path, w: int = 128, h: int = 72, n: int = 8) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, path, fps in inputs(out, w, h, n):
        for name, codec, crf, suffix in OUTPUTS:
            target = out / f"{Path(path).stem.split('.')[0]}-{name.replace(' ', '')}{suffix}"
            config = RenderConfig(dream=DreamConfig(num_iterations=0), fps=fps, encoding=Encoding(codec=codec, crf=crf))
            result = engine_render(path, target, config, workers=1, ray="never")
            mean, largest = compare(path, str(result.output), fps)
            alone = (
                codec_alone(path, fps, config, out / f"alone{suffix}") if codec in ("h264", "h265", "prores") else None
            )
            rows.append(
                {
                    "input": label,
                    "output": name,
                    "tags_in": tags(path, fps),
                    "tags_out": tags(str(result.output), "24" if "%" in str(target) else None),
                    "mean": mean,
                    "max": largest,
                    "codec_alone_mean": alone,
                }
            )
            print(
                f"| {label} | {name} | {rows[-1]['tags_in']} | {rows[-1]['tags_out']} | {mean:.3f} | {largest:.1f} | "
                f"{'' if alone is None else f'{alone:.3f}'} |",
                flush=True,
            )
    (out / "roundtrip.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(v) for v in sys.argv[2:5]))
