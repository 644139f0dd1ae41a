"""A job's work directory: its plan, its ledger, its lock, and where each chunk's pieces live.

    plan.json           the input's identity, the resolved settings, the chunks, their hash
    ledger.json         finished chunks and windows with their pieces' fingerprints (atomic rewrite)
    lock.json           the job that owns the directory: host, pid, heartbeat
    chunks/NNNNN.*      each chunk's lead-in, middle and tail (deterministic names; see Layout)
    windows/NNNNN.*     each crossfaded seam window (an image-sequence job writes middles and
                        windows straight to its output's numbered files)

Resume cannot lie: a resumed job must have the same input (size, version, a digest of its first
and last packets) and the same *resolved* settings (precision as run, digests of weights and
start image, distdream's version), or it is refused with the differences named. A chunk counts
as done only if the ledger has it *and* its pieces still verify (frame count, fingerprint). A
ledger that cannot be read is rebuilt from the pieces that verify, with a note. No Ray here.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..errors import JobError
from .pieces import ChunkFiles, Layout, verify

__all__ = ["Ledger", "PLAN_VERSION", "WorkdirLock", "check_workdir", "differences", "finished", "settings_hash"]

PLAN_VERSION = 3  # 3: pieces by codec (sides FFV1 or numbered PNG), image-sequence outputs


# ---------------------------------------------------------------------------------------------
# Plan identity


def settings_hash(record: Mapping[str, Any]) -> str:
    """The hash of what makes a job's pixels: input identity, resolved settings, chunks, version."""
    import hashlib

    keys = ("plan_version", "input_identity", "settings", "chunks")
    payload = json.dumps({k: record[k] for k in keys}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "…"


def differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a saved plan record and this job's, one phrase each."""
    out = []
    if saved.get("plan_version") != now.get("plan_version"):
        return [f"plan format {saved.get('plan_version')} (this distdream writes {now.get('plan_version')})"]
    a, b = _flatten(saved.get("input_identity", {})), _flatten(now.get("input_identity", {}))
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            out.append(f"input {key} ({_short(a.get(key))} then, {_short(b.get(key))} now)")
    a, b = _flatten(saved.get("settings", {})), _flatten(now.get("settings", {}))
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            out.append(f"{key} ({_short(a.get(key))} then, {_short(b.get(key))} now)")
    if saved.get("chunks") != now.get("chunks"):
        out.append(f"chunking ({len(saved.get('chunks', []))} chunks then, {len(now.get('chunks', []))} now)")
    return out


def check_workdir(workdir: str) -> None:
    """Refuse a work directory that holds pieces or a ledger but no plan (not ours, or damaged)."""
    if storage.exists(storage.join(workdir, "plan.json")):
        return
    stray = [name for name in ("ledger.json", "chunks", "windows") if storage.exists(storage.join(workdir, name))]
    if stray:
        raise JobError(
            f"work directory {workdir} has {', '.join(stray)} but no plan.json: it is not a distdream job "
            "directory, or its plan was lost; remove it or choose another --workdir"
        )


# ---------------------------------------------------------------------------------------------
# The ledger


class Ledger:
    """Finished chunks and windows with their pieces' fingerprints, persisted atomically."""

    def __init__(self, path: str, data: dict[str, Any] | None = None, note: str | None = None) -> None:
        self.path = path
        self.data = data or {"chunks": {}, "windows": {}}
        self.note = note  # set when the file could not be used as it was

    @staticmethod
    def _valid(data: Any) -> bool:
        if not isinstance(data, dict) or set(data) != {"chunks", "windows"}:
            return False
        for part in data.values():
            if not isinstance(part, dict):
                return False
            for record in part.values():
                if not isinstance(record, dict) or not isinstance(record.get("frames"), int):
                    return False
                if not isinstance(record.get("fingerprints", {}), dict):
                    return False
        return True

    @classmethod
    def load(cls, path: str) -> Ledger:
        """The ledger at ``path``; an unreadable one gives an empty ledger with ``note`` set."""
        if not storage.exists(path):
            return cls(path)
        try:
            data = json.loads(storage.read_text(path))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            return cls(path, note=f"ledger {path} was unreadable ({exc.__class__.__name__}); rebuilt it from the "
                                  "pieces that verify")
        if not cls._valid(data):
            return cls(path, note=f"ledger {path} was not a distdream ledger; rebuilt it from the pieces that verify")
        return cls(path, data)

    def save(self) -> None:
        storage.write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True))  # whole or not at all

    def add(self, kind: str, name: str, record: dict[str, Any]) -> None:
        self.data[kind][name] = record
        self.save()

    def has(self, kind: str, name: str) -> bool:
        return name in self.data[kind]

    def fingerprints(self, kind: str, name: str) -> dict[str, str]:
        return dict(self.data[kind].get(name, {}).get("fingerprints", {}))

    def drop(self, kind: str, name: str) -> None:
        self.data[kind].pop(name, None)


def _state_ok(files: ChunkFiles, fingerprints: Mapping[str, str]) -> bool:
    try:
        if not storage.exists(files.state):
            return False
        known = fingerprints.get(files.state)
        return known is None or storage.fingerprint(files.state) == known
    except OSError:
        return False


def finished(workdir: str, chunks: Sequence[Chunk], ledger: Ledger, layout: Layout = Layout()) -> tuple[set[int], set[int]]:
    """Chunks and seam windows a resume can keep, the ledger brought in line with them.

    A chunk is kept when the ledger has it and its pieces verify; with a rebuilt ledger, when its
    pieces verify by frame count. A chunk that continues a handoff is kept only with its
    predecessor (a redone chunk may end differently, so what continued it is redone too), and a
    chunk whose successor still needs its carried state keeps it only while that state verifies.
    A window is kept when its chunk and the chunk before it are both kept (a redone chunk
    invalidates both windows beside it) and the window verifies.
    """
    rebuilt = ledger.note is not None
    done: set[int] = set()
    for c in chunks:
        files = ChunkFiles(workdir, c, layout)
        known = ledger.has("chunks", c.name)
        if (known or rebuilt) and verify(files.outputs(), ledger.fingerprints("chunks", c.name), layout.offset):
            done.add(c.index)
            if not known:
                ledger.data["chunks"][c.name] = {"frames": c.dreamed, "fingerprints": {}, "rebuilt": True}
    by_index = {c.index: c for c in chunks}
    changed = True
    while changed:  # chains: drop what no longer has the state it continues from, or hands on
        changed = False
        for c in chunks:
            if c.index not in done:
                continue
            orphan = c.begins == "handoff" and c.index - 1 in by_index and c.index - 1 not in done
            stateless = (c.hands_off and c.index + 1 not in done
                         and not _state_ok(ChunkFiles(workdir, c, layout), ledger.fingerprints("chunks", c.name)))
            if orphan or stateless:
                done.discard(c.index)
                changed = True
    for c in chunks:
        if c.index not in done:
            ledger.drop("chunks", c.name)
    windows: set[int] = set()
    for c in chunks:
        if not c.lead_in:
            continue
        files = ChunkFiles(workdir, c, layout)
        keep = c.index in done and c.index - 1 in done and (ledger.has("windows", c.name) or rebuilt)
        if keep and verify([files.window_piece()], ledger.fingerprints("windows", c.name), layout.offset):
            windows.add(c.index)
            ledger.data["windows"].setdefault(c.name, {"frames": c.lead_in, "fingerprints": {}})
        else:
            ledger.drop("windows", c.name)
    ledger.save()
    return done, windows


# ---------------------------------------------------------------------------------------------
# The lock


class WorkdirLock:
    """One job per work directory: ``lock.json`` names the owner and is refreshed by a heartbeat.

    Taken with an exclusive create (``O_EXCL`` locally, a conditional put on object storage). A
    lock is stale, and taken over, when its heartbeat is older than ``stale_after`` seconds, or
    when it was taken on this host by a process that no longer exists (a killed driver).
    """

    def __init__(self, workdir: str, *, heartbeat: float = 10.0, stale_after: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = storage.join(workdir, "lock.json")
        self.heartbeat, self.stale_after, self.clock = heartbeat, stale_after, clock
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                           "heartbeat": self.clock()})

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(storage.read_text(self.path))
        except (FileNotFoundError, ValueError, OSError):
            return None
        return data if isinstance(data, dict) else None

    def _stale(self, holder: dict[str, Any] | None) -> bool:
        if holder is None:
            return True  # unreadable: half-written by a crash, or not ours
        age = self.clock() - float(holder.get("heartbeat", 0))
        if age > self.stale_after:
            return True
        if holder.get("host") == socket.gethostname():
            try:
                os.kill(int(holder.get("pid", -1)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError):
                return False
        return False

    def acquire(self) -> None:
        """Take the lock or raise :class:`JobError` naming who holds it."""
        for _ in range(3):
            if storage.create_exclusive(self.path, self._record()):
                self._thread = threading.Thread(target=self._beat, name="distdream-lock", daemon=True)
                self._thread.start()
                return
            holder = self._holder()
            if not self._stale(holder):
                assert holder is not None
                age = self.clock() - float(holder.get("heartbeat", 0))
                raise JobError(
                    f"work directory {storage.parent(self.path)} is in use by another job (host "
                    f"{holder.get('host')}, pid {holder.get('pid')}, heartbeat {age:.0f} s ago); wait for it, stop "
                    f"it, or use another --workdir"
                )
            storage.remove(self.path)  # stale: its owner is gone
        raise JobError(f"could not take the lock {self.path}: another job keeps taking it")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            holder = self._holder()
            if holder is not None and holder.get("token") != self.token:
                return  # taken over (we were presumed dead): do not fight for it
            try:
                storage.write_text(self.path, self._record())
            except OSError:
                pass  # a missed beat is survivable; the next one may land

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        holder = self._holder()
        if holder is not None and holder.get("token") == self.token:
            storage.remove(self.path)
