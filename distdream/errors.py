"""The exception tree of distdream.

Every error the library raises on purpose derives from :class:`DistDreamError`, so a caller (and
the CLI) can catch one type and show one line. Messages name the offending input and what to do::

    DistDreamError
    ├── ConfigError      an impossible or unknown setting (also a ValueError)
    ├── ModelError       a model or its weights cannot be built or loaded
    ├── InputError       an input file is missing, unreadable or not what it claims to be
    ├── OutputError      an output cannot be written where it was asked for
    └── VideoError       a video cannot be read, indexed, decoded, encoded or joined
"""

from __future__ import annotations

__all__ = ["ConfigError", "DistDreamError", "InputError", "ModelError", "OutputError", "VideoError"]


class DistDreamError(Exception):
    """Base class of every error distdream raises deliberately."""


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
