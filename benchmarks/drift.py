"""The coherence page's drift figure: a long still shot must not wander.

    python benchmarks/drift.py [FRAMES WIDTH HEIGHT]

Renders a still photo held for FRAMES frames (default 1,500 at 64×48) in this process with the
default settings, with the breathing dream (``--steady 0``), and with the previous default (no
held level, no temporal term, bilinear carry, breathing), and prints the drift of brightness,
saturation (each against the input's) and strength between the first and the last 100 frames,
with strength and saturation every 100 frames.
Issue 13's bounds: ±2 %, ±2 %, ±10 %.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from distdream.config import Encoding, RenderConfig
from distdream.engine import render as engine_render
from distdream.metrics import warping_error
from distdream.samples import sample_photo, write_clip


def main(frames: int = 1500, width: int = 64, height: int = 48) -> None:
    still = np.asarray(Image.fromarray(sample_photo()).resize((width, height), Image.BILINEAR))
    base = RenderConfig(encoding=Encoding(crf=12, preset="veryfast"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "still.mp4", itertools.repeat(still, frames), audio=None, crf=12)
        # the default before the held level (and before the bicubic carry and the steady dream)
        previous = replace(base, hold_level=False, temporal_weight=0.0, carry_resampling="bilinear", steady=0.0)
        breathing = replace(base, steady=0.0)
        for name, config in (("default", base), ("breathing (steady 0)", breathing), ("previous default", previous)):
            t0 = time.perf_counter()
            out = engine_render(clip, Path(tmp) / "out.mp4", config, workers=1, ray="never").output
            result = warping_error(clip, out)
            drift = ", ".join(f"{k} {100 * v:+.1f} %" for k, v in result.drift(100).items())
            print(f"{name}: {drift}  (E_warp {result.mean:.5f}, {time.perf_counter() - t0:.0f} s)")
            for label, values in (("strength", result.strength), ("saturation", result.saturation)):
                every = [float(np.mean(values[i : i + 100])) for i in range(0, frames, 100)]
                print(f"  {label} per 100 frames: {' '.join(f'{v:.3g}' for v in every)}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
