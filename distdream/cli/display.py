"""What a render shows while it runs: each phase as it begins, counted ones as a bar, then frames.

A phase with a count (scanning cuts n/N frames, starting workers n/N) gets a bar of its own; one
without (probing, checking the model, starting Ray, joining) a line, the plan a line of its own;
dreaming gets the frames bar with the chunks done. Phases arrive from the caller's thread during
start-up and from the job's thread after it, hence the lock. With ``quiet`` nothing is shown.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import click
from tqdm import tqdm

__all__ = ["RenderDisplay"]


class RenderDisplay:
    """Phases and the frames bar of one render on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._lock = threading.Lock()
        self._name: str | None = None
        self._bar: tqdm | None = None  # the counted phase's, or the frames bar while dreaming

    def say(self, line: str) -> None:
        if not self.quiet:
            with self._lock:
                (self._bar.write if self._bar is not None else click.echo)(line, file=sys.stderr)

    def phase(self, phase: Any) -> None:
        """Show ``phase`` (an engine :class:`~distdream.engine.Phase`) if it is news."""
        if self.quiet or phase.name == "dreaming":
            return  # the frames bar says it (see frames)
        with self._lock:
            if phase.name != self._name:
                self._close()
                self._name = phase.name
                if phase.total and phase.name != "joining":
                    unit = "frame" if phase.name == "scanning cuts" else "worker"
                    self._bar = tqdm(
                        total=phase.total,
                        desc=phase.name,
                        unit=unit,
                        file=sys.stderr,
                        leave=True,
                        postfix=phase.detail or None,
                    )
                elif phase.name == "planned":
                    click.echo(f"plan: {phase.detail}", err=True)
                else:
                    detail = f" {phase.total} pieces into" if phase.name == "joining" else ""
                    click.echo(f"{phase.name}{detail}{' ' + phase.detail if phase.detail else ''}", err=True)
            if self._bar is not None and phase.name != "dreaming":
                self._bar.update(phase.done - self._bar.n)

    def follow(self, job: Any) -> None:
        """Show where a running :class:`~distdream.engine.Job` is: its phase, or its frames."""
        phase = job.phase()
        if phase.name == "dreaming":
            states = job.chunks()
            done, total = job.progress()
            self.frames(done, total, sum(c.state == "done" for c in states), len(states))
        else:
            self.phase(phase)

    def frames(self, done: int, total: int, chunks_done: int, chunks: int) -> None:
        """The frames bar (the dreaming phase)."""
        if self.quiet or not total:
            return
        with self._lock:
            if self._name != "dreaming":
                self._close()
                self._name = "dreaming"
                self._bar = tqdm(total=total, initial=done, unit="frame", desc="dreaming", file=sys.stderr)
            assert self._bar is not None
            self._bar.set_postfix_str(f"chunks {chunks_done}/{chunks}", refresh=False)
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
