"""The coherence page's seam figures: strength over time before and after shot-aware chunks, and strips of
frames across a crossfade seam and a handoff seam.

    python benchmarks/seams.py OUTDIR [FRAMES WIDTH HEIGHT]

Renders a pan over a real photo (default 240 frames, 96×64, as issue 13 measured it) on a local
Ray instance with 2 workers, ``--chunk-frames 60 --overlap 8``, twice: "before" (a crossfade at
every chunk boundary, no keyframe settling, no held level, no temporal term, the bilinear carry:
the old recipe, though its crossfade now blends at equal strength) and "after" (the defaults:
handoffs inside the shot, crossfades only where two workers would otherwise idle, settled
keyframes, the held level, λ 0.1, the bicubic carry). Writes ``strength-before-after.png``,
``seam-strips.jpg`` and ``seams.json`` (every figure, per frame) into OUTDIR.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from distdream.config import Encoding, RenderConfig
from distdream.engine import connect, plan, render
from distdream.images import save_figure
from distdream.metrics import warping_error
from distdream.samples import pan_frames, write_clip
from distdream.sheets import save_grid
from distdream.video import read_frames


def main(outdir: Path, frames: int = 240, width: int = 96, height: int = 64) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    connect(None)
    job = dict(chunk_frames=60, overlap=8, workers=2, scan_cuts=False)
    base = RenderConfig(encoding=Encoding(crf=12))
    runs = {
        "before": (
            replace(base, keyframe_settle=0, hold_level=False, temporal_weight=0.0, carry_resampling="bilinear"),
            {**job, "seams": "crossfade"},
        ),
        "after": (base, job),
    }
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "pan.mp4", pan_frames(frames, width, height), audio=None, crf=12)
        source = list(read_frames(clip))
        outputs = {}
        for name, (config, options) in runs.items():
            p = plan(clip, config, **options)
            out = render(clip, Path(tmp) / f"{name}.mp4", config, **options).output
            e = warping_error(clip, out, chunks=p.chunks)
            outputs[name] = (list(read_frames(out)), p)
            windows = e.strength_windows()
            figures[name] = {
                "plan": p.describe(),
                "boundaries": [(c.start, c.begins) for c in p.chunks],
                "warping_error": e.mean,
                "input_warping_error": e.input_mean,
                "median_strength": float(np.median(e.strength)),
                "windows": [min(windows), max(windows)],
                "seam_ratios": {k: e.seam_ratio(k) for k in e.seams},
                "strength": list(e.strength),
                "per_frame": list(e.per_frame),
            }
            print(
                name,
                p.describe(),
                f"E_warp {e.mean:.5f}",
                f"windows {min(windows):.2f}–{max(windows):.2f}",
                {k: round(v, 2) for k, v in figures[name]["seam_ratios"].items()},
                flush=True,
            )

        fig, ax = plt.subplots(figsize=(10, 3.2))
        for name, colour in (("before", "#c44e52"), ("after", "#4c72b0")):
            f = figures[name]
            ax.plot(
                f["strength"],
                color=colour,
                lw=1.2,
                label=f"{name}: windows {f['windows'][0]:.2f}–{f['windows'][1]:.2f} of the median",
            )
            for start, begins in f["boundaries"][1:]:
                ax.axvline(start, color=colour, lw=0.8, ls=":" if begins == "handoff" else "-", alpha=0.7)
        ax.set_xlabel("frame (lines: chunk boundaries; solid = crossfade, dotted = handoff)", fontsize=8)
        ax.set_ylabel("strength, mean |out − in|", fontsize=8)
        ax.set_title(f"{frames}-frame pan, {width}×{height}, --chunk-frames 60 --overlap 8, 2 workers", fontsize=10)
        ax.legend(fontsize=8)
        ax.tick_params(labelsize=8)
        fig.tight_layout()
        save_figure(fig, outdir / "strength-before-after.png")

        after, p = outputs["after"]
        tiles, labels = [], []
        for kind in ("crossfade", "handoff"):
            seam = next((c for c in p.chunks if c.begins == kind), None)
            if seam is None:
                continue
            for i in range(seam.start - 3, seam.start + 3):
                pair = np.concatenate([source[i], after[i]], axis=0)  # input above its dream
                tiles.append(pair.repeat(2, axis=0).repeat(2, axis=1))  # small frames: show them at 2×
                labels.append(f"{kind} {i}" if i == seam.start else str(i))
        save_grid(outdir / "seam-strips.jpg", tiles, labels, columns=6)
    (outdir / "seams.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:5]))
