"""Faults injected into workers: the testing aid behind the engine's failure-path tests.

Not a setting: a job's :class:`~distdream.config.JobOptions` say how to render; these say where
it is to break, or where it is to wait for the test's go-ahead. :func:`~distdream.engine.submit`
takes them as ``faults``; a job with faults runs on Ray, where a worker can be killed and
restarted, unless it is told ``ray="never"``: then its worker threads take the faults a thread
can show (:data:`THREAD_KINDS`). The driver's faults (:data:`JOIN_KINDS`: the join's and the stop's)
hold the driver itself, wherever the chunks ran.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = [
    "FAULT_KINDS",
    "JOIN_KINDS",
    "THREAD_KINDS",
    "WAIT_LIMIT",
    "Fault",
    "checked_faults",
    "chunk_faults",
    "hold",
    "join_faults",
]

JOIN_KINDS = ("join-wait", "publish-wait", "stop-wait")  # the driver's own: they hold it, in any job
FAULT_KINDS = ("raise", "exit", "hang", "unavailable", "wait", "start-raise", "start-hang", "ping-hang", *JOIN_KINDS)
# what a job in this process can show: its worker threads' faults and the join's; the rest need a process
THREAD_KINDS = ("raise", "wait", *JOIN_KINDS)
WAIT_LIMIT = 600.0  # seconds a ``wait`` fault holds its chunk without a go-ahead before it fails it


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a worker.

    Chunk faults fire at frame offset ``at_frame`` of chunk ``chunk`` on the listed ``attempts``
    (all when empty, counted from 0): the worker raises (``raise``), its process exits at once
    (``exit``), it stops answering (``hang``, for the watchdog), the call fails as Ray fails a
    call to a live actor it cannot reach (``unavailable``), or the chunk waits there until the
    file ``go`` exists (``wait``: a test holds a render at a known point, so that what it does
    meanwhile, a signal say, cannot race the render's end). Start faults hit every worker as it
    starts: its constructor raises (``start-raise``) or never returns (``start-hang``), or it
    starts but never answers its first ping (``ping-hang``); ``chunk`` is ignored for those.
    Join faults hold the final join until ``go`` exists: while it writes the output's temporary
    file (``join-wait``: a stop abandons it there) or once it is publishing it (``publish-wait``:
    past the point where a stop is still taken); ``stop-wait`` holds a cancelled job's driver
    before it stops its workers (a test signals the process again while it stops).
    """

    chunk: int = 0
    at_frame: int = 0
    attempts: tuple[int, ...] = ()
    kind: str = "raise"
    go: str = ""  # a ``wait`` fault's go-ahead: the path of a file that the test creates

    @property
    def at_start(self) -> bool:
        return self.kind.startswith(("start-", "ping-"))

    @property
    def at_join(self) -> bool:
        return self.kind in JOIN_KINDS


def checked_faults(faults: Sequence[Fault], in_process: bool = False) -> tuple[Fault, ...]:
    """``faults`` as a tuple; an unknown kind, a ``wait`` without its go-ahead file, or (for a job
    that must run in this process) a kind only a worker process can show raise :class:`ConfigError`."""
    bad = [f.kind for f in faults if f.kind not in FAULT_KINDS]
    if bad:
        raise ConfigError(f"unknown fault kind {bad[0]!r}; one of {', '.join(FAULT_KINDS)}")
    if any(f.kind in ("wait", *JOIN_KINDS) and not f.go for f in faults):
        raise ConfigError("a waiting fault needs go=PATH, the file whose appearance lets it go on")
    process_only = [f.kind for f in faults if f.kind not in THREAD_KINDS]
    if in_process and process_only:
        raise ConfigError(
            f"a {process_only[0]!r} fault needs a worker process (Ray); a job with ray='never' takes "
            f"only {' and '.join(THREAD_KINDS)} faults"
        )
    return tuple(faults)


def chunk_faults(faults: Sequence[Fault], chunk: int, attempt: int) -> list[Fault]:
    """The faults that fire in attempt ``attempt`` (from 0) of chunk ``chunk``."""
    return [
        f
        for f in faults
        if not (f.at_start or f.at_join) and f.chunk == chunk and (not f.attempts or attempt in f.attempts)
    ]


def join_faults(faults: Sequence[Fault], kind: str) -> list[Fault]:
    """The join faults of ``kind`` (one of :data:`JOIN_KINDS`)."""
    return [f for f in faults if f.kind == kind]


def hold(fault: Fault, stopped: Callable[[], bool] = lambda: False, limit: float = WAIT_LIMIT) -> None:
    """A waiting fault: return once its go-ahead file exists or ``stopped()`` turns true (the
    job was cancelled: the caller's own check ends the chunk); raise :class:`RuntimeError` if
    neither happened within ``limit`` seconds. While it holds, the file ``GO.held`` exists: the
    test knows the job is there."""
    deadline = time.monotonic() + limit
    if not os.path.exists(fault.go):
        with open(f"{fault.go}.held", "w"):
            pass
    while not os.path.exists(fault.go) and not stopped():
        if time.monotonic() > deadline:
            where = f"the {fault.kind}" if fault.at_join else f"injected wait in chunk {fault.chunk}"
            raise RuntimeError(f"{where}: no go-ahead ({fault.go}) within {limit:.0f} s")
        time.sleep(0.02)
