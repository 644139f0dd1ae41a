"""Outputs never touch inputs or strangers' files: compared file by file with the input (links,
directory inputs, %d against %04d, file:// URIs), an existing image-sequence output refused
without --overwrite, and one job at a time writing an output. Real files, the real CLI, a local Ray."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distdream import storage
from distdream.cli import main
from distdream.engine import render, testing
from distdream.errors import ConfigError, JobError
from distdream.samples import pan_frames, write_clip
from distdream.video import frame_file
from tests.engine.gated import gate
from tests.video.test_imageseq import CFG, write_pngs

pytestmark = pytest.mark.usefixtures("local_ray")

FAST = [
    "--num-iterations",
    "1",
    "--num-octaves",
    "1",
    "--dream-layers",
    "_blocks.3",
    "--keyframe-settle",
    "0",
    "--no-scan-cuts",
    "--workers",
    "1",
    "-q",
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("input", "output"),
    [
        ("seq", "seq/p.%04d.png"),  # a directory input, its own pattern as output
        ("seq/p.%04d.png", "link/p.%04d.png"),  # the same folder through a symbolic link
        ("seq/p.%04d.png", "seq/p.%d.png"),  # %d against %04d: p.1000.png and p.1001.png are the same files
        ("file://{tmp}/clip.mp4", "clip.mp4"),  # a file:// URI of the input
        ("clip.mp4", "file://{tmp}/clip.mp4"),
    ],
)
def test_an_output_any_file_of_which_is_an_input_file_is_refused(
    capsys, tmp_path: Path, monkeypatch, input: str, output: str
) -> None:
    write_pngs(tmp_path / "seq", list(pan_frames(4, 48, 32)), first=998, name="p.%04d.png")  # 0998 … 1001
    (tmp_path / "link").symlink_to(tmp_path / "seq")
    write_clip(tmp_path / "clip.mp4", pan_frames(4, 48, 32), audio=None)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main(
        ["render", input.format(tmp=tmp_path), "--fps", "24", "-o", output.format(tmp=tmp_path), *FAST]
        if "clip" not in input
        else ["render", input.format(tmp=tmp_path), "-o", output.format(tmp=tmp_path), *FAST]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "would overwrite" in err[0], err
    assert ("p.1000.png" in err[0]) == (output == "seq/p.%d.png")  # names the first shared file
    assert snapshot(tmp_path) == before  # the input untouched, nothing written


def test_paths_are_resolved_on_the_driver(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert storage.resolve("out/x.mp4", "output") == str(tmp_path / "out" / "x.mp4")
    assert storage.resolve(f"file://{tmp_path}/a%20b.mp4", "input") == str(tmp_path / "a b.mp4")
    assert storage.resolve("s3://bucket/x.mp4", "input") == "s3://bucket/x.mp4"
    with pytest.raises(ConfigError, match="memory:// lives in one process's memory"):
        storage.resolve("memory://x/y.mp4", "input", ConfigError)


def test_an_existing_sequence_output_needs_overwrite_which_removes_stale_frames(capsys, tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "in", list(pan_frames(12, 48, 32)), first=1)
    out = tmp_path / "out" / "d.%04d.png"
    old = write_pngs(tmp_path / "out", [np.zeros((32, 48, 3), np.uint8)] * 20, first=1, name="d.%04d.png")
    (tmp_path / "out" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path / "out")
    args = ["render", pattern, "--fps", "25", "-o", str(out), *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds 20 frame file(s) (d.0001.png …); pass --overwrite" in err, err
    assert snapshot(tmp_path / "out") == before
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == [f"d.{n:04d}.png" for n in range(1, 13)] + ["notes.txt"]  # 13–20 were another render's
    assert all(np.asarray(Image.open(frame_file(old, n))).any() for n in range(1, 13))  # dreamed, not the old black


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("d.%04d.png", "d.%04d.png"),
        ("d.%04d.png", "d.%d.png"),  # they share d.1000.png onward, and each one's temporary files
        ("out.mp4", "out.mp4"),  # each with a work directory of its own
    ],
)
def test_two_jobs_cannot_write_one_output(tmp_path: Path, first: str, second: str) -> None:
    pattern = write_pngs(tmp_path / "in", list(pan_frames(24, 48, 32)), first=1)
    (tmp_path / "out").mkdir()
    common = dict(workers=1, chunk_frames=12, scan_cuts=False, ray="never")
    held = gate(tmp_path / "never", chunk=1)  # the first job cannot end while the second tries
    job = testing.submit(
        pattern, str(tmp_path / "out" / first), CFG, workdir=str(tmp_path / "w1"), faults=[held], **common
    )
    try:
        with pytest.raises(JobError, match=rf"output .*{re.escape(second)} is in use by another job \(host .*, pid"):
            render(pattern, str(tmp_path / "out" / second), CFG, workdir=str(tmp_path / "w2"), overwrite=True, **common)
        assert not os.path.exists(tmp_path / "w2" / "lock.json")  # its work directory's lock was let go
        assert job.status().value in ("starting", "running")
    finally:
        job.stop(60)
    assert [p.name for p in (tmp_path / "out").iterdir() if "lock" in p.name] == []
