"""The exception tree of distdream.

Every error the library raises on purpose derives from :class:`DistDreamError`, so a caller (and
the CLI) can catch one type and show one line. Messages name the offending input and what to do::

    DistDreamError
    ├── ConfigError      an impossible or unknown setting (also a ValueError)
    ├── ModelError       a model or its weights cannot be built or loaded
    ├── InputError       an input file is missing, unreadable or not what it claims to be
    ├── OutputError      an output cannot be written where it was asked for
    ├── VideoError       a video cannot be read, indexed, decoded, encoded or joined
    ├── JobError         a job cannot start or continue (work directory of another job, no cluster)
    │   └── ChunkFailed  a chunk failed on every attempt; names the chunk, its frames and the cause
    └── JobCancelled     the job was cancelled (Ctrl-C or Job.cancel()); finished chunks are kept

An error may carry a ``hint``: one more line saying what to do next (the CLI prints it under the
error, e.g. the command that resumes a failed render).
"""

from __future__ import annotations

__all__ = [
    "ChunkFailed",
    "ConfigError",
    "DistDreamError",
    "InputError",
    "JobCancelled",
    "JobError",
    "ModelError",
    "OutputError",
    "VideoError",
]


class DistDreamError(Exception):
    """Base class of every error distdream raises deliberately."""

    hint: str | None = None  # what to do next, one line (the CLI prints it under the error)


class ConfigError(DistDreamError, ValueError):
    """A setting is impossible (out of range) or unknown (no such model, layer or channel)."""


class ModelError(DistDreamError):
    """A model or its weights cannot be built or loaded (unknown name, offline, bad file)."""


class InputError(DistDreamError):
    """An input file is missing, unreadable, or not the kind of file it should be."""


class OutputError(DistDreamError):
    """An output cannot be written (missing or read-only directory, failed rename)."""


class VideoError(DistDreamError):
    """A video cannot be read (missing, empty, damaged, no video stream), encoded or joined."""


class JobError(DistDreamError):
    """A job cannot start or continue: a work directory of another job, no cluster to run on."""


class ChunkFailed(JobError):
    """A chunk failed on every attempt. The output path is left untouched."""

    def __init__(self, index: int, frames: tuple[int, int], attempts: int, cause: str) -> None:
        self.index, self.frames, self.attempts, self.cause = index, frames, attempts, cause
        super().__init__(
            f"chunk {index} (frames {frames[0]}–{frames[1] - 1}) failed {attempts} times; last cause: {cause}"
        )

    def __reduce__(self) -> tuple[object, ...]:  # picklable across processes with its fields
        return (ChunkFailed, (self.index, self.frames, self.attempts, self.cause))


class JobCancelled(DistDreamError):
    """The job was cancelled; finished chunks stay in its work directory for ``--resume``."""
