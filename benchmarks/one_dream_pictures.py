"""The coherence page's pictures of one dream over time: the breathing dream against the steady one.

    python benchmarks/one_dream_pictures.py OUT.jpg [WIDTH HEIGHT]

Renders, lossless and in this process, the ``onedream`` bench's clips (default 128×72, 2 levels of noise) with the
default (steady) dream and with ``steady`` 0 (classic DeepDream's breathing dream): a still shot
of 96 frames, the same shot in crossfaded chunks of 32 frames (two workers), and an object passing
over a still background. Writes one row per clip and way, four frames each, shown at 1.5×.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from distdream.bench.onedream import reveal_frames, still_frames
from distdream.config import Encoding, RenderConfig
from distdream.engine import plan, render
from distdream.samples import write_clip
from distdream.video.read import read_frames

CHUNKED = {"workers": 2, "seams": "crossfade", "chunk_frames": 32}


def main(out: str, width: int = 128, height: int = 72) -> None:
    ways = {
        "steady (default)": RenderConfig(encoding=Encoding(crf=0)),
        "breathing (steady 0)": RenderConfig(steady=0.0, encoding=Encoding(crf=0)),
    }
    rows: list[tuple[str, list[tuple[np.ndarray, str]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        still = write_clip(d / "still.mp4", still_frames(96, width, height, noise=2.0), audio=None, crf=0)
        reveal = write_clip(d / "reveal.mp4", reveal_frames(72, width, height, noise=2.0), audio=None, crf=0)
        windows = [
            (c.first, c.start)
            for c in plan(still, RenderConfig(encoding=Encoding(crf=0)), ray="never", **CHUNKED).chunks
            if c.lead_in
        ]
        a, b = windows[0]
        at = {
            "still": (1, 32, 64, 95),
            "chunked": (a - 1, a + (b - a) // 3, a + 2 * (b - a) // 3, b),
            "reveal": (8, 30, 46, 71),
        }
        for way, config in ways.items():
            for clip, name, options in (
                (still, "still", {"workers": 1}),
                (still, "chunked", CHUNKED),
                (reveal, "reveal", {"workers": 1}),
            ):
                frames = list(read_frames(render(clip, d / "out.mp4", config, ray="never", **options).output))
                title = {
                    "still": "a still shot",
                    "chunked": f"the still shot in crossfaded chunks (window {a} to {b - 1})",
                    "reveal": "an object passing over a still background",
                }[name]
                rows.append((f"{title}, {way}", [(frames[t], f"frame {t}") for t in at[name]]))
    rows.sort(key=lambda r: ("shot," not in r[0], "chunks" not in r[0], "breathing" in r[0]))
    tile_w, tile_h, label = 3 * width // 2, 3 * height // 2, 16
    grid = Image.new("RGB", (4 * tile_w, len(rows) * (tile_h + 2 * label)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (title, tiles) in enumerate(rows):
        y = r * (tile_h + 2 * label)
        draw.text((4, y + 2), title, fill="black")
        for c, (frame, caption) in enumerate(tiles):
            grid.paste(Image.fromarray(frame).resize((tile_w, tile_h), Image.BICUBIC), (c * tile_w, y + 2 * label))
            draw.text((c * tile_w + 4, y + label + 1), caption, fill="black")
    grid.save(out, quality=75, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(v) for v in sys.argv[2:4]))
