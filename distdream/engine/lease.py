"""A lease on a path: one job at a time owns a work directory (or an image-sequence output).

The lease is a small file or object (``lock.json``: host, pid, token) whose *modification time*
is its heartbeat, renewed every ``renew_every`` seconds by a thread of the owner. Everything about
it is decided by the storage, never by a driver's clock or by a check-then-write:

- **taken atomically**: locally a hard link of a finished temp file (fails if the name exists, so
  no one ever sees a half-written lock); on S3 a put with ``If-None-Match: *``;
- **aged by the storage's clock**: the lock's mtime (``LastModified``) against the storage's own
  "now" (a fresh probe file's mtime, or the server's ``Date``), with a ``skew`` margin; a lock
  of a process that no longer exists on this host is stale at once;
- **taken over atomically**: locally by the one racer that makes a hard link ``.claim`` to the
  lock, and only while it is still the very file judged stale (same inode and mtime), by a rename
  over it (the name is never free); on S3 by a put with ``If-Match`` of the stale lock's ETag;
- **fenced**: a renewal that finds the lock gone or replaced, or no successful renewal for half
  the lease, marks the lease lost (:attr:`Lease.lost`); its job stops writing and says why.

Object stores without a real conditional create (checked per backend, and for S3 by a probe of
the server) are refused unless the user names their protocol in ``unsafe_ok``. No Ray here.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import storage
from ..errors import JobError

__all__ = ["Lease", "Stamp"]


@dataclass(frozen=True)
class Stamp:
    """What a lock is, as the storage says: its owner record, its version (inode or ETag), its
    modification time and the storage's "now", both in the storage's seconds."""

    record: dict[str, Any]
    version: str
    mtime: float
    now: float

    @property
    def age(self) -> float:
        return self.now - self.mtime


def _record(text: str, path: str, what: str) -> dict[str, Any]:
    """The owner record of a lock, or a one-line :class:`JobError` for a malformed one."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    ok = (isinstance(data, dict) and isinstance(data.get("token"), str) and isinstance(data.get("host"), str)
          and isinstance(data.get("pid"), int) and not isinstance(data.get("pid"), bool))
    if not ok:
        raise JobError(f"{path} is not a distdream lock ({text[:60]!r}); if no job is using {what}, remove the file "
                       "and start again")
    return data


def _precondition_failed(exc: BaseException) -> bool:
    if isinstance(exc, FileExistsError):
        return True
    cause = exc.__cause__ or exc
    response = getattr(cause, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "PreconditionFailed" or status == 412


class _Local:
    """A lock file on a local or shared filesystem (POSIX hard links and renames)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(path) or "."
        self.fd: int | None = None  # our lock's inode, held open: renewals touch it whatever its name

    def _temp(self, text: str) -> str:
        fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=self.folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return tmp

    def _now(self) -> float:
        tmp = self._temp("")
        try:
            return os.stat(tmp).st_mtime
        finally:
            os.unlink(tmp)

    def read(self, what: str) -> Stamp | None:
        try:
            with open(self.path) as fh:
                st = os.fstat(fh.fileno())
                text = fh.read()
        except FileNotFoundError:
            return None
        return Stamp(_record(text, self.path, what), f"{st.st_ino}:{st.st_mtime_ns}", st.st_mtime, self._now())

    def create(self, record: dict[str, Any]) -> bool:
        tmp = self._temp(json.dumps(record))
        try:
            os.link(tmp, self.path)  # atomic, and fails if the name exists
            self.fd = os.open(tmp, os.O_RDONLY)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def take_over(self, stale: Stamp, record: dict[str, Any]) -> bool:
        """Replace the stale lock, if it is still the very file judged stale. A hard link named
        ``.claim`` to the lock is the right to replace it (one racer makes it, the others back
        off); the replacement is a rename over the old lock, so the name is never free."""
        claim = f"{self.path}.claim"
        try:
            os.link(self.path, claim)
        except FileExistsError:
            self._clear_dead_claim(claim)
            return False
        except FileNotFoundError:
            return False  # released meanwhile: try to create it
        try:
            st = os.stat(claim)
            if f"{st.st_ino}:{st.st_mtime_ns}" != stale.version:  # renewed or replaced since it was judged
                return False
            tmp = self._temp(json.dumps(record))
            fd = os.open(tmp, os.O_RDONLY)
            os.rename(tmp, self.path)
            self.fd = fd
            return True
        finally:
            os.unlink(claim)

    def _clear_dead_claim(self, claim: str) -> None:
        """A claim is held for microseconds; one older than a minute was left by a killed racer."""
        try:
            if self._now() - os.stat(claim).st_ctime > 60:
                os.unlink(claim)
        except FileNotFoundError:
            pass

    def renew(self) -> bool:
        """Touch our inode; whether it is still the lock (a takeover renames it aside)."""
        assert self.fd is not None
        os.utime(self.fd)
        try:
            return os.stat(self.path).st_ino == os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None


class _Objects:
    """A lock object, through fsspec: what every object store can do (read, stat, put, delete)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fs, self.key = storage.filesystem(path)
        self.record: dict[str, Any] = {}
        self.renewals = 0

    def _body(self) -> bytes:
        self.renewals += 1  # every renewal changes the content, so its version (ETag) too
        return json.dumps({**self.record, "renewal": self.renewals}).encode()

    def _stat(self, key: str) -> tuple[str, float]:
        self.fs.invalidate_cache(key)  # another job's writes are not in this process's listing cache
        info = self.fs.info(key)
        version = info.get("ETag") or info.get("etag") or info.get("generation") or info.get("md5Hash") or ""
        stamp = info.get("LastModified") or info.get("updated") or info.get("mtime") or info.get("last_modified")
        return str(version), stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp or 0)

    def _now(self) -> float:
        clock = f"{self.key}.{uuid.uuid4().hex}.clock"
        self.fs.pipe_file(clock, b"")
        try:
            return self._stat(clock)[1]
        finally:
            self.fs.rm_file(clock)

    def read(self, what: str) -> Stamp | None:
        try:
            version, mtime = self._stat(self.key)
            text = self.fs.cat_file(self.key).decode(errors="replace")
        except FileNotFoundError:
            return None
        return Stamp(_record(text, self.path, what), version, mtime, self._now())

    def mine(self) -> bool:
        try:
            return json.loads(self.fs.cat_file(self.key)).get("token") == self.record.get("token")
        except (FileNotFoundError, ValueError):
            return False


class _S3(_Objects):
    """A lock object on S3 or an S3-compatible server, by conditional puts (``If-None-Match``,
    ``If-Match``); :meth:`conditional` says whether the server honours them."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.bucket, self.object, _ = self.fs.split_path(self.key)
        self.etag: str | None = None

    def _put(self, key: str, body: bytes, **condition: str) -> str:
        return str(self.fs.call_s3("put_object", Bucket=self.bucket, Key=key, Body=body, **condition)["ETag"])

    def read(self, what: str) -> Stamp | None:
        from email.utils import parsedate_to_datetime

        try:
            head = self.fs.call_s3("head_object", Bucket=self.bucket, Key=self.object)
            text = self.fs.cat_file(self.key).decode(errors="replace")
        except FileNotFoundError:
            return None
        date = head.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date).timestamp() if date else self._now()  # the server's clock
        return Stamp(_record(text, self.path, what), str(head["ETag"]), head["LastModified"].timestamp(), now)

    def _try(self, body: bytes, **condition: str) -> bool:
        try:
            self.etag = self._put(self.object, body, **condition)
            return True
        except OSError as exc:
            if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                return False
            raise

    def conditional(self) -> bool:
        probe = f"{self.object}.{uuid.uuid4().hex}.probe"
        try:
            self._put(probe, b"1", IfNoneMatch="*")
            for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"0"'}):
                try:
                    self._put(probe, b"2", **condition)
                    return False  # accepted: the server ignores the condition
                except OSError as exc:
                    if not _precondition_failed(exc):
                        raise
            return True
        finally:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=probe)

    def create(self, record: dict[str, Any]) -> bool:
        self.record = record
        return self._try(self._body(), IfNoneMatch="*")

    def take_over(self, stale: Stamp, record: dict[str, Any]) -> bool:
        self.record = record
        return self._try(self._body(), IfMatch=stale.version)

    def renew(self) -> bool:
        assert self.etag is not None
        return self._try(self._body(), IfMatch=self.etag)

    def release(self) -> None:
        if self.etag is not None:
            try:
                self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.object, IfMatch=self.etag)
            except OSError:
                pass  # gone, or not ours any more
            self.etag = None


class _Racy(_Objects):
    """A lock on an object store without conditional writes, opted into by name: check, then write."""

    def create(self, record: dict[str, Any]) -> bool:
        if self.fs.exists(self.key):
            return False
        self.record = record
        self.fs.pipe_file(self.key, self._body())
        return True

    def take_over(self, stale: Stamp, record: dict[str, Any]) -> bool:
        self.record = record
        self.fs.pipe_file(self.key, self._body())
        return True

    def renew(self) -> bool:
        if not self.mine():
            return False
        self.fs.pipe_file(self.key, self._body())
        return True

    def release(self) -> None:
        if self.record and self.mine():
            self.fs.rm_file(self.key)
        self.record = {}


class Lease:
    """One owner at a time for ``path``; see the module docstring.

    ``what`` names what the lease guards in messages ("work directory /w"). ``on_lost`` is called
    (from the renewal thread) with the reason once the lease is lost.
    """

    def __init__(self, path: str, what: str, *, renew_every: float = 10.0, lifetime: float = 60.0,
                 skew: float = 5.0, unsafe_ok: tuple[str, ...] = (),
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.path, self.what = path, what
        self.renew_every, self.lifetime, self.skew = renew_every, lifetime, skew
        self.on_lost = on_lost
        self.token = uuid.uuid4().hex
        self.lost: str | None = None
        self._store = self._backend(path, unsafe_ok)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._releasing = threading.Lock()

    def _backend(self, path: str, unsafe_ok: tuple[str, ...]) -> Any:
        if not storage.is_uri(path):
            return _Local(path)
        protocol = path.split("://", 1)[0].lower()
        if protocol in ("s3", "s3a"):
            store = _S3(path)
            if store.conditional():
                return store
            if protocol in unsafe_ok:
                return _Racy(path)
            raise JobError(f"the object store of {self.what} ignores conditional writes (If-None-Match), so two "
                           f"jobs could both take its lock; use a store that honours them, or accept the risk with "
                           f"--unsafe-lock {protocol}")
        if protocol in unsafe_ok:
            return _Racy(path)
        raise JobError(f"{self.what}: distdream cannot lock {protocol}:// storage atomically (it knows conditional "
                       f"writes of local filesystems and S3); use one of those, or accept the risk with "
                       f"--unsafe-lock {protocol}")

    def _record(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "lease_seconds": self.lifetime}

    def stale(self, stamp: Stamp) -> bool:
        """Whether the lock ``stamp`` describes has no living owner."""
        if stamp.age > self.lifetime + self.skew:
            return True
        if stamp.record.get("host") == socket.gethostname():  # a driver killed on this host
            try:
                os.kill(int(stamp.record["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, OverflowError, ValueError):
                return False
        return False

    def acquire(self) -> None:
        """Take the lease, or raise :class:`JobError` naming who holds it."""
        record = self._record()
        for attempt in range(20):
            if attempt:
                time.sleep(0.01 * attempt)  # another job is taking it right now: let it finish
            if self._store.create(record):
                return self._start()
            stamp = self._store.read(self.what)
            if stamp is None:
                continue  # released meanwhile
            if not self.stale(stamp):
                r = stamp.record
                raise JobError(f"{self.what} is in use by another job (host {r.get('host')}, pid {r.get('pid')}, "
                               f"renewed {max(stamp.age, 0):.0f} s ago); wait for it, stop it, or use another one")
            if self._store.take_over(stamp, record):
                return self._start()
        raise JobError(f"could not take the lock {self.path}: other jobs keep taking it")

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._renew, name="distdream-lease", daemon=True)
        self._thread.start()

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            if self.on_lost is not None:
                self.on_lost(why)

    def _renew(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.renew_every):
            try:
                if not self._store.renew():
                    return self._lose(f"another job took over the lock of {self.what}")
                last = time.monotonic()
            except OSError as exc:
                if time.monotonic() - last >= self.lifetime / 2:
                    return self._lose(f"could not renew the lock of {self.what} for {self.lifetime / 2:.0f} s "
                                      f"({exc.__class__.__name__}: {exc})")

    def check(self) -> None:
        """Raise :class:`JobError` if the lease was lost (the job must stop writing)."""
        if self.lost is not None:
            raise JobError(f"stopped: {self.lost}; finished chunks are kept, resume when the storage is healthy")

    def release(self) -> None:
        """Stop renewing and remove the lock if it is still ours (idempotent, from any thread)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._releasing:
            if self.lost is None:
                self._store.release()
