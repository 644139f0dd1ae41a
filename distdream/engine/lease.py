"""A lease on a path: one job at a time owns a work directory (or an image-sequence output).

The lease is a small file or object (``lock.json``: host, pid, token) whose *modification time*
is its heartbeat, renewed every ``renew_every`` seconds by a thread of the owner. Everything about
it is decided by the storage, never by a driver's clock or by a check-then-write:

- **taken atomically**: locally a hard link of a finished temp file (fails if the name exists, so
  no one ever sees a half-written lock); on S3 a put with ``If-None-Match: *``;
- **aged by the storage's clock**: the lock's mtime (``LastModified``) against the storage's own
  "now" (a fresh probe file's mtime, or the server's ``Date``), with a ``skew`` margin; a lock
  of a process that no longer exists is stale at once, but only where its pid certainly names
  a process here: the same host name, kernel boot and PID namespace (a container with the host's
  name, or a second machine of that name, sees other pids: there only age counts);
- **taken over atomically**: locally by the one racer that makes a hard link ``.claim`` to the
  lock, and only while it is still the very file judged stale (same inode and mtime), by a rename
  over it (the name is never free); on S3 by a put with ``If-Match`` of the stale lock's ETag;
- **fenced, failing closed**: the holder trusts its lease only while its last *successful*
  renewal is younger than half the lease, on this machine's clock of elapsed time (which runs on
  while the process is stopped or the machine suspended). A renewal that finds the lock gone or
  replaced, one that does not come back within half the lease (a hung mount), or a check after a
  pause finds the lease lost (:attr:`Lease.lost`); its job checks before it records a piece and
  before it publishes, stops writing and says why. Another job may take a lock over only once it
  is older than the whole lease, so the two never both trust it.

Object stores without a real conditional create (checked per backend, and for S3 by a probe of
the server) are refused unless the user names their protocol in ``unsafe_ok``. No Ray here.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import storage
from ..errors import JobError
from .lockfiles import S3, Local, Racy, Stamp

__all__ = ["Lease"]


def _pid_space() -> tuple[str, str]:
    """This kernel's boot id and this process's PID namespace ("" where the system does not say):
    two processes whose pids can be compared share both."""

    def read(how: Callable[[], str]) -> str:
        try:
            return how().strip()
        except OSError:
            return ""

    boot = read(lambda: Path("/proc/sys/kernel/random/boot_id").read_text())
    return boot, read(lambda: os.readlink("/proc/self/ns/pid"))


class Lease:
    """One owner at a time for ``path``; see the module docstring.

    ``what`` names what the lease guards in messages ("work directory /w"). ``on_lost`` is called
    (from the renewal thread) with the reason once the lease is lost.
    """

    def __init__(
        self,
        path: str,
        what: str,
        *,
        renew_every: float = 10.0,
        lifetime: float = 60.0,
        skew: float = 5.0,
        unsafe_ok: tuple[str, ...] = (),
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.path, self.what = path, what
        self.renew_every, self.lifetime, self.skew = renew_every, lifetime, skew
        self.on_lost = on_lost
        self.token = uuid.uuid4().hex
        self.lost: str | None = None
        self._renewed = 0.0  # when the last successful renewal (or the take) began, on _clock
        self._store = self._backend(path, unsafe_ok)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._releasing = threading.Lock()

    def _backend(self, path: str, unsafe_ok: tuple[str, ...]) -> Any:
        if not storage.is_uri(path):
            return Local(path)
        protocol = path.split("://", 1)[0].lower()
        if protocol in ("s3", "s3a"):
            store = S3(path)
            if store.conditional():
                return store
            if protocol in unsafe_ok:
                return Racy(path)
            raise JobError(
                f"the object store of {self.what} ignores conditional writes (If-None-Match), so two "
                f"jobs could both take its lock; use a store that honours them, or accept the risk with "
                f"--unsafe-lock {protocol} (unsafe_lock=({protocol!r},))"
            )
        if protocol in unsafe_ok:
            return Racy(path)
        raise JobError(
            f"{self.what}: distdream cannot lock {protocol}:// storage atomically (it knows conditional "
            f"writes of local filesystems and S3); use one of those, or accept the risk with "
            f"--unsafe-lock {protocol} (unsafe_lock=({protocol!r},))"
        )

    @staticmethod
    def _clock() -> float:
        """Seconds elapsed, counting time stopped or suspended (a pause must age the lease)."""
        return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()

    def _record(self) -> dict[str, Any]:
        boot, pids = _pid_space()
        return {
            "host": socket.gethostname(),
            "boot": boot,
            "pid_namespace": pids,
            "pid": os.getpid(),
            "token": self.token,
            "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "lease_seconds": self.lifetime,
        }

    def stale(self, stamp: Stamp) -> bool:
        """Whether the lock ``stamp`` describes has no living owner."""
        if stamp.age > self.lifetime + self.skew:
            return True
        r, here = stamp.record, _pid_space()
        if r.get("host") == socket.gethostname() and "" not in here and here == (r.get("boot"), r.get("pid_namespace")):
            try:  # a driver killed here: its pid is one of this kernel's and this namespace's
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
            self._renewed = self._clock()  # before the write: the lease is trusted from no later than it
            if self._store.create(record):
                return self._start()
            stamp = self._store.read(self.what)
            if stamp is None:
                continue  # released meanwhile
            if not self.stale(stamp):
                r = stamp.record
                raise JobError(
                    f"{self.what} is in use by another job (host {r.get('host')}, pid {r.get('pid')}, "
                    f"renewed {max(stamp.age, 0):.0f} s ago); wait for it, stop it, or use another one"
                )
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
        failure: BaseException | None = None
        while not self._stop.wait(self.renew_every):
            started = self._clock()
            outcome = self._renew_once(max(0.0, self._renewed + self.lifetime / 2 - started))
            if outcome is True:
                self._renewed, failure = started, None
            elif outcome is False:
                return self._lose(f"another job took over the lock of {self.what}")
            else:
                failure = outcome if isinstance(outcome, BaseException) else failure
            if self._clock() - self._renewed >= self.lifetime / 2:
                why = "no answer from the storage" if failure is None else f"{failure.__class__.__name__}: {failure}"
                return self._lose(f"could not renew the lock of {self.what} for {self.lifetime / 2:.0f} s ({why})")

    def _renew_once(self, within: float) -> bool | BaseException | None:
        """One renewal, given up after ``within`` seconds (a hung mount blocks a call for ever):
        True if renewed, False if the lock is another job's, the error it raised, or None if
        it did not come back in time (its thread is left behind)."""
        result: list[bool | BaseException] = []

        def renew() -> None:
            try:
                result.append(self._store.renew())
            except Exception as exc:  # noqa: BLE001 - any failure to renew is a missed beat
                result.append(exc)

        worker = threading.Thread(target=renew, name="distdream-lease-renewal", daemon=True)
        worker.start()
        worker.join(within)
        return result[0] if result else None

    def check(self) -> None:
        """Raise :class:`JobError` if the lease is lost (the job must stop writing): marked lost,
        or not renewed successfully for half its life (the process was paused, the storage hangs)."""
        age = self._clock() - self._renewed
        if self.lost is None and self._thread is not None and age >= self.lifetime / 2:
            self._lose(f"the lock of {self.what} was not renewed for {age:.0f} s (a pause, or the storage hangs)")
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
