"""Input, output and work directory on a real S3-compatible server (moto, on loopback)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import ray

from distdream import storage
from distdream.config import Encoding, RenderConfig
from distdream.engine import render, testing
from distdream.engine.faults import Fault
from distdream.engine.workdir import workdir_lease
from distdream.errors import ChunkFailed, JobError, OutputError, VideoError
from distdream.samples import pan_frames, write_clip
from distdream.video import probe, read_frames
from tests.conftest import own_ray, s3_server
from tests.engine.test_job import CFG

pytestmark = [pytest.mark.ray, pytest.mark.own_ray]  # Ray workers that see the S3 server's address

JOB = dict(chunk_frames=8, overlap=2, workers=2, scan_cuts=False, seams="crossfade")


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with a bucket, and Ray workers that see its address."""
    own_ray()
    with s3_server("films") as bucket:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # workers inherit its env
        yield bucket
        ray.shutdown()


@pytest.fixture(scope="module")
def clip(s3: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    local = write_clip(tmp_path_factory.mktemp("s3") / "clip.mp4", list(pan_frames(40, 96, 64))[:24], audio="aac")
    storage.put_file(local, f"{s3}/in/clip.mp4")
    return local, f"{s3}/in/clip.mp4"


def download(uri: str, tmp_path: Path) -> Path:
    local = tmp_path / storage.name_of(uri)
    local.write_bytes(storage.open_read(uri).read())
    return local


def test_render_from_and_to_object_storage(s3: str, clip, tmp_path: Path) -> None:
    local, uri = clip
    result = render(uri, f"{s3}/out/dream.mp4", CFG, **JOB)
    assert result.output == f"{s3}/out/dream.mp4" and result.chunks == 3
    out = probe(download(result.output, tmp_path))
    assert out.frame_count == 24 and out.pts.tolist() == probe(local).pts.tolist() and out.audio
    assert not storage.exists(f"{s3}/out/.dream.mp4.distdream/plan.json")  # default work dir cleaned up


def test_resume_from_a_work_directory_in_object_storage(s3: str, clip, tmp_path: Path) -> None:
    _, uri = clip
    workdir, out = f"{s3}/work/a", f"{s3}/out/resumed.mp4"
    with pytest.raises(ChunkFailed):
        testing.render(uri, out, CFG, workdir=workdir, max_attempts=1, faults=(Fault(chunk=2, at_frame=1),), **JOB)
    assert not storage.exists(out)
    finished = json.loads(storage.read_text(f"{workdir}/ledger.json"))["chunks"]
    assert finished and "00002" not in finished
    result = render(uri, out, CFG, workdir=workdir, resume=True, **JOB)
    assert result.rendered == 3 - len(finished)  # what the failed run finished came from the bucket
    assert len(list(read_frames(download(out, tmp_path)))) == 24
    other = RenderConfig(dream=CFG.dream, decay=0.5, encoding=Encoding(crf=0, preset="ultrafast"))
    with pytest.raises(JobError, match=r"holds another render; it differs in: decay"):
        render(uri, out, other, workdir=workdir, resume=True, **JOB)


def test_a_work_directory_in_a_bucket_is_locked_by_a_conditional_put(s3: str) -> None:
    workdir = f"{s3}/work/locked"
    first, second = workdir_lease(workdir), workdir_lease(workdir)
    first.acquire()
    try:
        with pytest.raises(JobError, match="is in use by another job"):
            second.acquire()  # the object exists: the If-None-Match put is refused
        assert json.loads(storage.read_text(f"{workdir}/lock.json"))["token"] == first.token
    finally:
        first.release()
    assert not storage.exists(f"{workdir}/lock.json")
    second.acquire()  # free again
    second.release()


def test_missing_bucket_and_missing_credentials(s3: str, clip, tmp_path: Path) -> None:
    _, uri = clip
    with pytest.raises(OutputError, match="bucket"):
        render(uri, "s3://no-such-bucket/out.mp4", CFG, **JOB)
    with pytest.raises(VideoError, match="does not exist"):
        probe("s3://films/in/nothing.mp4")
    import s3fs

    keys = {k: os.environ.pop(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(VideoError, match="credentials"):
            probe(uri)
    finally:
        os.environ.update(keys)
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_atomic_output_appears_whole_or_not_at_all(s3: str, tmp_path: Path, small_photo, where: str) -> None:
    from distdream.images import save_image

    final = tmp_path / "out.png" if where == "local" else f"{s3}/atomic/out.png"
    with pytest.raises(RuntimeError):
        with storage.atomic_output(final) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("interrupted")
    assert not storage.exists(final) and not tmp.exists()
    with storage.atomic_output(final) as tmp:
        tmp.write_bytes(b"whole")
    assert storage.read_bytes(final) == b"whole" and not tmp.exists()
    assert list(tmp_path.iterdir()) == ([tmp_path / "out.png"] if where == "local" else [])
    # an image written straight to a bucket, through the same path
    image = save_image(small_photo, f"{s3}/atomic/photo.png")
    assert storage.read_bytes(image)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_published_file_reaches_the_disk_before_its_name_does(tmp_path: Path, monkeypatch) -> None:
    """Data, then the rename, then the folder: a crash cannot leave a torn file under the final name."""
    import stat

    done: list[str] = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd: int) -> None:
        done.append("folder synced" if stat.S_ISDIR(os.fstat(fd).st_mode) else "data synced")
        fsync(fd)

    def logged_replace(a: str, b: str) -> None:
        done.append("renamed")
        replace(a, b)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    storage.write_text(str(tmp_path / "ledger.json"), "{}")
    assert done == ["data synced", "renamed", "folder synced"]
    assert (tmp_path / "ledger.json").read_text() == "{}"
