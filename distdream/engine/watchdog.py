"""How long a chunk may run before it counts as hung: from the job's own measured time per frame.

A fixed limit is either far too short for a 1080p chunk on a CPU or far too long for a 64×48 one
on a GPU (hours of a wedged worker before anyone notices). So the limit is measured: every frame
a chunk finishes gives a sample of seconds per frame (time since its attempt began, over frames
done), and a chunk may take ``factor`` times its expected time (samples' median × its frames),
at least ``floor``. Until the first sample, ``first_limit`` holds. ``--chunk-timeout`` replaces
all of it with one number. No Ray here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

__all__ = ["Watchdog"]


@dataclass
class Watchdog:
    """Attempts' start times and progress, and the limit each running chunk is held to."""

    fixed: float | None = None  # --chunk-timeout: one limit for every attempt
    first_limit: float = 3600.0  # before anything is measured
    factor: float = 10.0
    floor: float = 300.0
    started: dict[int, float] = field(default_factory=dict)  # chunk index → its attempt's start
    frames: dict[int, int] = field(default_factory=dict)  # chunk index → frames done in this attempt
    samples: dict[int, float] = field(default_factory=dict)  # chunk index → its latest seconds per frame

    def start(self, index: int, now: float) -> None:
        self.started[index], self.frames[index] = now, 0

    def progress(self, index: int, frames: int, now: float) -> None:
        """``frames`` more frames of chunk ``index`` are done, as of ``now``."""
        if index not in self.started or frames <= 0:
            return
        self.frames[index] += frames
        self.samples[index] = (now - self.started[index]) / self.frames[index]

    def stop(self, index: int) -> None:
        """The attempt ended (done, failed or abandoned); its samples stay."""
        self.started.pop(index, None)

    @property
    def seconds_per_frame(self) -> float | None:
        """The job's measured time per frame and lane, or ``None`` before the first frame."""
        return statistics.median(self.samples.values()) if self.samples else None

    def limit(self, frames: int) -> float:
        """Seconds an attempt at ``frames`` frames may take."""
        if self.fixed is not None:
            return self.fixed
        spf = self.seconds_per_frame
        return self.first_limit if spf is None else max(self.floor, self.factor * spf * frames)

    def why(self, frames: int) -> str:
        """What the limit for ``frames`` frames comes from, for the error that names a late chunk."""
        if self.fixed is not None:
            return "--chunk-timeout"
        spf = self.seconds_per_frame
        if spf is None:
            return "no frame of the job was done yet"
        return (
            f"{self.factor:g}× its {frames} frames at the {spf:.2f} s per frame measured, at least {self.floor:.0f} s"
        )

    def late(self, frames_of: dict[int, int], now: float) -> list[int]:
        """Running chunks (index → frames) past their limit."""
        return [i for i, t in self.started.items() if i in frames_of and now - t > self.limit(frames_of[i])]
