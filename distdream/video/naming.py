"""How image sequences are named: printf patterns (``plate.%05d.png``), their files and suffixes.

Pure naming, no decoding: the output-format checks, the engine's resume and the sequence reader
and writer all ask these questions, so they live at the bottom of :mod:`distdream.video`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import storage

__all__ = ["PATTERN", "SUFFIXES", "existing_numbers", "frame_file", "is_pattern", "is_sequence"]

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
PATTERN = re.compile(r"%(0?)(\d*)d")  # the number's place in a file name


def is_sequence(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an image sequence: a printf pattern, or a local directory."""
    text = str(path)
    return bool(PATTERN.search(Path(text).name)) or (not storage.is_uri(text) and Path(text).is_dir())


def is_pattern(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a printf pattern (how an image-sequence output is named)."""
    return bool(PATTERN.search(Path(str(path)).name))


def frame_file(pattern: str, number: int) -> str:
    """The file of ``number`` in ``pattern``."""
    directory, name = os.path.split(pattern)
    return os.path.join(directory, PATTERN.sub(lambda m: f"{number:{m.group(1)}{m.group(2)}d}", name, count=1))


def _matcher(name: str) -> re.Pattern[str]:
    m = PATTERN.search(name)
    assert m is not None
    width = int(m.group(2) or 0)
    digits = rf"\d{{{width},}}" if m.group(1) and width else r"\d+"
    return re.compile(re.escape(name[: m.start()]) + f"({digits})" + re.escape(name[m.end() :]) + "$")


def existing_numbers(pattern: str) -> list[int]:
    """The numbers of the files ``pattern`` names that exist, in order (none if its folder does not)."""
    directory, name = os.path.split(pattern)
    if not os.path.isdir(directory or "."):
        return []
    matcher = _matcher(name)
    numbers = []
    for entry in os.listdir(directory or "."):
        m = matcher.match(entry)
        if m and os.path.basename(frame_file(pattern, int(m.group(1)))) == entry:
            numbers.append(int(m.group(1)))
    return sorted(numbers)
