"""Image sequences in and out: probing and its errors, 16-bit precision through the dream, a
distributed render straight to numbered files with crossfade windows, and a resume that redoes
only the frames that are missing."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from distdream.cli import main
from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import render, testing
from distdream.engine.faults import Fault
from distdream.errors import ChunkFailed, OutputError, VideoError
from distdream.samples import pan_frames
from distdream.video import frame_file, probe, read_frames
from tests.engine.gated import gate
from tests.media import render_here

CFG = RenderConfig(
    dream=DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",), jitter=4),
    keyframe_settle=0,
    fps="25",
)
JOB = dict(chunk_frames=12, overlap=3, scan_cuts=False, seams="crossfade")


def write_pngs(folder: Path, frames: list[np.ndarray], first: int = 1, name: str = "plate.%04d.png") -> str:
    """8-bit RGB frames (PIL), or 16-bit (OpenCV: PIL cannot write 48-bit RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = str(folder / name)
    for k, frame in enumerate(frames):
        path = frame_file(pattern, first + k)
        if frame.dtype == np.uint16:
            cv2.imwrite(path, np.ascontiguousarray(frame[..., ::-1]))
        else:
            Image.fromarray(frame).save(path)
    return pattern


def deep(frames: list[np.ndarray]) -> list[np.ndarray]:
    """16-bit frames whose low bits matter: 8-bit values × 257 plus a little noise."""
    rng = np.random.default_rng(0)
    return [(f.astype(np.uint16) * 257 + rng.integers(0, 200, f.shape)).astype(np.uint16) for f in frames]


def read16(path: str) -> np.ndarray:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_a_pattern_or_its_directory_is_probed_with_its_rate(tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "shot", deep(list(pan_frames(5, 48, 32))), first=1001)
    index = probe(pattern, fps="24000/1001")
    assert (index.frame_count, index.first_number, index.width, index.height) == (5, 1001, 48, 32)
    assert index.pix_fmt == "rgb48be" and str(index.average_rate) == "24000/1001"
    assert index.colour.transfer == "iec61966-2-1"  # an RGB file is sRGB
    assert probe(tmp_path / "shot", fps=24).path == pattern  # the directory: the same sequence
    with pytest.raises(VideoError, match="carries no timing; give its frame rate, e.g. --fps"):
        probe(pattern)
    with pytest.raises(VideoError, match="--fps is for image-sequence input"):
        probe(write_clip_of(tmp_path), fps=24)


def write_clip_of(tmp_path: Path) -> Path:
    from distdream.samples import write_clip

    return write_clip(tmp_path / "clip.mp4", pan_frames(3, 48, 32), audio=None)


@pytest.mark.parametrize("suffix,deep_frames", [(".tif", True), (".jpg", False), (".png", False)])
def test_tiff_jpeg_and_png_files_read_as_their_pixels(tmp_path: Path, suffix: str, deep_frames: bool) -> None:
    frames = list(pan_frames(3, 64, 48))
    written = deep(frames) if deep_frames else frames
    folder = tmp_path / "seq"
    folder.mkdir()
    for k, frame in enumerate(written):  # OpenCV writes all three, 16-bit TIFF included
        cv2.imwrite(str(folder / f"f{k:03d}{suffix}"), np.ascontiguousarray(frame[..., ::-1]))
    index = probe(folder, fps=30)
    assert index.frame_count == 3 and index.path.endswith(f"f%03d{suffix}")
    got = list(read_frames(index.path, index=index, dtype=np.float32))
    for k, (frame, want) in enumerate(zip(got, written, strict=True)):
        scale = 65535.0 if deep_frames else 255.0
        error = np.abs(frame * scale - want).mean() / (257 if deep_frames else 1)  # levels of 255
        if suffix != ".jpg":
            assert error < 1e-3, error  # lossless files: exactly their pixels
            continue
        # JPEG: its own loss, plus at most a level for repeating chroma where libjpeg interpolates
        libjpeg = cv2.imread(str(folder / f"f{k:03d}.jpg"))[..., ::-1].astype(float)
        assert error < np.abs(libjpeg - want).mean() + 1.0, error


def test_gaps_mixed_sizes_and_mixed_sequences_are_named(tmp_path: Path) -> None:
    frames = list(pan_frames(6, 48, 32))
    pattern = write_pngs(tmp_path / "gap", frames)
    Path(frame_file(pattern, 4)).unlink()
    with pytest.raises(VideoError, match=r"plate\.0004\.png is missing \(frames 1–3 exist, then 5\)"):
        probe(pattern, fps=25)
    pattern = write_pngs(tmp_path / "sizes", frames)
    Image.fromarray(frames[0][:30]).save(frame_file(pattern, 3))
    with pytest.raises(VideoError, match=r"plate\.0003\.png is 48×30 but .*plate\.0001\.png is 48×32"):
        probe(pattern, fps=25)
    write_pngs(tmp_path / "two", frames[:2])
    write_pngs(tmp_path / "two", frames[:2], name="matte.%04d.png")
    with pytest.raises(VideoError, match="several sequences"):
        probe(tmp_path / "two", fps=25)


def test_16_bit_frames_keep_16_bits_through_the_dream(capsys, tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "in", deep(list(pan_frames(4, 64, 48))))
    out = tmp_path / "out"
    out.mkdir()
    undreamed = render_here(
        pattern, str(out / "same.%05d.png"), RenderConfig(dream=DreamConfig(num_iterations=0), fps="25")
    ).output
    for n in range(1, 5):  # numbered as the input: file n is frame n, exactly its 16-bit values
        assert np.array_equal(read16(frame_file(undreamed, n)), read16(frame_file(pattern, n)))
    dreamed = render_here(pattern, str(out / "dream.%05d.tif"), CFG).output
    got, given = read16(frame_file(dreamed, 3)), read16(frame_file(pattern, 3))
    assert got.dtype == np.uint16 and np.abs(got.astype(int) - given).mean() > 257  # dreamed, visibly
    assert (got % 257 != 0).mean() > 0.9  # not 8-bit values scaled up
    assert main(["metrics", pattern, str(dreamed), "--fps", "25", "--json"]) == 0  # sequence against sequence
    assert min(json.loads(capsys.readouterr().out)["strength"]) > 1


@pytest.mark.usefixtures("local_ray")
def test_a_sequence_renders_to_numbered_files_and_resumes_only_what_is_missing(tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "in", list(pan_frames(60, 96, 64))[:40], first=1)
    lossless = replace(CFG, encoding=replace(CFG.encoding, codec="ffv1"))  # RGB: the same pixels as numbered files
    reference = render(pattern, tmp_path / "ref.mkv", lossless, workers=2, ray="never", **JOB).output
    want = list(read_frames(reference))
    out, workdir = tmp_path / "out" / "dream.%05d.png", tmp_path / "work"
    (tmp_path / "out").mkdir()
    # chunk 2 (frames 22–39) fails at its last frame, once chunks 0 and 1 are done: it waits for
    # them there (on two workers, chunk 1 could otherwise still be running when chunk 2 fails)
    go = tmp_path / "go"
    job = testing.submit(
        pattern,
        out,
        CFG,
        workers=2,
        workdir=str(workdir),
        max_attempts=1,
        faults=(gate(go, chunk=2, at_frame=17), Fault(chunk=2, at_frame=17)),
        **JOB,
    )
    ledger, deadline = workdir / "ledger.json", time.monotonic() + 300
    while not (ledger.exists() and len(json.loads(ledger.read_text())["chunks"]) == 2):
        assert not job.done() and time.monotonic() < deadline, job.status()
        time.sleep(0.05)
    go.touch()
    with pytest.raises(ChunkFailed):
        job.result(timeout=300)
    # the plan: chunks own 0–13, 14–24 and 25–39, with windows 11–13 and 22–24. Frame i is file
    # i + 1: chunk 0's own frames 0–10 and chunk 1's 14–21 are written (the window between them,
    # 11–13, if its seam task got to it; chunk 1's tail, 22–24, is one side of the next window, in
    # the work directory), and the frames chunk 2 wrote before it failed; every file is whole (no
    # temporary file is left), none of the next window's
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {f"dream.{n:05d}.png" for n in [*range(1, 12), *range(15, 23)]} <= written
    assert written <= {f"dream.{n:05d}.png" for n in [*range(1, 23), *range(26, 41)]}
    kept = {n: Path(frame_file(str(out), n)).stat().st_mtime_ns for n in range(15, 23)}  # chunk 1's own
    Path(frame_file(str(out), 5)).unlink()  # a frame of chunk 0 goes missing
    result = render(pattern, out, CFG, workers=2, workdir=str(workdir), resume=True, ray="never", **JOB)
    assert result.rendered == 2  # chunk 0 (a frame missing) and chunk 2 (failed); chunk 1 kept
    assert {n: Path(frame_file(str(out), n)).stat().st_mtime_ns for n in range(15, 23)} == kept
    got = [read16(frame_file(str(out), n)) for n in range(1, 41)]
    assert all(g.dtype == np.uint8 and np.array_equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("torn", ["empty", "its tail lost"])
def test_a_torn_frame_file_is_redone_even_by_a_rebuilt_ledger(tmp_path: Path, torn: str) -> None:
    """With no fingerprint to compare (the ledger was damaged), each frame file must still decode
    whole: empty (a full disk), or its header whole and its tail lost (a crash before the data
    reached the disk)."""
    pattern = write_pngs(tmp_path / "in", list(pan_frames(40, 48, 32))[:24], first=1)
    out, workdir = tmp_path / "out" / "d.%04d.png", tmp_path / "work"
    (tmp_path / "out").mkdir()
    job = dict(JOB, overlap=0, seams="handoff", chunk_frames=12)
    render(pattern, out, CFG, workers=1, workdir=str(workdir), **job)
    (workdir / "ledger.json").write_text("{not json")
    frame = Path(frame_file(str(out), 5))  # a frame of chunk 0
    frame.write_bytes(b"" if torn == "empty" else frame.read_bytes()[: frame.stat().st_size // 2])
    result = render(pattern, out, CFG, workers=1, workdir=str(workdir), resume=True, **job)
    assert result.rendered == 2  # chunk 0 (torn) and chunk 1 (it continues chunk 0's shot)
    assert Image.open(frame_file(str(out), 5)).size == (48, 32)


def test_the_cli_reads_sequences_and_refuses_what_does_not_fit(capsys, tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "in", list(pan_frames(3, 48, 32)))
    assert main(["probe", str(tmp_path / "in"), "--fps", "24", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_number"] == 1 and data["frame_count"] == 3 and data["bit_depth"] == 8
    assert data["colour"]["transfer"] == "iec61966-2-1"
    for argv, needle in [
        ([pattern, "-o", str(tmp_path / "o.mp4")], "give its frame rate"),
        ([pattern, "--fps", "25", "-o", str(tmp_path / "o.%05d.jpg")], "written as .png or .tif"),
        ([pattern, "--fps", "25", "-o", str(tmp_path / "o.%05d.png"), "--codec", "prores"], "does not apply"),
        ([pattern, "--fps", "25", "-o", str(tmp_path / "o.mp4"), "--codec", "prores"], "not a container that takes"),
        ([pattern, "--fps", "25", "-o", str(tmp_path / "o.mkv"), "--pix-fmt", "yuv420p16le"], "h264 encodes"),
    ]:
        code = main(["render", *argv, "-q"])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_output_errors_are_typed(tmp_path: Path) -> None:
    pattern = write_pngs(tmp_path / "in", list(pan_frames(2, 48, 32)))
    with pytest.raises(OutputError, match="--codec h264 does not apply"):
        render_here(pattern, str(tmp_path / "x.%03d.png"), RenderConfig(fps="25", encoding=Encoding(codec="h264")))
    with pytest.raises((OutputError, VideoError)):
        render_here(pattern, str(tmp_path / "x.%03d.exr"), RenderConfig(fps="25"))


def test_temporary_files_of_killed_writers_are_swept_and_nothing_else(tmp_path: Path) -> None:
    from distdream.video.naming import sweep_temps

    names = [
        ".dream.00016.lj6tuetj.partial.png",
        ".dream.00017.x1.partial.png",  # a killed writer's temps
        ".dream.16.x1.partial.png",  # dream.%d.png names dream.00016.png's family too
        "dream.00016.png",
        ".other.00016.ab.partial.png",
        ".dream.00016.ab.partial.tif",
        ".out.ab.partial.mp4",
        "notes.txt",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert sweep_temps(str(tmp_path / "dream.%05d.png")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:])
    (tmp_path / ".out.a.b.partial.mp4").write_bytes(b"x")  # out.a.mp4's, not out.mp4's
    assert sweep_temps(str(tmp_path / "out.mp4")) == 1  # a video output's own
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[3:6], names[7], ".out.a.b.partial.mp4"])


def test_patterns_that_can_name_the_same_files_are_one_family() -> None:
    from distdream.video.naming import family

    assert family("o/d.%04d.png") == family("o/d.%d.png") == family("o/d.%5d.png") == "o/d.#.png"
    assert family("o/e.%04d.png") != family("o/d.%04d.png") != family("p/d.%04d.png")
    assert family("s3://b/o/out.mp4") == "s3://b/o/out.mp4"
