"""The coherence page's frame at equal strength: what the seed tool's steadiness and a large λ look like.

    python benchmarks/steady_vs_smooth.py OUT.jpg [FRAMES WIDTH HEIGHT]

Renders a pan over a real photo (default 36 frames, 256×144) in this process the default way, by
the seed tool's rule and at λ 0.5, each brought to the default's strength as
``distdream bench --only coherence`` does (its learning rate searched), prints E_warp, detail and
strength of each, and writes frame 24 of the input and of each render as a 2 × 2 grid, shown at 2×.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from distdream.bench.coherence import _next_rate, coherence_ways
from distdream.config import Encoding, RenderConfig
from distdream.engine import render as engine_render
from distdream.metrics import warping_error
from distdream.samples import pan_frames, write_clip
from distdream.video.read import read_frames

WAYS = {"default": "default", "seed tool's rule": "seed tool's rule", "temporal term 0.5": "lambda 0.5"}


def _u8(frame: np.ndarray) -> np.ndarray:
    return frame if frame.dtype == np.uint8 else (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


def main(out: str, frames: int = 36, width: int = 256, height: int = 144, at: int = 24) -> None:
    base = RenderConfig(encoding=Encoding(crf=12)).validate()
    ways = coherence_ways(base, (0.5,))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = write_clip(d / "pan.mp4", pan_frames(frames, width, height), audio=None, crf=12)
        tiles = [(_u8(list(read_frames(clip))[at]), "input")]
        target = None
        for way, name in WAYS.items():
            lr, tried = base.dream.learning_rate, []
            while True:
                render = engine_render(clip, d / "out.mp4", ways[way](lr), workers=1, ray="never").output
                result = warping_error(clip, render)
                strength = float(np.median(result.strength))
                tried.append((lr, strength))
                target = target or strength
                if abs(strength / target - 1) <= 0.05 or len(tried) >= 4:
                    break
                lr = _next_rate(tried, target)
            label = f"{name}: E_warp {result.mean:.5f}, detail {np.median(result.detail):.0f}"
            print(f"{label}, strength {strength:.1f}, learning rate {lr:.4f}", flush=True)
            tiles.append((_u8(list(read_frames(render))[at]), label))
    grid = Image.new("RGB", (4 * width, 2 * (2 * height + 18)), "white")
    for i, (frame, label) in enumerate(tiles):
        x, y = (i % 2) * 2 * width, (i // 2) * (2 * height + 18)
        grid.paste(Image.fromarray(frame).resize((2 * width, 2 * height), Image.NEAREST), (x, y + 18))
        ImageDraw.Draw(grid).text((x + 4, y + 3), label, fill="black")
    grid.save(out, quality=80)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:5]))
