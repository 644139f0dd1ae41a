"""The lock as a lease: atomic takeover, the storage's clock, fencing, malformed locks, per-backend refusal.

Real files and real threads racing; a real S3-compatible server (moto) on loopback for the
conditional puts. No Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distdream.engine.lease import Lease, _pid_space
from distdream.errors import JobError
from tests.conftest import free_port, s3_server


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def write_lock(
    path: Path, *, host: str = "elsewhere", pid: int = 1, token: str = "theirs", age: float = 0.0, **more: str
) -> None:
    path.write_text(json.dumps({"host": host, "pid": pid, "token": token, **more}))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def here() -> dict[str, str]:
    """This process's kernel boot and PID namespace, as a lock records them."""
    boot, pids = _pid_space()
    return {"boot": boot, "pid_namespace": pids}


def holder(path: Path) -> str:
    return json.loads(path.read_text())["token"]


def race(leases: list[Lease]) -> list[Lease]:
    """The leases that were taken when each tried at once, on a thread of its own."""
    barrier, won = threading.Barrier(len(leases)), []

    def take(lease: Lease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            won.append(lease)
        except JobError:
            pass

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_a_live_lock_is_refused_naming_its_owner_and_a_released_one_is_free(tmp_path: Path) -> None:
    first, second = Lease(str(tmp_path / "lock.json"), "work directory w"), Lease(str(tmp_path / "lock.json"), "w2")
    first.acquire()
    with pytest.raises(JobError, match=rf"in use by another job \(host {socket.gethostname()}, pid {os.getpid()}"):
        second.acquire()
    first.release()
    assert not (tmp_path / "lock.json").exists()
    second.acquire()
    assert holder(tmp_path / "lock.json") == second.token
    second.release()


@pytest.mark.parametrize(
    ("age", "pid", "space", "taken"),
    [
        (600, 1, None, True),  # another host's lock, not renewed for ten minutes
        (5, 1, None, False),  # another host's lock renewed 5 s ago
        (0, None, "here", True),  # a lock of this host whose process is gone (a killed driver)
        # this host's name, but the pid is not one this process can see: another PID namespace (a
        # container with the host's name, `unshare --pid`), another boot (a second machine of that
        # name), or a lock that does not say: live until it ages
        (0, None, "other namespace", False),
        (0, None, "other boot", False),
        (0, None, "unsaid", False),
    ],
)
def test_staleness_is_the_lock_files_age_on_the_storage_or_a_dead_local_owner(
    tmp_path: Path, age: float, pid: int | None, space: str | None, taken: bool
) -> None:
    lock = tmp_path / "lock.json"
    more = {
        None: {},
        "here": here(),
        "other namespace": here() | {"pid_namespace": "pid:[1]"},
        "other boot": here() | {"boot": "another-boot"},
        "unsaid": {},
    }[space]
    host = socket.gethostname() if pid is None else "elsewhere"
    write_lock(lock, host=host, pid=pid or dead_pid(), age=age, **more)
    lease = Lease(str(lock), "w")
    if taken:
        lease.acquire()
        assert holder(lock) == lease.token
        lease.release()
    else:
        with pytest.raises(JobError, match=f"host {host}"):
            lease.acquire()
        assert holder(lock) == "theirs"


def test_a_driver_whose_clock_runs_ahead_does_not_take_a_live_lock(tmp_path: Path, monkeypatch) -> None:
    """Age comes from the storage (file mtimes), not from this process's clock."""
    lock = tmp_path / "lock.json"
    write_lock(lock, age=1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)  # this driver is two minutes ahead
    with pytest.raises(JobError, match="in use by another job"):
        Lease(str(lock), "w").acquire()
    assert holder(lock) == "theirs"


def test_two_drivers_racing_for_one_stale_lock_do_not_both_take_it(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    for _ in range(20):  # many rounds: a check-then-write race would show
        write_lock(lock, age=600)
        won = race([Lease(str(lock), "w", renew_every=60) for _ in range(4)])
        assert len(won) == 1 and holder(lock) == won[0].token
        won[0].release()
        assert sorted(p.name for p in tmp_path.iterdir()) == []  # no lock, no temp, nothing set aside


def test_a_job_whose_lock_was_taken_over_learns_it_at_its_next_renewal(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    told: list[str] = []
    mine = Lease(str(lock), "work directory w", renew_every=0.1, on_lost=told.append)
    mine.acquire()
    os.rename(lock, tmp_path / "elsewhere.json")  # what another job's takeover does to a stale lock
    write_lock(lock)
    deadline = time.monotonic() + 10
    while mine.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert told == ["another job took over the lock of work directory w"]
    with pytest.raises(JobError, match="stopped: another job took over"):
        mine.check()
    mine.release()
    assert holder(lock) == "theirs"  # the new owner's lock is not removed


def test_a_job_that_cannot_renew_for_half_its_lease_stops(tmp_path: Path, monkeypatch) -> None:
    lock = tmp_path / "lock.json"
    lease = Lease(str(lock), "w", renew_every=0.05, lifetime=0.4)
    lease.acquire()

    def failing(*_: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "utime", failing)  # the storage stops answering
    deadline = time.monotonic() + 10
    while lease.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.lost is not None and "could not renew the lock of w for 0 s" in lease.lost
    assert "Input/output error" in lease.lost
    lease.release()


def test_renewal_moves_the_lock_files_mtime(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    lease = Lease(str(lock), "w", renew_every=0.05)
    lease.acquire()
    stamp = time.time() - 300
    os.utime(lock, (stamp, stamp))
    deadline = time.monotonic() + 10  # a renewal is due every 0.05 s; a busy machine may delay a few
    while lock.stat().st_mtime == stamp and time.monotonic() < deadline:
        time.sleep(0.05)
    assert time.time() - lock.stat().st_mtime < 15
    lease.release()


@pytest.mark.parametrize("text", ['{"host": "h", "pid": 1, "heartbeat": null}', "{not json", '{"token": 5}', "", "[]"])
def test_a_malformed_lock_is_a_one_line_error(tmp_path: Path, text: str) -> None:
    lock = tmp_path / "lock.json"
    lock.write_text(text)
    with pytest.raises(JobError, match=r"is not a distdream lock .*remove the file") as err:
        Lease(str(lock), "work directory w").acquire()
    assert "\n" not in str(err.value) and lock.read_text() == text


def test_a_lock_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    lock.write_bytes(b"\xff\xfe{not a lock")
    with pytest.raises(JobError, match=r"is not a distdream lock .*remove the file") as err:
        Lease(str(lock), "work directory w").acquire()
    assert "\n" not in str(err.value) and lock.read_bytes() == b"\xff\xfe{not a lock"


def test_storage_without_conditional_writes_is_refused_unless_named() -> None:
    with pytest.raises(JobError, match="cannot lock memory:// storage atomically.*--unsafe-lock memory"):
        Lease("memory://bucket/w/lock.json", "work directory memory://bucket/w")
    lease = Lease("memory://bucket/w/lock.json", "w", unsafe_ok=("memory",))
    lease.acquire()
    with pytest.raises(JobError, match="in use by another job"):
        Lease("memory://bucket/w/lock.json", "w", unsafe_ok=("memory",)).acquire()
    lease.release()


# --- object storage: conditional puts on a real S3-compatible server -----------------------------------


@pytest.fixture(scope="module")
def bucket():
    with s3_server("leases") as uri:
        yield uri


def test_on_s3_a_stale_lock_is_taken_over_by_one_of_three_racers(bucket: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    for round_ in range(3):
        key = f"race{round_}/lock.json"
        # stale at once: its owner was a process of this host that is gone
        s3.put_object(
            Bucket="leases",
            Key=key,
            Body=json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "token": "old", **here()}).encode(),
        )
        won = race([Lease(f"{bucket}/{key}", "w", renew_every=60) for _ in range(3)])
        body = json.loads(s3.get_object(Bucket="leases", Key=key)["Body"].read())
        assert len(won) == 1 and body["token"] == won[0].token
        won[0].release()


def test_on_s3_a_driver_whose_clock_runs_ahead_does_not_take_a_live_lock(monkeypatch) -> None:
    """Age comes from the server (``LastModified`` against its ``Date``), not from this process's
    clock: the server, a process of its own, runs on the real clock, this driver two minutes ahead."""
    import boto3
    import s3fs

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            monkeypatch.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()
        s3 = boto3.client("s3")
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.create_bucket(Bucket="clocks")
                break
            except Exception:
                assert server.poll() is None and time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        body = json.dumps({"host": "elsewhere", "pid": 1, "token": "theirs"}).encode()
        s3.put_object(Bucket="clocks", Key="ahead/lock.json", Body=body)  # renewed just now
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 120)
        with pytest.raises(JobError, match="in use by another job"):
            Lease("s3://clocks/ahead/lock.json", "w").acquire()
        monkeypatch.setattr(time, "time", real)
        assert json.loads(s3.get_object(Bucket="clocks", Key="ahead/lock.json")["Body"].read())["token"] == "theirs"
    finally:
        server.terminate()
        server.wait(10)
        s3fs.S3FileSystem.clear_instance_cache()


def test_on_s3_a_conflicting_conditional_write_is_a_lost_race(bucket: str, monkeypatch) -> None:
    """AWS answers two conditional puts in flight on one key with 409 ConditionalRequestConflict
    (moto does not): the loser sees the winner's lock in use, not an I/O error."""
    from botocore.exceptions import ClientError

    from distdream.engine.lockfiles import S3

    winner = Lease(f"{bucket}/conflict/lock.json", "w", renew_every=60)
    winner.acquire()
    put = S3._put

    def conflicting(self: S3, key: str, body: bytes, **condition: str) -> str:
        if condition.get("IfNoneMatch") == "*" and key.endswith("conflict/lock.json"):
            error = {"Error": {"Code": "ConditionalRequestConflict"}, "ResponseMetadata": {"HTTPStatusCode": 409}}
            raise OSError("conflict") from ClientError(error, "PutObject")  # as s3fs translates it
        return put(self, key, body, **condition)

    monkeypatch.setattr(S3, "_put", conflicting)
    with pytest.raises(JobError, match="in use by another job"):
        Lease(f"{bucket}/conflict/lock.json", "w").acquire()
    winner.release()


def test_on_s3_a_fenced_owner_learns_it_and_a_live_lock_holds(bucket: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    mine = Lease(f"{bucket}/fence/lock.json", "w", renew_every=0.1)
    mine.acquire()
    with pytest.raises(JobError, match="in use by another job"):  # renewed: the server's clock says it is live
        Lease(f"{bucket}/fence/lock.json", "w").acquire()
    s3.put_object(
        Bucket="leases", Key="fence/lock.json", Body=json.dumps({"host": "h", "pid": 2, "token": "usurper"}).encode()
    )
    deadline = time.monotonic() + 10
    while mine.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine.lost == "another job took over the lock of w"
    mine.release()  # a conditional delete: the usurper's lock stays
    assert json.loads(s3.get_object(Bucket="leases", Key="fence/lock.json")["Body"].read())["token"] == "usurper"


def test_a_holder_whose_renewal_hangs_loses_its_lease(tmp_path: Path, monkeypatch) -> None:
    """A hard mount that never answers: the renewal is given up, the lease lost, the job told."""
    lock = tmp_path / "lock.json"
    told: list[str] = []
    lease = Lease(str(lock), "work directory w", renew_every=0.05, lifetime=0.6, on_lost=told.append)
    lease.acquire()
    hung = threading.Event()
    monkeypatch.setattr(lease._store, "renew", lambda: hung.wait())  # blocks until the test ends
    deadline = time.monotonic() + 10
    while not told and time.monotonic() < deadline:
        time.sleep(0.05)
    assert told and "could not renew the lock of work directory w" in told[0] and "no answer" in told[0]
    with pytest.raises(JobError, match="stopped: could not renew"):
        lease.check()
    hung.set()
    lease.release()


def test_a_holder_that_was_paused_trusts_its_lease_no_more(tmp_path: Path, monkeypatch) -> None:
    """Stopped for longer than half the lease (SIGSTOP, a frozen VM): before it writes again, its
    check fails on the clock alone, whatever its renewal thread has or has not seen yet."""
    lock = tmp_path / "lock.json"
    lease = Lease(str(lock), "w", renew_every=60, lifetime=60)  # no renewal runs during the test
    lease.acquire()
    lease.check()  # fresh: trusted
    now = Lease._clock()
    monkeypatch.setattr(Lease, "_clock", staticmethod(lambda: now + 31))  # 31 s later, nothing renewed
    with pytest.raises(JobError, match="was not renewed for 31 s"):
        lease.check()
    lease.release()
    assert lock.exists()  # a lost lease is not ours to remove


PAUSED_HOLDER = """
import sys, time
from pathlib import Path
from distdream.engine.lease import Lease, _pid_space
from distdream.errors import JobError
lock, go = sys.argv[1], Path(sys.argv[2])
lease = Lease(lock, "w", renew_every=0.1, lifetime=1.0, skew=0.1)
lease.acquire()
print("holding", flush=True)
while not go.exists():
    time.sleep(0.01)
try:
    lease.check()
    print("would publish", flush=True)
except JobError as exc:
    print("lost:", exc, flush=True)
"""


def test_a_real_stopped_holder_does_not_publish_after_another_job_took_over(tmp_path: Path) -> None:
    lock, go = tmp_path / "lock.json", tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_HOLDER, str(lock), str(go)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 30
        other = Lease(str(lock), "w", lifetime=1.0, skew=0.1)
        while True:  # stale once older than the whole lease: then the other job takes it over
            try:
                other.acquire()
                break
            except JobError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        go.touch()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, _ = proc.communicate(timeout=30)
    assert out.startswith("lost:"), out
    assert holder(lock) == other.token  # the new owner's lock stands
    other.release()


NAMESPACED_HOLDER = """
import sys, time
from distdream.engine.lease import Lease
lease = Lease(sys.argv[1], "w", renew_every=0.2)
lease.acquire()
print("holding", flush=True)
time.sleep(60)
"""


def test_a_live_holder_in_another_pid_namespace_keeps_its_lock(tmp_path: Path) -> None:
    """A job in a container with the host's name (here `unshare --pid`): its pid means nothing
    out here, so its lock is judged by age alone, and it is live."""
    lock = tmp_path / "lock.json"
    # a user namespace too: no root needed
    cmd = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", sys.executable, "-c"]
    cmd += [NAMESPACED_HOLDER, str(lock)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding", proc.stderr
        record = json.loads(lock.read_text())
        assert record["host"] == socket.gethostname() and record["pid_namespace"] != here()["pid_namespace"]
        with pytest.raises(JobError, match="in use by another job"):
            Lease(str(lock), "w").acquire()
        assert holder(lock) == record["token"]
    finally:
        proc.kill()
        proc.wait()
