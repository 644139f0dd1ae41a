"""Faults injected into workers: the testing aid behind the engine's failure-path tests.

Not a setting: a job's :class:`~distdream.config.JobOptions` say how to render; these say where
it is to break. :func:`~distdream.engine.submit` takes them as ``faults``; a job with faults runs
on Ray, where a worker can be killed and restarted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["FAULT_KINDS", "Fault", "checked_faults"]

FAULT_KINDS = ("raise", "exit", "hang", "unavailable", "start-raise", "start-hang", "ping-hang")


@dataclass(frozen=True)
class Fault:
    """A fault to inject into a worker.

    Chunk faults fire at frame offset ``at_frame`` of chunk ``chunk`` on the listed ``attempts``
    (all when empty): the worker raises (``raise``), its process exits at once (``exit``), it
    stops answering (``hang``, for the watchdog), or the call fails as Ray fails a call to a live
    actor it cannot reach (``unavailable``). Start faults hit every worker as it starts:
    its constructor raises (``start-raise``) or never returns (``start-hang``), or it starts but
    never answers its first ping (``ping-hang``); ``chunk`` is ignored for those.
    """

    chunk: int = 0
    at_frame: int = 0
    attempts: tuple[int, ...] = ()
    kind: str = "raise"

    @property
    def at_start(self) -> bool:
        return self.kind.startswith(("start-", "ping-"))


def checked_faults(faults: Sequence[Fault]) -> tuple[Fault, ...]:
    """``faults`` as a tuple; an unknown kind raises :class:`ConfigError`."""
    bad = [f.kind for f in faults if f.kind not in FAULT_KINDS]
    if bad:
        raise ConfigError(f"unknown fault kind {bad[0]!r}; one of {', '.join(FAULT_KINDS)}")
    return tuple(faults)
