"""The contract of a chunk runner: what a :class:`~.job.Job` drives, whoever dreams the chunks.

Two runners keep it: :class:`~.ray_runner.RayRunner` (Ray actors, one per worker) and
:class:`~.thread_runner.ThreadRunner` (threads of this process). Each holds a
:class:`~.schedule.Schedule` (the queue, retries, the ledger) and nothing runs until
:meth:`ChunkRunner.start`. The job then calls :meth:`~ChunkRunner.launch_seams` once (windows
whose sides a resume kept), :meth:`~ChunkRunner.step` while :meth:`~ChunkRunner.busy`, and
:meth:`~ChunkRunner.stop` in every case; :meth:`~ChunkRunner.summary` says what was done.
"""

from __future__ import annotations

from typing import Protocol

from .schedule import RunSummary, Schedule

__all__ = ["ChunkRunner"]


class ChunkRunner(Protocol):
    """What a job drives; see the module docstring."""

    schedule: Schedule

    def start(self) -> None:
        """Start the workers (actors or threads); each is counted up once it can dream."""

    def workers_up(self) -> tuple[int, int]:
        """(workers ready to dream, workers asked for)."""

    def launch_seams(self) -> None:
        """Crossfade every seam window whose two sides are dreamed and that is not being made."""

    def busy(self) -> bool:
        """Whether chunks are queued or running, or windows being crossfaded."""

    def step(self) -> None:
        """Hand out chunks, take in what finished (retrying or failing), within about half a
        second; raises what fails the job."""

    def stop(self) -> None:
        """End the workers, abandoning what is in flight; bounded in time."""

    def summary(self) -> RunSummary:
        """What this pass did."""
