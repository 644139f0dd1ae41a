"""The driver's view of its Ray workers: slots, lanes, incarnations, pings, restarts, start-up.

Each worker slot holds one :class:`~distdream.engine.worker.DreamWorker` actor with ``lanes``
lanes. A worker gets chunks only after it answers a ping, and again after a crash only once it
answers as a *new* incarnation (its ping token changed): a task sent to a restarting actor could
fail at once and burn an attempt of a chunk that did nothing wrong.

Nothing here waits without an end. A worker that cannot start — its constructor raises, it dies
before answering, or its first ping does not come back within ``start_timeout`` — is replaced by
a fresh one, and after ``max_start_failures`` such workers the job fails with a
:class:`~distdream.errors.JobError` naming the cause.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from ..errors import JobError

__all__ = ["WorkerPool", "cause_of"]


def cause_of(exc: BaseException) -> str:
    """The first line that says what went wrong inside a Ray error (the worker's own exception)."""
    cause = getattr(exc, "cause", None)
    if cause is not None and not isinstance(cause, ray.exceptions.RayError):
        return f"{cause.__class__.__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    text = str(exc)
    found = re.findall(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", text, re.M)
    for name, message in reversed(found):
        if name not in ("RayActorError", "ActorDiedError", "RayTaskError"):
            return f"{name}: {message.strip()[:300]}"
    return (text.strip().splitlines() or [exc.__class__.__name__])[0][:300]


@dataclass
class _Slot:
    actor: Any
    incarnation: int = 0  # bumped whenever the worker is known to have died
    token: str | None = None  # the incarnation token it last answered with (None: never answered)
    dying: str | None = None  # the token of an incarnation known to be dying
    dying_since: float = 0.0
    unreachable: int = 0  # chunks in a row Ray could not deliver to this live worker
    ping: Any = None  # the outstanding ping, if any
    ping_sent: float = 0.0
    retired: bool = False
    lanes_out: int = 0  # lanes with a chunk


@dataclass
class WorkerPool:
    """Worker slots and their free lanes; see the module docstring."""

    make: Callable[[], Any]  # a new DreamWorker actor
    size: int
    lanes: int
    start_timeout: float
    max_start_failures: int
    clock: Callable[[], float] = time.monotonic
    get: Callable[[Any], Any] = ray.get  # a ping's answer (tests pass fakes of these three)
    kill_actor: Callable[..., None] = ray.kill
    slots: list[_Slot] = field(default_factory=list)
    idle: list[int] = field(default_factory=list)  # free lanes by slot (a slot appears once per lane)
    start_failures: int = 0

    DYING = 30.0  # seconds a worker reported dead may go on answering as its old self before it is restarted
    UNREACHABLE = 2  # chunks in a row a worker may be unreachable before it is restarted

    def __post_init__(self) -> None:
        self.slots = [_Slot(self.make()) for _ in range(self.size)]
        for slot in range(self.size):
            self._ping(slot)

    # -- pings --------------------------------------------------------------------------------

    def _ping(self, slot: int) -> None:
        s = self.slots[slot]
        s.ping, s.ping_sent = s.actor.ping.remote(), self.clock()

    def pings(self) -> list[Any]:
        return [s.ping for s in self.slots if s.ping is not None]

    def answering(self) -> int:
        """Workers that have answered a ping (started), of those not retired."""
        return sum(s.token is not None and not s.retired for s in self.slots)

    def owns(self, ref: Any) -> bool:
        return any(s.ping is ref for s in self.slots)

    def answered(self, ref: Any) -> None:
        """Handle a ping that came back (or failed)."""
        slot = next(i for i, s in enumerate(self.slots) if s.ping is ref)
        s = self.slots[slot]
        s.ping = None
        try:
            token = self.get(ref)
        except ray.exceptions.RayActorError as exc:  # out of restarts, or it could not start at all
            if s.token is None:
                self._start_failed(f"it died while starting ({cause_of(exc)})")
            self._replace(slot)
            return
        if token is not None and token == s.dying:  # the dying process answered: ask again …
            if self.clock() - s.dying_since > self.DYING:  # … but not forever: it is alive, make it restart
                self.kill_actor(s.actor, no_restart=False)
                s.dying_since = self.clock()
            self._ping(slot)
            return
        s.token, s.dying = token, None
        # lanes still out belong to the dead incarnation; each comes back when its failure is reported
        self.idle.extend([slot] * (self.lanes - s.lanes_out))

    def _start_failed(self, why: str) -> None:
        self.start_failures += 1
        if self.start_failures >= self.max_start_failures:
            raise JobError(f"{self.start_failures} workers failed to start; the last one: {why}")

    def _replace(self, slot: int) -> None:
        s = self.slots[slot]
        self.kill_actor(s.actor, no_restart=True)
        self.slots[slot] = _Slot(self.make(), incarnation=s.incarnation + 1, lanes_out=s.lanes_out)
        self.idle[:] = [i for i in self.idle if i != slot]
        self._ping(slot)

    def check_starts(self) -> None:
        """Replace workers whose ping is overdue (a constructor or a first ping that hangs)."""
        now = self.clock()
        for slot, s in enumerate(self.slots):
            if s.ping is not None and now - s.ping_sent > self.start_timeout:
                self._start_failed(f"it did not answer within {self.start_timeout:.0f} s of starting")
                self._replace(slot)

    # -- lanes --------------------------------------------------------------------------------

    def take(self) -> int | None:
        """A free lane's slot, or ``None``."""
        if not self.idle:
            return None
        slot = self.idle.pop(0)
        self.slots[slot].lanes_out += 1
        return slot

    def give_back(self, slot: int) -> None:
        """A lane's chunk ended normally (done, or raised): the lane is free again."""
        s = self.slots[slot]
        s.lanes_out -= 1
        s.unreachable = 0
        if not s.retired:
            self.idle.append(slot)

    def unreachable(self, slot: int, born: int) -> None:
        """Ray could not deliver a chunk to a worker it has not declared dead
        (``ActorUnavailableError``): the worker is restarting, or a network or GCS fault passes.
        Its lanes wait for it to answer a ping again, as itself or restarted (a live worker's old
        token is fine here, unlike after a death); after ``UNREACHABLE`` such chunks in a row it
        is restarted."""
        s = self.slots[slot]
        if born != s.incarnation:  # already being waited for, through another lane
            self.lost(slot, born)
            return
        s.unreachable += 1
        if s.unreachable >= self.UNREACHABLE:
            s.unreachable = 0
            self.kill(slot, born)
            self.lost(slot, born)
            return
        s.lanes_out -= 1
        s.incarnation += 1  # its other lanes' failures are this same event
        s.dying = None
        self.idle[:] = [i for i in self.idle if i != slot]
        if s.ping is None and not s.retired:
            self._ping(slot)

    def incarnation(self, slot: int) -> int:
        return self.slots[slot].incarnation

    def actor(self, slot: int) -> Any:
        return self.slots[slot].actor

    def lost(self, slot: int, born: int) -> None:
        """A chunk's worker died: the first report of a death pings it; its other lanes wait for that."""
        s = self.slots[slot]
        s.lanes_out -= 1
        if born == s.incarnation:
            s.incarnation += 1
            s.dying, s.dying_since = s.token, self.clock()
            self.idle[:] = [i for i in self.idle if i != slot]
            self._ping(slot)
        elif s.ping is None and not s.retired:  # the worker is back already: this lane is free
            self.idle.append(slot)

    def kill(self, slot: int, born: int) -> None:
        """The watchdog's verdict on a hung lane: restart its worker (its other lanes fail with it)."""
        if born == self.slots[slot].incarnation:  # not already killed for another of its lanes
            self.kill_actor(self.slots[slot].actor, no_restart=False)

    def retire_idle(self) -> None:
        """No chunk is left to hand out: let go of workers with nothing running, freeing their
        CPUs and GPUs for the seam tasks."""
        for slot, s in enumerate(self.slots):
            if not s.retired and s.lanes_out == 0:
                s.retired = True
                s.ping = None
                self.idle[:] = [i for i in self.idle if i != slot]
                self.kill_actor(s.actor, no_restart=True)

    def revive(self) -> None:
        """Work came back (a retried chunk) after every worker was retired: start one again."""
        if all(s.retired for s in self.slots):
            old = self.slots[0]
            self.slots[0] = _Slot(self.make(), incarnation=old.incarnation + 1)
            self._ping(0)

    def shutdown(self) -> None:
        for s in self.slots:
            if not s.retired:
                self.kill_actor(s.actor, no_restart=True)
