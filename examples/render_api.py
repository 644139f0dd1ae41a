"""Submit a render from Python, follow its progress, and get the result.

    python examples/render_api.py [INPUT] [OUTPUT]

Without arguments it makes a short sample clip (a pan over a real photo) and dreams that.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import distdream
from distdream.samples import pan_frames, write_clip


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="distdream-example-"))
    source = sys.argv[1] if len(sys.argv) > 1 else write_clip(tmp / "sample.mp4", pan_frames(24, 128, 72))
    output = sys.argv[2] if len(sys.argv) > 2 else tmp / "dream.mp4"

    config = distdream.RenderConfig(
        dream=distdream.DreamConfig(dream_layers=("_blocks.10",), num_iterations=4, num_octaves=3),
        decay=0.9,
    )
    # On GPU workers 8 chunks per worker are batched together (lanes); DreamConfig(precision=...)
    # and lanes=... choose otherwise. On CPU: one lane. The network runs fp32 unless asked.
    job = distdream.submit(source, output, config, chunk_frames=12, overlap=3)
    while job.status() in ("starting", "running", "stitching"):
        done, total = job.progress()
        chunks = job.chunks()
        print(
            f"{job.status():9s} {done:4d}/{total} frames, "
            f"{sum(c.state == 'done' for c in chunks)}/{len(chunks)} chunks",
            flush=True,
        )
        time.sleep(1.0)
    result = job.result()
    print(f"wrote {result.output}: {result.frames} frames in {result.seconds:.1f}s, {result.chunks} chunks")
    print(f"{result.workers} worker(s) × {result.lanes} lane(s), network in {result.compute}")


if __name__ == "__main__":
    main()
