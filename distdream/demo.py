"""The built-in demo: footage made from a real photo, rendered on local Ray, shown side by side.

Nothing is downloaded: the clip is a smooth pan and zoom over a scikit-image photo with a sine
tone, the model is the bundled EfficientNet-Lite0, and Ray runs on this machine (the demo shows
the engine as a cluster runs it; ``ray="auto"`` runs it in this process, as ``render`` would a
job this size). The result is the dreamed video and a contact sheet (input | dream at a few
frames) beside it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import storage
from .config import RenderConfig
from .engine import JobResult, render
from .errors import OutputError
from .samples import pan_frames, write_clip
from .sheets import save_grid
from .video import probe, read_frames

__all__ = ["DemoResult", "contact_sheet", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    video: Path
    sheet: Path
    seconds: float
    job: JobResult


def contact_sheet(
    input: str | os.PathLike[str], output: str | os.PathLike[str], path: str | os.PathLike[str], frames: int = 4
) -> Path:
    """A grid of ``frames`` evenly spaced frames: input and output side by side, one pair a row."""
    n = probe(output).frame_count
    picks = sorted({round(k * (n - 1) / max(frames - 1, 1)) for k in range(frames)})
    wanted = set(picks)
    inputs = [f for i, f in enumerate(read_frames(input)) if i in wanted]
    outputs = [f for i, f in enumerate(read_frames(output)) if i in wanted]
    tiles, labels = [], []
    for i, a, b in zip(picks, inputs, outputs):
        tiles += [a, b]
        labels += [f"input, frame {i}", f"dream, frame {i}"]
    return Path(save_grid(path, tiles, labels, columns=2))  # a local path: the demo refuses URIs


def run_demo(
    output: str | os.PathLike[str] = "distdream-demo.mp4",
    *,
    frames: int = 72,
    width: int = 320,
    height: int = 180,
    config: RenderConfig | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_phase: Callable[[Any], None] | None = None,
    **job_options: Any,
) -> DemoResult:
    """Make a sample clip, render it in at least two chunks, write the video and a contact sheet."""
    if storage.is_uri(output):
        raise OutputError(f"demo output {output}: give a local path (the demo writes a contact sheet beside it)")
    out = Path(storage.check_writable(output))
    sheet = out.with_suffix(".png")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distdream-demo-") as tmp:
        clip = write_clip(Path(tmp) / "sample.mp4", pan_frames(frames, width, height), audio="aac")
        options = {"chunk_frames": max(2, frames // 4), "overlap": min(6, frames // 8), "ray": "always", **job_options}
        result = render(clip, out, config or RenderConfig(), on_progress=on_progress, on_phase=on_phase, **options)
        contact_sheet(clip, out, sheet)
    return DemoResult(out, sheet, time.perf_counter() - t0, result)
