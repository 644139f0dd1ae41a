"""Where a lease's lock lives: the storage-specific halves of :class:`~.lease.Lease`.

Each store says what a lock is (:class:`Stamp`: owner, version, mtime and the storage's own
"now") and does four things atomically or not at all: create, take over a stale lock, renew, and
release. :class:`Local` uses POSIX hard links and renames; :class:`S3` conditional puts
(``If-None-Match``, ``If-Match``), after a probe shows the server honours them; :class:`Racy`
(any other object store, opted into by name) can only check, then write. No Ray here.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

from .. import storage
from ..errors import JobError

__all__ = ["Local", "Racy", "S3", "Stamp"]


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
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("token"), str)
        and isinstance(data.get("host"), str)
        and isinstance(data.get("pid"), int)
        and not isinstance(data.get("pid"), bool)
    )
    if not ok:
        raise JobError(
            f"{path} is not a distdream lock ({text[:60]!r}); if no job is using {what}, remove the file "
            "and start again"
        )
    return data


def _precondition_failed(exc: BaseException) -> bool:
    """Whether a conditional write lost: its condition failed (412), or it met another conditional
    write to the same key in flight (AWS answers 409 ConditionalRequestConflict): a lost race."""
    if isinstance(exc, FileExistsError):
        return True
    cause = exc.__cause__ or exc
    response = getattr(cause, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


class Local:
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
            with open(self.path, encoding="utf-8", errors="replace") as fh:  # damaged: a one-line error
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


class S3(_Objects):
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


class Racy(_Objects):
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
