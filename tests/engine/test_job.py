"""The engine on a real local Ray cluster: exact output, seams, determinism, resume, faults, API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import JobOptions, plan, render, submit, testing
from distdream.engine.faults import Fault
from distdream.engine.preflight import plan_record, preflight
from distdream.engine.stitch import crossfade_weights, mix_residuals
from distdream.engine.workdir import settings_hash
from distdream.errors import ChunkFailed, JobCancelled, JobError
from distdream.samples import pan_frames, write_clip
from distdream.video import probe, read_frames
from tests.engine.gated import ROOT, command, default_signals, gate

# crf 0: lossless, so runs can be compared frame for frame (lossy x264 is not bit-exact everywhere)
CFG = RenderConfig(
    dream=DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",), jitter=4),
    keyframe_settle=0,
    encoding=Encoding(crf=0, preset="ultrafast"),
)  # engine mechanics: the lightest dream
JOB = dict(chunk_frames=12, overlap=3, scan_cuts=False, seams="crossfade")  # the seams these tests look at


pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames 96×64 of a pan over a real photo, with an AAC tone: plans into 3 chunks."""
    return write_clip(tmp_path_factory.mktemp("job") / "clip.mp4", list(pan_frames(60, 96, 64))[:40], audio="aac")


@pytest.fixture(scope="module")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The frames of an uninterrupted one-worker render of the plan (in this process: the same
    bytes as on Ray, tests/engine/test_local.py)."""
    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    render(clip, out, CFG, workers=1, ray="never", **JOB)
    return list(read_frames(out))


def frames_of(path: Path) -> list[np.ndarray]:
    return list(read_frames(path))


def test_plan_reports_chunks_and_overhead(clip: Path) -> None:
    p = plan(clip, CFG, **JOB)
    # boundaries at 12 and 24, moved so that the lead-ins are shared: 14, 14 and 18 frames dreamed
    assert [(c.start, c.end, c.lead_in) for c in p.chunks] == [(0, 14, 0), (14, 25, 3), (25, 40, 3)]
    assert p.frames == 40 and p.dreamed_frames == 46 and p.lead_in_overhead == pytest.approx(6 / 40)


def test_the_plan_hash_holds_what_runs_not_how_fast(clip: Path, tmp_path: Path) -> None:
    def hashed(device: str = "cpu", render: dict[str, object] | None = None, **dream: object) -> str:
        cfg = RenderConfig(
            dream=DreamConfig(**{**CFG.dream.to_dict(), **dream}),
            **(render or {}),
            encoding=Encoding(crf=0, preset="ultrafast"),
        )
        checked = preflight(str(clip), str(tmp_path / "o.mp4"), cfg, JobOptions(**JOB))
        chunks = list(plan(clip, cfg, **JOB).chunks)
        return settings_hash(plan_record(str(clip), checked.index, checked.config, checked.weights, device, chunks))

    base = hashed()
    cfg = RenderConfig(dream=CFG.dream, encoding=Encoding(crf=0, preset="ultrafast"))
    assert plan(clip, cfg, output=tmp_path / "o.mp4", **JOB).settings_hash == base  # the job's own hash
    assert plan(clip, cfg, output=tmp_path / "o.%04d.png", **JOB).settings_hash != base  # another codec
    assert hashed(compile=True) == hashed(channels_last=False) == base  # speed, not the recipe
    assert hashed(render={"carry_on_device": True}) == base  # where the carry runs: rounding only
    assert hashed(render={"carry_resampling": "bilinear"}) != base  # how it resamples: the recipe
    assert hashed(precision="fp32") == base  # auto runs fp32: the hash stores what runs, not the name
    assert hashed(precision="bf16") == base  # … and bf16 runs fp32 on a CPU worker
    assert hashed("cuda", precision="bf16") != hashed("cuda")  # on a GPU it runs bf16
    assert hashed(seed=1) != base and hashed(learning_rate=0.05) != base


def test_two_workers_render_exactly_and_match_one_worker(clip: Path, reference, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    result = render(clip, tmp_path / "out.mp4", CFG, JobOptions(workers=2, workdir=str(workdir), **JOB))
    assert result.chunks == 3 and result.rendered == 3
    recorded = json.loads((workdir / "plan.json").read_text())["settings_hash"]
    assert recorded == plan(clip, CFG, output=tmp_path / "out.mp4", workers=2, **JOB).settings_hash
    source, out = probe(clip), probe(result.output)
    assert out.frame_count == 40 and out.pts.tolist() == source.pts.tolist()
    assert (out.width, out.height) == (96, 64) and [a.codec for a in out.audio] == ["aac"]
    frames = frames_of(result.output)
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))  # independent of worker count
    # the seam window (frames 11–13: chunk 1 owns 14–24) is a crossfade of the two chunks' versions of them
    side_a = frames_of(workdir / "chunks" / "00000.tail.mkv")  # lossless FFV1 intermediates
    side_b = frames_of(workdir / "chunks" / "00001.lead.mkv")
    w = crossfade_weights(3)
    source = list(read_frames(clip, 11, 14))
    for j in range(3):
        a, b = side_a[j].astype(np.float32), side_b[j].astype(np.float32)
        got = frames[11 + j].astype(np.float32)
        expected = mix_residuals(source[j], side_a[j], side_b[j], float(w[j])).astype(np.float32)
        # RGB → YUV 4:2:0 costs about a level per pixel; the unmixed sides are much farther away
        assert np.abs(got - expected).mean() < 1.5, j
        if j == 1:  # the middle frame is half and half: far from either side alone …
            assert np.abs(got - expected).mean() < 0.6 * min(np.abs(got - a).mean(), np.abs(got - b).mean())
            # … and as strong as the two sides are, where a plain blend of two dreams is weaker
            strength = [np.abs(x - source[j].astype(np.float32)).mean() for x in (a, b, expected)]
            plain = np.abs(0.5 * (a + b) - source[j]).mean()
            assert strength[2] == pytest.approx(0.5 * (strength[0] + strength[1]), rel=0.03) and plain < strength[2]
    assert not np.array_equal(side_a[1], side_b[1])  # the two chunks really dreamed it differently
    ledger = json.loads((workdir / "ledger.json").read_text())
    assert sorted(ledger["chunks"]) == ["00000", "00001", "00002"] and sorted(ledger["windows"]) == ["00001", "00002"]


@pytest.mark.parametrize("codec,suffix,name", [("h265", ".mp4", "hevc"), ("prores", ".mov", "prores")])
def test_pieces_of_every_codec_join_by_remuxing(
    clip: Path, reference, tmp_path: Path, codec: str, suffix: str, name: str
) -> None:
    # 2 crossfades; the join does not depend on where the chunks were dreamed
    result = render(
        clip,
        tmp_path / f"out{suffix}",
        replace(CFG, encoding=replace(CFG.encoding, codec=codec)),
        workers=2,
        ray="never",
        **JOB,
    )
    source, out = probe(clip), probe(result.output)
    assert out.codec == name and out.frame_count == 40 and [a.codec for a in out.audio] == ["aac"]
    assert np.allclose(out.pts * float(out.time_base), source.pts * float(source.time_base), atol=0.001)
    frames = frames_of(result.output)
    if codec == "h265":  # crf 0: lossless, so exactly the H.264 reference's frames
        assert all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))
    else:  # ProRes 4:2:2 10-bit: within its own error of them (about 2 levels on these tiny, detailed
        # frames), the same in the crossfade windows (11–13, 22–24) as elsewhere: every frame in its place
        diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, reference, strict=True)]
        assert max(diffs) < 3.0 and max(diffs) < 1.5 * float(np.median(diffs)), diffs


def test_default_workdir_is_removed_and_frame_ranges_start_at_zero(clip: Path, tmp_path: Path) -> None:
    result = render(clip, tmp_path / "part.mp4", CFG, frame_range=(5, 29), ray="never", **JOB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.mp4"]  # no hidden work dir left
    source, out = probe(clip), probe(result.output)
    assert out.frame_count == 24 and out.pts.tolist() == (source.pts[5:29] - source.pts[5]).tolist()
    assert len(out.audio) == 1 and out.audio[0].duration == pytest.approx(out.duration, abs=0.05)  # that span's sound
    first_audio = _first_audio_seconds(result.output)
    assert 0 <= first_audio < 0.05  # the sound starts with the picture, at 0
    kept = render(clip, tmp_path / "kept.mp4", CFG, frame_range=(5, 29), keep_source_time=True, ray="never", **JOB)
    assert probe(kept.output).pts.tolist() == source.pts[5:29].tolist()
    assert _first_audio_seconds(kept.output) == pytest.approx(float(source.pts[5] * source.time_base), abs=0.05)


def _first_audio_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packet = next(p for p in container.demux(stream) if p.size)
        return float(packet.pts * stream.time_base)


def test_a_worker_dying_mid_chunk_costs_only_that_chunk(clip: Path, reference, tmp_path: Path) -> None:
    fault = Fault(chunk=1, at_frame=4, attempts=(0,), kind="exit")
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workers=2, faults=(fault,), **JOB)
    result = job.result(timeout=600)
    # the fault fired (chunk 1 took a second attempt) and nothing else was redone
    assert [(c.index, c.state, c.attempts) for c in job.chunks()] == [(0, "done", 1), (1, "done", 2), (2, "done", 1)]
    assert result.rendered == 3
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(result.output), reference, strict=True))


def test_a_chunk_failing_every_time_fails_the_job(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(ChunkFailed) as err:
        testing.render(clip, out, CFG, workers=2, max_attempts=2, faults=(Fault(chunk=2, at_frame=1),), **JOB)
    assert err.value.index == 2 and err.value.frames == (25, 40) and err.value.attempts == 2
    assert "injected fault" in err.value.cause
    assert isinstance(err.value, JobError) and err.value.hint is None  # one except clause catches a failed job
    assert not out.exists()


def test_work_directory_guards(clip: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    here = dict(JOB, ray="never")  # the guards are the job's, wherever it runs
    render(clip, tmp_path / "a.mp4", CFG, workdir=str(workdir), frame_range=(0, 12), **here)
    with pytest.raises(JobError, match="--resume"):
        render(clip, tmp_path / "a.mp4", CFG, workdir=str(workdir), frame_range=(0, 12), **here)
    other = RenderConfig(dream=CFG.dream, decay=0.5, encoding=Encoding(crf=0, preset="ultrafast"))
    with pytest.raises(JobError, match=r"holds another render; it differs in: decay \(0.9 then, 0.5 now\)"):
        render(clip, tmp_path / "a.mp4", other, workdir=str(workdir), frame_range=(0, 12), resume=True, **here)


def test_job_api_and_cancel(clip: Path, tmp_path: Path) -> None:
    held = gate(tmp_path / "never", chunk=2)  # the job cannot end before the cancel (tests.engine.gated)
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workers=1, workdir=str(tmp_path / "w"), faults=(held,), **JOB)
    while not any(c.state == "done" for c in job.chunks()):
        assert job.status() in ("starting", "running")
        time.sleep(0.1)
    done, total = job.progress()
    assert total == 46 and 0 < done <= total
    job.cancel()
    with pytest.raises(JobCancelled):
        job.result(timeout=60)
    assert job.status() == "cancelled" and not (tmp_path / "out.mp4").exists()
    finished = json.loads((tmp_path / "w" / "ledger.json").read_text())["chunks"]
    assert finished  # what was done is kept for a resume


def test_resume_after_the_driver_is_killed(clip: Path, reference, tmp_path: Path) -> None:
    workdir, out = tmp_path / "work", tmp_path / "out.mp4"
    script = (  # its last chunk held: the driver cannot finish before it is killed (tests.engine.gated)
        "import sys; from distdream.engine import testing; from tests.engine.test_job import CFG, JOB;"
        "from tests.engine.gated import gate;"
        f"testing.render({str(clip)!r}, {str(out)!r}, CFG, workers=1, workdir={str(workdir)!r}, ray='never', "
        f"faults=(gate({str(tmp_path / 'never')!r}, 2),), **JOB)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ledger.exists() and json.loads(ledger.read_text())["chunks"]:
            break
        time.sleep(0.05)
    # the driver, mid-job: no exit handler runs, the lock stays behind (a Ray it started dies with
    # it too: tests/engine/test_signals.py)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = json.loads(ledger.read_text())["chunks"]
    assert 1 <= len(finished) < 3 and not out.exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in (workdir / "chunks").glob(f"{min(finished)}.*.mp4")}
    result = render(clip, out, CFG, workers=1, workdir=str(workdir), resume=True, ray="never", **JOB)
    assert result.rendered == 3 - len(finished)  # only what was missing
    assert {p.name: p.stat().st_mtime_ns for p in (workdir / "chunks").glob(f"{min(finished)}.*.mp4")} == stamps
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), reference, strict=True))


def test_ctrl_c_stops_cleanly_and_keeps_finished_chunks(clip: Path, tmp_path: Path) -> None:
    workdir, out = tmp_path / "work", tmp_path / "out.mp4"
    cmd = [
        "render",
        str(clip),
        "-o",
        str(out),
        "--workdir",
        str(workdir),
        "--workers",
        "1",
        "--chunk-frames",
        "12",
        "--overlap",
        "3",
        "--num-iterations",
        "2",
        "--num-octaves",
        "2",
        "--dream-layers",
        "_blocks.5",
        "-q",
    ]
    # Ctrl-C's default action even where this suite runs with SIGINT ignored (a background job of a
    # non-interactive shell inherits that, and Python then installs no KeyboardInterrupt handler);
    # the last chunk held, so the render cannot end before the Ctrl-C (tests.engine.gated)
    proc = subprocess.Popen(
        [*command(gate(tmp_path / "never", 2)), *cmd, "--ray", "never"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    ledger = workdir / "ledger.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (ledger.exists() and json.loads(ledger.read_text())["chunks"]):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    assert "--resume" in hint and hint.count(str(out)) == 1 and "--output" not in hint, hint
    assert json.loads(ledger.read_text())["chunks"] and not out.exists()


def test_handoffs_render_each_shot_exactly_as_one_chunk_would(tmp_path: Path) -> None:
    """Shot-aware chunks: boundaries on the cuts, handoffs inside the shots, 2 workers, lossless —
    the output equals each shot rendered alone as one chunk, pixel for pixel."""
    from distdream.samples import sample_photo

    shots = [
        list(pan_frames(40, 96, 64))[:14],
        list(pan_frames(40, 96, 64, photo=sample_photo("coffee")))[:16],
        list(pan_frames(40, 96, 64, photo=sample_photo("chelsea")))[:12],
    ]
    clip = write_clip(tmp_path / "cuts.mp4", [f for shot in shots for f in shot], audio=None)
    p = plan(clip, CFG, chunk_frames=5, overlap=2, workers=2)
    assert {c.start for c in p.chunks if c.begins == "cut"} == {14, 30}  # found by the scan (here: one slice)
    # a long video's scan is split over Ray tasks, each from one frame before its slice: the
    # same cuts, also where one falls on a slice's first frame (14: slices 0–7, 6–14, 13–21 …)
    from distdream.engine.planning import find_cuts

    options = JobOptions(chunk_frames=5, overlap=2)
    assert find_cuts(probe(clip), CFG, options, slice_frames=7) == [14, 30]
    assert [c.begins for c in p.chunks].count("handoff") == len(p.chunks) - 3 > 0
    assert p.parallelism == pytest.approx(42 / 16)  # three chains; the longest is the 16-frame shot
    job = submit(clip, tmp_path / "out.mp4", CFG, chunk_frames=5, overlap=2, workers=2)
    result = job.result(timeout=600)
    assert result.chunks == len(p.chunks) and result.lead_in_overhead == 0
    chunked = frames_of(result.output)
    # each shot as one chunk: chunks longer than the clip, so the cuts alone bound them (a cut
    # restarts the dream as the start of a render does; a chunk's seed depends on its start only)
    whole = render(clip, tmp_path / "shots.mp4", CFG, chunk_frames=1000, overlap=0, workers=1, ray="never")
    assert whole.chunks == 3
    alone = frames_of(whole.output)
    assert len(chunked) == len(alone) == 42
    assert all(np.array_equal(x, y) for x, y in zip(chunked, alone, strict=True))
    # and a handoff is not a restart: a chunk's first frame carries its predecessor's dream
    restarted = render(
        clip, tmp_path / "restart.mp4", CFG, chunk_frames=5, overlap=2, workers=2, seams="crossfade", ray="never"
    )
    assert not all(np.array_equal(x, y) for x, y in zip(frames_of(restarted.output), alone, strict=True))


def test_a_worker_ray_cannot_reach_gets_its_chunk_again_then_is_replaced(clip: Path, reference, tmp_path: Path) -> None:
    """ActorUnavailableError is Ray's word for a live actor it cannot reach for now: not a death
    (the driver would wait forever for a restart that never comes), but a retry; twice in a row,
    and the worker is restarted."""
    fault = Fault(chunk=1, at_frame=2, kind="unavailable", attempts=(0, 1))
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workers=1, faults=(fault,), **JOB)
    result = job.result(timeout=600)
    assert [c.attempts for c in job.chunks()] == [1, 3, 1]
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(result.output), reference, strict=True))


def test_a_worker_no_node_can_host_fails_in_seconds_naming_what_the_cluster_has(clip: Path, tmp_path: Path) -> None:
    says = (
        r"no worker can start: each asks for 1 GPU and 1 CPU and no node has that \(the cluster has 0 GPUs, "
        r"2 CPUs on 1 node\)"
    )
    with pytest.raises(JobError, match=says + "; ask for less"):
        render(clip, tmp_path / "out.mp4", CFG, gpus_per_worker=1, workdir=str(tmp_path / "w"), **JOB)
    # where nodes may still come (an autoscaling cluster): a bounded wait, and it says so
    job = submit(
        clip,
        tmp_path / "out.mp4",
        CFG,
        gpus_per_worker=1,
        resource_wait=2,
        workdir=str(tmp_path / "w"),
        resume=True,
        **JOB,
    )
    seen = set()
    while not job.wait(0.05):
        seen.add(job.waiting)
    with pytest.raises(JobError, match=says + r", waited 2 s"):
        job.result()
    assert "waiting for 1 GPU and 1 CPU on one node: 0 s of 2" in seen
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "w" / "lock.json").exists()
