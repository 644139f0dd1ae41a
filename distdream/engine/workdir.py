"""A job's work directory: its plan, its ledger, its lock, and where each chunk's pieces live.

    plan.json           the input's identity, the resolved settings, the chunks, their hash
    ledger.json         finished chunks and windows with their pieces' fingerprints (atomic rewrite)
    lock.json           the job that owns the directory: host, pid, token; renewed (see .lease)
    chunks/NNNNN.*      each chunk's lead-in, middle and tail (deterministic names; see Layout)
    windows/NNNNN.*     each crossfaded seam window (an image-sequence job writes middles and
                        windows straight to its output's numbered files)

Resume cannot lie: a resumed job must have the same input (size, version, a digest of its first
and last packets) and the same *resolved* settings (precision as run, digests of weights and
start image, distdream's version), or it is refused with the differences named. A chunk counts
as done only if the ledger has it *and* its pieces still verify (frame count, fingerprint, keyed
by their names inside the work directory, so a moved one resumes). A ledger that is damaged is
rebuilt from the pieces that verify, with a note; one that cannot be *read* (an I/O error, no
permission, a throttled bucket) is an error, never a rebuild. No Ray here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..errors import JobError
from .lease import Lease
from .pieces import ChunkFiles, Layout, Piece, piece_fingerprint, verify

__all__ = ["Ledger", "PLAN_VERSION", "check_workdir", "differences", "finished", "settings_hash", "workdir_lease"]

# 3: pieces by codec (sides FFV1 or numbered PNG), image-sequence outputs; 4: fingerprints keyed by
# names inside the work directory
PLAN_VERSION = 4


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


def check_workdir(workdir: str) -> str | None:
    """Refuse a work directory that holds pieces or a ledger but no plan (not ours, or damaged);
    return the output its plan names, if it has one."""
    plan = storage.join(workdir, "plan.json")
    if storage.exists(plan, JobError):
        try:
            saved = json.loads(storage.read_text(plan))
        except (ValueError, FileNotFoundError):
            return None  # the job says what is wrong with it, under its lock
        return str(saved.get("output")) if isinstance(saved, dict) and saved.get("output") else None
    stray = [name for name in ("ledger.json", "chunks", "windows") if storage.exists(storage.join(workdir, name))]
    if stray:
        raise JobError(
            f"work directory {workdir} has {', '.join(stray)} but no plan.json: it is not a distdream job "
            "directory, or its plan was lost; remove it or choose another --workdir"
        )
    return None


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
        """The ledger at ``path``; a damaged one gives an empty ledger with ``note`` set, one that
        cannot be read raises :class:`JobError`."""
        try:
            text = storage.read_text(path) if storage.exists(path, JobError) else None
        except FileNotFoundError:
            text = None
        except OSError as exc:
            raise JobError(
                f"cannot read the ledger {path} ({exc.__class__.__name__}: {exc}); nothing was changed: "
                "fix the storage, then resume"
            ) from None
        if text is None:
            return cls(path)
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not cls._valid(data):
            return cls(path, note=f"ledger {path} was damaged; rebuilt it from the pieces that verify")
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


def _keep(ledger: Ledger, kind: str, name: str, pieces: list[Piece], offset: int) -> bool:
    """Whether a chunk's (or window's) pieces verify: against the ledger's fingerprints where it
    has the record, by their frames where the ledger was rebuilt (which then records them)."""
    if ledger.has(kind, name):
        return verify(pieces, ledger.fingerprints(kind, name), offset)
    if ledger.note is None or not verify(pieces, None, offset):
        return False
    ledger.data[kind][name] = {
        "frames": pieces[-1].end - pieces[0].start,
        "rebuilt": True,
        "fingerprints": {p.key: piece_fingerprint(p, offset) for p in pieces},
    }
    return True


def _state_ok(files: ChunkFiles, ledger: Ledger) -> bool:
    """Whether the carried state a chunk hands on is there, as the ledger recorded it."""
    known = ledger.fingerprints("chunks", files.chunk.name).get(files.state_key)
    try:
        return storage.exists(files.state, JobError) and storage.fingerprint(files.state) == known
    except FileNotFoundError:
        return False


def finished(
    workdir: str, chunks: Sequence[Chunk], ledger: Ledger, layout: Layout = Layout()
) -> tuple[set[int], set[int]]:
    """Chunks and seam windows a resume can keep, the ledger brought in line with them.

    A chunk is kept when its pieces verify (:func:`_keep`). A chunk that continues a handoff is
    kept only with its predecessor (a redone chunk may end differently, so what continued it is
    redone too), and a chunk whose successor still needs its carried state keeps it only while
    that state verifies. A window is kept when its chunk and the chunk before it are both kept (a
    redone chunk invalidates both windows beside it) and the window verifies.
    """
    done = {
        c.index
        for c in chunks
        if _keep(ledger, "chunks", c.name, ChunkFiles(workdir, c, layout).outputs(), layout.offset)
    }
    for c in chunks:  # a rebuilt record holds no carried state's fingerprint yet
        files = ChunkFiles(workdir, c, layout)
        record = ledger.data["chunks"].get(c.name, {})
        if c.index in done and c.hands_off and record.get("rebuilt") and storage.exists(files.state, JobError):
            record["fingerprints"][files.state_key] = storage.fingerprint(files.state)
    by_index = {c.index: c for c in chunks}
    changed = True
    while changed:  # chains: drop what no longer has the state it continues from, or hands on
        changed = False
        for c in chunks:
            if c.index not in done:
                continue
            orphan = c.begins == "handoff" and c.index - 1 in by_index and c.index - 1 not in done
            stateless = (
                c.hands_off and c.index + 1 not in done and not _state_ok(ChunkFiles(workdir, c, layout), ledger)
            )
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
        window = [ChunkFiles(workdir, c, layout).window_piece()]
        if c.index in done and c.index - 1 in done and _keep(ledger, "windows", c.name, window, layout.offset):
            windows.add(c.index)
        else:
            ledger.drop("windows", c.name)
    ledger.save()
    return done, windows


# ---------------------------------------------------------------------------------------------
# The lock


def workdir_lease(workdir: str, **options: Any) -> Lease:
    """The lease on a work directory (``lock.json``); see :class:`~.lease.Lease` for ``options``."""
    return Lease(storage.join(workdir, "lock.json"), f"work directory {workdir}", **options)
