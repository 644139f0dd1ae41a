"""Output paths: fail early when one cannot be written, and write beside it under a temp name.

Every output of distdream (images, segments, videos, job files) is written to a temporary name in
its final directory and renamed into place: a rename within one filesystem is atomic, so a reader
sees the whole file or none of it, and a crash leaves no torn file at the final path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import DistDreamError, OutputError

__all__ = ["check_output_path", "save_figure", "temp_sibling"]


def check_output_path(path: str | os.PathLike[str], *, error: type[DistDreamError] = OutputError) -> Path:
    """Raise ``error`` unless a file can be created at ``path`` (directory exists and is writable)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"output directory {parent} does not exist; create it or choose another output path")
    if path.is_dir():
        raise error(f"output path {path} is a directory; give a file name inside it")
    try:  # a real probe: permission bits say nothing to root or on a read-only mount
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise error(f"output directory {parent} is not writable ({exc.strerror}); choose another output path") from None
    return path


def _umask() -> int:
    """The process's umask, read without changing it (Linux); else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)
    return mask


def temp_sibling(final: str | os.PathLike[str], tag: str = "partial") -> Path:
    """A new empty file beside ``final``, named so that it keeps ``final``'s extension.

    The extension matters: muxers and image writers pick their format from it. The file gets the
    permissions a plain ``open()`` would give ``final`` under the user's umask (``mkstemp`` makes
    it private, and the rename would carry that onto the output).
    """
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".{tag}{final.suffix}", dir=final.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib figure to ``path`` as PNG under a temp name, rename it, close it."""
    import matplotlib.pyplot as plt

    out = Path(path)
    tmp = temp_sibling(out)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
