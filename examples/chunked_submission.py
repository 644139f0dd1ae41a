"""Plan a job, inspect its chunks, render with per-chunk state, stop it, and resume it.

    python examples/chunked_submission.py [INPUT] [OUTPUT]

Shows the work directory at work: a cancelled job keeps its finished chunks, and a resume renders
only what is missing. Without arguments it makes a short sample clip and dreams that.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import distdream
from distdream.samples import pan_frames, write_clip


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="distdream-example-"))
    source = sys.argv[1] if len(sys.argv) > 1 else write_clip(tmp / "sample.mp4", pan_frames(36, 128, 72))
    output = sys.argv[2] if len(sys.argv) > 2 else tmp / "dream.mp4"
    workdir = tmp / "work"
    config = distdream.RenderConfig(dream=distdream.DreamConfig(num_iterations=3, num_octaves=2))
    options = dict(chunk_frames=12, overlap=3, workers=1, workdir=str(workdir))

    plan = distdream.plan(source, config, **options)
    print(f"{len(plan.chunks)} chunks, lead-in overhead {100 * plan.lead_in_overhead:.0f}%:")
    for chunk in plan.chunks:
        print(f"  chunk {chunk.name}: owns {chunk.start}–{chunk.end - 1}, keyframe at {chunk.first}")

    job = distdream.submit(source, output, config, **options)
    while not any(c.state == "done" for c in job.chunks()):
        time.sleep(0.2)
    job.cancel()  # as a crash or Ctrl-C would: finished chunks stay in the work directory
    try:
        job.result()
    except distdream.JobCancelled as stopped:
        print(f"stopped: {stopped}")
    ledger = json.loads((workdir / "ledger.json").read_text())
    print(f"the ledger keeps {sorted(ledger['chunks'])}")

    result = distdream.render(source, output, config, resume=True, **options)
    print(f"resumed: rendered {result.rendered} of {result.chunks} chunks, wrote {result.output}")


if __name__ == "__main__":
    main()
