"""A stop during the final join tells the truth: before the join publishes, nothing is published,
the finished chunks stay and the printed resume joins them; once it publishes, the render
finishes (exit 0), holding its locks until the output is whole. No temporary file outlives a job.

The real command line in this process's engine (no Ray: the join is the driver's), held at a
known point of the join by a fault (tests.engine.gated), so the signal cannot race the join.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from distdream.cli.video import STOP_WAIT
from distdream.engine.faults import Fault
from distdream.samples import pan_frames, write_clip
from distdream.video import probe
from tests.engine.gated import ROOT, spawn
from tests.engine.test_signals import EXE

FLAGS = (
    "--num-iterations 1 --num-octaves 1 --dream-layers _blocks.3 --keyframe-settle 0 --crf 0 --preset "
    "ultrafast --chunk-frames 12 --overlap 3 --no-scan-cuts --seams crossfade --workers 1 --ray never -q"
).split()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames of a pan over a real photo, with sound: two chunks and a crossfaded seam."""
    return write_clip(tmp_path_factory.mktemp("join") / "clip.mp4", list(pan_frames(24, 64, 48)), audio="aac")


def held_render(clip: Path, tmp_path: Path, kind: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """`distdream render … ARGS` held by a ``kind`` join fault, once it holds there; and its go-ahead file."""
    go = tmp_path / "go"
    proc = spawn(["render", str(clip), "-o", str(tmp_path / "out.mp4"), *args, *FLAGS], Fault(kind=kind, go=str(go)))
    deadline = time.monotonic() + 240
    while not Path(f"{go}.held").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=30)
        time.sleep(0.05)
    return proc, go


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".out.*.partial.mp4"))


def locks(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*lock*"))


def test_a_stop_before_the_join_publishes_leaves_no_output_and_the_resume_joins_the_kept_chunks(
    clip: Path, tmp_path: Path
) -> None:
    proc, _ = held_render(clip, tmp_path, "join-wait", "--workdir", str(tmp_path / "work"))
    assert temps(tmp_path)  # held with its temporary output half written
    assert locks(tmp_path) == [".out.mp4.lock", "work/lock.json"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM; finished chunks are kept"), err
    assert not (tmp_path / "out.mp4").exists() and temps(tmp_path) == [] and locks(tmp_path) == []
    finished = json.loads((tmp_path / "work" / "ledger.json").read_text())["chunks"]
    assert len(finished) == 2  # everything was dreamed: only the join is left

    # a join killed outright (kill -9, a lost node) leaves its temporary file: the next job sweeps it
    stale = tmp_path / ".out.k1ll3d.partial.mp4"
    stale.write_bytes(b"half a video")
    stranger = tmp_path / ".other.k1ll3d.partial.mp4"
    stranger.write_bytes(b"not ours")
    again = shlex.split(last.split("resume with: ", 1)[1])
    done = subprocess.run([EXE, *again[1:]], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "(2 from the ledger)" in done.stdout  # nothing dreamed again
    assert probe(tmp_path / "out.mp4").frame_count == 24
    assert not stale.exists() and stranger.exists() and locks(tmp_path) == []


def test_a_stop_while_the_join_publishes_lets_it_finish_holding_its_locks_and_exits_0(
    clip: Path, tmp_path: Path
) -> None:
    proc, go = held_render(clip, tmp_path, "publish-wait")  # in its own work directory, removed once it succeeds
    proc.send_signal(signal.SIGTERM)
    time.sleep(STOP_WAIT + 2)  # past the wait a stop gives a job that is not publishing
    assert proc.poll() is None  # still finishing what it began
    held = [".out.mp4.distdream/lock.json", ".out.mp4.lock"]
    assert locks(tmp_path) == held  # and nobody else may take the output meanwhile
    go.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "the render is complete" in err and "resume" not in err, err
    assert out.startswith(f"wrote {tmp_path / 'out.mp4'}: 24 frames"), out
    assert probe(tmp_path / "out.mp4").frame_count == 24
    assert not (tmp_path / ".out.mp4.distdream").exists() and temps(tmp_path) == [] and locks(tmp_path) == []
