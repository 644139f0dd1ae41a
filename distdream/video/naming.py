"""How outputs are named: printf patterns (``plate.%05d.png``), their files and suffixes, the
family of files a pattern shares with others, and the temporary files their writers leave.

Naming only, no decoding: the output-format checks, the engine's locks and resume and the
sequence reader and writer all ask these questions, so they live at the bottom of
:mod:`distdream.video`.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from .. import storage

__all__ = [
    "PATTERN",
    "SUFFIXES",
    "existing_numbers",
    "family",
    "frame_file",
    "is_pattern",
    "is_sequence",
    "sweep_temps",
]

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


def family(path: str) -> str:
    """What every output that can name the same files shares: ``path`` with its number's place
    written ``#``, whatever its width (``d.%04d.png`` and ``d.%d.png`` both name ``d.1000.png``;
    both are ``d.#.png``). A path without a pattern is its own family."""
    directory, name = os.path.split(path)
    return os.path.join(directory, PATTERN.sub("#", name, count=1))


def sweep_temps(output: str) -> int:
    """Remove the temporary files that killed writers of ``output`` (a file, or a pattern: every
    width of it) left beside it (``.NAME.*.partial.SUFFIX``, see
    :func:`distdream.storage.temp_for`); returns how many. Call it only while nothing writes
    them: while holding the output's lease."""
    directory, name = os.path.split(output)
    stem, suffix = os.path.splitext(name)
    if storage.is_uri(output) or not os.path.isdir(directory or "."):
        return 0  # an object store's temporary files are local ones, in the temp folder
    m = PATTERN.search(stem)
    number = (re.escape(stem[: m.start()]) + r"\d+" + re.escape(stem[m.end() :])) if m else re.escape(stem)
    temp = re.compile(r"\." + number + r"\.[^.]+\.partial" + re.escape(suffix) + "$")
    swept = 0
    for entry in os.listdir(directory or "."):
        if temp.match(entry):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))
                swept += 1
    return swept
