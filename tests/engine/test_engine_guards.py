"""A render you can trust: preflight, bounded waits, resume that cannot lie, locks, ledgers, leaks.

Every case runs the real thing: a local Ray instance, real clips, the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distdream.cli import main
from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import render, testing
from distdream.engine.faults import Fault
from distdream.engine.workdir import workdir_lease
from distdream.errors import ChunkFailed, ConfigError, JobError
from distdream.samples import pan_frames, write_clip
from distdream.video import probe, read_frames

pytestmark = pytest.mark.usefixtures("local_ray")

CFG = RenderConfig(
    dream=DreamConfig(num_iterations=1, num_octaves=1, dream_layers=("_blocks.3",), jitter=2),
    keyframe_settle=0,
    encoding=Encoding(crf=0, preset="ultrafast"),
)  # engine mechanics: the lightest dream
# in this process, as threads: the guards are the job's, wherever it runs (a job with faults runs on Ray)
JOB = dict(chunk_frames=6, overlap=2, workers=2, scan_cuts=False, seams="crossfade", ray="never")
FLAGS = ["--num-iterations", "1", "--num-octaves", "1", "--dream-layers", "_blocks.3", "-q"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 frames 64×48 with an AAC tone: 3 chunks of 6 with lead-ins of 2."""
    return write_clip(tmp_path_factory.mktemp("guards") / "clip.mp4", pan_frames(16, 64, 48), audio="aac")


@pytest.fixture(scope="module")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    render(clip, out, CFG, **JOB)
    return list(read_frames(out))


def same_frames(path: Path, reference: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(read_frames(path), reference, strict=True))


# --- preflight: one line, exit 2, nothing written -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-o", "out.txt"], ".txt is not a container that takes H.264"),
        (["-o", "noext"], "has no suffix"),
        (["-o", "out.webm"], ".webm is not a container that takes H.264"),
        (["-o", "clip.mp4"], "would overwrite the input video"),
        (["-o", "link.mp4"], "would overwrite the input video"),
        (["-o", "hard.mp4"], "would overwrite the input video"),
        (["-o", "out.mp4", "--dream-layers", "_blocks.99"], "unknown layer '_blocks.99'"),
        (["-o", "out.mp4", "--channels", "99999"], "channel 99999 is out of range"),
        (["-o", "out.mp4", "--weights", "bad.pth"], "is not a PyTorch state dict"),
        (["-o", "out.mp4", "--predefined-start", "nope.png"], "/nope.png does not exist"),  # made absolute
        (["-o", "out.mp4", "--frames", "10:99"], "--frames 10:99 is outside"),
        (["-o", "out.mp4", "--workers", "0"], "workers (--workers) is 0"),
        (["-o", "missing/out.mp4"], "missing does not exist"),
        (["-o", "out.mp4", "--workdir", "stray"], "but no plan.json"),
    ],
)
def test_bad_input_fails_before_any_frame_and_writes_nothing(
    clip: Path, tmp_path: Path, monkeypatch, capsys, args: list[str], says: str
) -> None:
    for name in ("clip.mp4",):
        shutil.copy(clip, tmp_path / name)
    (tmp_path / "link.mp4").symlink_to(tmp_path / "clip.mp4")
    os.link(tmp_path / "clip.mp4", tmp_path / "hard.mp4")
    (tmp_path / "bad.pth").write_text("not a checkpoint")
    (tmp_path / "stray" / "chunks").mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    digest = (tmp_path / "clip.mp4").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["render", "clip.mp4", *FLAGS, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, not even a work dir
    assert (tmp_path / "clip.mp4").read_bytes() == digest  # the input untouched


def test_an_unreachable_cluster_fails_within_its_timeout(clip: Path, tmp_path: Path) -> None:
    """In a fresh process (this one already has Ray): the typo'd address is refused, not waited on."""
    from tests.conftest import free_port

    cmd = [
        sys.executable,
        "-m",
        "distdream",
        "render",
        str(clip),
        "-o",
        str(tmp_path / "o.mp4"),
        *FLAGS,
        "--address",
        f"127.0.0.1:{free_port()}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # a hang fails the test here
    assert done.returncode == 2 and "no Ray cluster answers at 127.0.0.1:" in done.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_an_address_where_something_else_answers_fails_naming_it(clip: Path, tmp_path: Path) -> None:
    """The dashboard's port typed for the GCS's: a web server answers the TCP connect, and Ray
    would retry for minutes; the render says what answered, in seconds."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        cmd = [sys.executable, "-m", "distdream", "render", str(clip), "-o", str(tmp_path / "o.mp4"), *FLAGS]
        done = subprocess.run([*cmd, "--address", address], capture_output=True, text=True, timeout=240)
    finally:
        server.shutdown()
    assert done.returncode == 2, done.stderr
    assert f"{address} is a web server (a Ray dashboard, whose port is 8265 by default?)" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3 and "Traceback" not in done.stderr  # the error and its hint


def test_a_new_local_instance_does_not_wait_for_nodes_that_cannot_come(clip: Path, tmp_path: Path) -> None:
    """`--address local` starts an instance of its own: no node will join it, so no 600 s wait."""
    cmd = [sys.executable, "-m", "distdream", "render", str(clip), "-o", str(tmp_path / "o.mp4"), *FLAGS]
    done = subprocess.run(
        [*cmd, "--address", "local", "--gpus-per-worker", "1"], capture_output=True, text=True, timeout=240
    )  # the old 600 s wait fails the test here
    assert done.returncode == 2 and "no worker can start: each asks for 1 GPU" in done.stderr, done.stderr


def test_more_workers_than_this_machine_s_ray_instance_can_host_are_refused_before_any_frame(
    clip: Path, tmp_path: Path
) -> None:
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    with pytest.raises(ConfigError, match=rf"--workers {cpus + 1} with 1 CPU each needs {cpus + 1} CPUs"):
        render(clip, tmp_path / "o.mp4", CFG, **{**JOB, "workers": cpus + 1, "ray": "always"})
    assert not (tmp_path / "o.mp4").exists()


# --- no wait without an end -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "limit", "says"),
    [
        ("start-raise", 120, "died while starting (RuntimeError: injected fault: the worker failed while starting)"),
        ("start-hang", 4, "did not answer within 4 s of starting"),
        ("ping-hang", 4, "did not answer within 4 s of starting"),
    ],
)
def test_a_worker_that_cannot_start_fails_the_job_with_its_cause(
    clip: Path, tmp_path: Path, kind: str, limit: int, says: str
) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(JobError, match="workers failed to start") as err:
        testing.render(
            clip,
            out,
            CFG,
            max_restarts=0,
            start_timeout=limit,
            max_start_failures=2,
            faults=(Fault(kind=kind),),
            **{**JOB, "workers": 1, "ray": "auto"},
        )
    assert says in str(err.value)
    assert not out.exists()


# --- resume that cannot lie -------------------------------------------------------------------


def _interrupted_workdir(clip: Path, tmp_path: Path) -> Path:
    """A work directory whose job stopped after its first chunk (the last chunk always fails)."""
    workdir = tmp_path / "work"
    with pytest.raises(ChunkFailed):
        testing.render(
            clip,
            tmp_path / "out.mp4",
            CFG,
            workdir=str(workdir),
            max_attempts=1,
            faults=(Fault(chunk=2, at_frame=0),),
            **{**JOB, "workers": 1, "ray": "auto"},
        )
    assert json.loads((workdir / "ledger.json").read_text())["chunks"]
    return workdir


def test_resume_refuses_another_cut_of_the_same_length(clip: Path, tmp_path: Path) -> None:
    workdir = _interrupted_workdir(clip, tmp_path)
    regraded = write_clip(
        tmp_path / "regraded.mp4",
        (np.clip(f.astype(int) + 12, 0, 255).astype(np.uint8) for f in read_frames(clip)),
        audio="aac",
    )
    assert probe(regraded).pts.tolist() == probe(clip).pts.tolist()  # same length, same clock
    with pytest.raises(JobError, match="input packets"):
        render(regraded, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)


def test_resume_refuses_other_settings_and_names_them(clip: Path, tmp_path: Path) -> None:
    workdir = _interrupted_workdir(clip, tmp_path)
    other = RenderConfig(
        dream=DreamConfig(**{**CFG.dream.to_dict(), "learning_rate": 0.05}),
        encoding=Encoding(crf=0, preset="ultrafast"),
    )
    with pytest.raises(JobError, match=r"dream\.learning_rate \(0\.02 then, 0\.05 now\)"):
        render(clip, tmp_path / "out.mp4", other, workdir=str(workdir), resume=True, **JOB)


def test_a_corrupt_ledger_is_rebuilt_from_the_pieces_that_verify(clip: Path, reference, tmp_path: Path) -> None:
    workdir = _interrupted_workdir(clip, tmp_path)
    kept = json.loads((workdir / "ledger.json").read_text())["chunks"]
    for i, damage in enumerate((b"\xff\xfe{not UTF-8", b"{not json", b"{}")):
        (workdir / "ledger.json").write_bytes(damage)
        result = render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)
        assert any("rebuilt it from the pieces that verify" in n for n in result.notes), result.notes
        assert result.rendered == (3 - len(kept) if i == 0 else 0)  # then every chunk is there and verifies
        assert same_frames(result.output, reference)
        (tmp_path / "out.mp4").unlink()


def test_a_resume_keeps_a_handoff_chain_s_finished_chunks_and_their_carried_state(clip: Path, tmp_path: Path) -> None:
    workdir, out = tmp_path / "work", tmp_path / "out.mp4"
    job = {**JOB, "seams": "handoff", "workers": 1}
    whole = render(clip, tmp_path / "whole.mp4", CFG, **job)  # each chunk continues the one before
    with pytest.raises(ChunkFailed):
        fault = Fault(chunk=2, at_frame=0)
        testing.render(clip, out, CFG, workdir=str(workdir), max_attempts=1, faults=(fault,), **{**job, "ray": "auto"})
    ledger = json.loads((workdir / "ledger.json").read_text())["chunks"]
    assert "chunks/00001.carried.npz" in ledger["00001"]["fingerprints"]  # what chunk 2 continues from
    workdir.rename(tmp_path / "moved")
    result = render(clip, out, CFG, workdir=str(tmp_path / "moved"), resume=True, **job)
    assert result.rendered == 1  # only chunk 2: chunks 0 and 1 and chunk 1's state were kept
    assert same_frames(result.output, list(read_frames(whole.output)))


def test_a_moved_work_directory_resumes_and_still_checks_every_fingerprint(
    clip: Path, reference, tmp_path: Path
) -> None:
    workdir = _interrupted_workdir(clip, tmp_path)
    kept = json.loads((workdir / "ledger.json").read_text())["chunks"]
    assert len(kept) == 2 and all(not k.startswith("/") for r in kept.values() for k in r["fingerprints"])
    moved = tmp_path / "elsewhere" / "work"
    moved.parent.mkdir()
    workdir.rename(moved)
    with (moved / "chunks" / "00001.mid.mp4").open("ab") as fh:
        fh.write(b"\0" * 64)  # still decodes to its frames, but it is not what the chunk wrote
    result = render(clip, tmp_path / "out.mp4", CFG, workdir=str(moved), resume=True, **JOB)
    assert result.rendered == 2  # chunk 2 (never done) and chunk 1 (changed); chunk 0 kept
    assert same_frames(result.output, reference)


def test_a_piece_the_ledger_has_no_fingerprint_for_is_redone(clip: Path, reference, tmp_path: Path) -> None:
    workdir = _interrupted_workdir(clip, tmp_path)
    ledger = json.loads((workdir / "ledger.json").read_text())
    del ledger["chunks"]["00000"]["fingerprints"]["chunks/00000.mid.mp4"]
    (workdir / "ledger.json").write_text(json.dumps(ledger))
    result = render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)
    assert result.rendered == 2 and same_frames(result.output, reference)


def test_a_ledger_that_cannot_be_read_is_an_error_never_a_rebuild(clip: Path, tmp_path: Path, monkeypatch) -> None:
    import errno

    from distdream import storage

    workdir = _interrupted_workdir(clip, tmp_path)
    before = (workdir / "ledger.json").read_bytes()
    read_text = storage.read_text

    def failing(path):  # the storage answers, but the ledger cannot be read (EIO, a throttled bucket …)
        if str(path).endswith("ledger.json"):
            raise OSError(errno.EIO, "Input/output error", str(path))
        return read_text(path)

    monkeypatch.setattr(storage, "read_text", failing)
    with pytest.raises(JobError, match=r"cannot read the ledger .*Input/output error.*nothing was changed"):
        render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)
    assert (workdir / "ledger.json").read_bytes() == before and not (workdir / "lock.json").exists()


def test_a_redone_chunk_redoes_both_windows_beside_it(clip: Path, reference, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), **JOB)
    windows = {p.name: p.stat().st_mtime_ns for p in (workdir / "windows").iterdir()}
    assert sorted(windows) == ["00001.mp4", "00002.mp4"]
    (workdir / "chunks" / "00001.mid.mp4").unlink()  # chunk 1 lost a piece: it is redone
    (tmp_path / "out.mp4").unlink()
    result = render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)
    assert result.rendered == 1
    after = {p.name: p.stat().st_mtime_ns for p in (workdir / "windows").iterdir()}
    assert after["00001.mp4"] != windows["00001.mp4"] and after["00002.mp4"] != windows["00002.mp4"]
    assert same_frames(result.output, reference)


def test_a_second_job_on_a_work_directory_is_refused(clip: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "plan.json").write_text("{}")  # looks like a job directory
    held = workdir_lease(str(workdir))
    held.acquire()
    try:
        with pytest.raises(JobError, match=r"is in use by another job \(host .*, pid \d+"):
            render(clip, tmp_path / "out.mp4", CFG, workdir=str(workdir), resume=True, **JOB)
    finally:
        held.release()
    assert not (workdir / "lock.json").exists()


# --- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_permissions_of_a_plain_open(clip: Path, tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        result = render(clip, tmp_path / "out.mp4", CFG, frame_range=(0, 6), **JOB)
        from distdream.images import save_image

        image = save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "still.png")
    finally:
        os.umask(old)
    for path in (Path(result.output), image):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, oct(path.stat().st_mode)


def test_a_failed_write_leaves_no_temp(tmp_path: Path) -> None:
    from distdream import storage

    target = tmp_path / "ledger.json"
    target.mkdir()  # a directory where the file should go: the rename fails
    with pytest.raises(OSError):
        storage.write_text(target, "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]
