"""Everything a render can check before its first frame is dreamed, on the driver, in seconds.

A typo must cost seconds, not a render: the input is probed; the model, layers, channels and
weights are resolved exactly as a worker resolves them; the start image is read; the output's
suffix must name a container that takes its codec (and the input's audio); no file of the output
may be a file of the input (compared file by file, through links); an image-sequence output's
existing files are refused without ``--overwrite``; its location must be writable (object
storage: a probe put and delete); the work directory must be ours or empty. Every failure is a
typed error with one line naming the input and the fix, and nothing has been written. No Ray here.

:func:`plan_record` then says what makes this job's pixels — the input's identity and the
*resolved* settings — for ``plan.json`` and its hash.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..compute import resolve_compute
from ..config import RenderConfig
from ..errors import ConfigError, JobError, OutputError, VideoError
from ..models import LoadedModel, Weights
from ..options import JobOptions
from ..video import (
    Format,
    VideoIndex,
    check_output_container,
    frame_file,
    is_pattern,
    packet_digest,
    probe,
)
from ..video.formats import describe, format_for, resolve_output
from ..video.naming import existing_numbers
from .pieces import Layout
from .workdir import PLAN_VERSION, check_workdir

__all__ = ["Checked", "location", "output_format", "plan_record", "preflight"]


def location(path: str | os.PathLike[str]) -> Path | str:
    """Local paths as Path, object-storage URIs as str."""
    return str(path) if storage.is_uri(path) else Path(path)


@dataclass(frozen=True)
class Checked:
    """What preflight found out and the rest of the job needs."""

    index: VideoIndex
    config: RenderConfig  # the job's, its codec resolved (an image-sequence output's by its suffix)
    layout: Layout
    output: Path | str
    workdir: Path | str
    owned_workdir: bool  # the default work directory, removed after success
    weights: Weights | None  # what the weights resolved to (None: random)
    model: LoadedModel | None = None  # the network as checked, for a worker in this process to reuse


def _input_files(input: str, index: VideoIndex) -> tuple[set[str], set[tuple[int, int]]]:
    """The input's files by real path (a sequence's every frame) and, where they exist, by inode."""
    if storage.is_uri(input):
        return {input.rstrip("/")}, set()
    names = (
        [frame_file(index.path, (index.first_number or 0) + i) for i in range(index.frame_count)]
        if index.is_sequence
        else [input]
    )
    paths, inodes = set(), set()
    for name in names:
        paths.add(os.path.realpath(name))
        with contextlib.suppress(OSError):
            st = os.stat(name)
            inodes.add((st.st_dev, st.st_ino))
    return paths, inodes


def _output_files(out: Path | str, layout: Layout, frames: tuple[int, int]) -> list[str]:
    """The files the output will be: numbered ones for a pattern, each as its folder's real path
    and its name (an output is written by renaming into that folder)."""
    if storage.is_uri(out):
        return [str(out).rstrip("/")]
    names = [frame_file(str(out), layout.offset + i) for i in range(*frames)] if is_pattern(out) else [str(out)]
    folders: dict[str, str] = {}
    return [
        os.path.join(
            folders.setdefault(os.path.dirname(n), os.path.realpath(os.path.dirname(n) or ".")), os.path.basename(n)
        )
        for n in names
    ]


def _check_not_input(input: str, index: VideoIndex, out: Path | str, layout: Layout, frames: tuple[int, int]) -> None:
    """Refuse an output any of whose files is one of the input's: through links, a directory
    input, ``%d`` against ``%04d`` and ``file://`` (compared file by file, by real path and inode)."""
    paths, inodes = _input_files(input, index)
    for name in _output_files(out, layout, frames):
        same = name in paths
        if not same and inodes:
            with contextlib.suppress(OSError):
                st = os.stat(name)
                same = (st.st_dev, st.st_ino) in inodes  # a hard link
        if same:
            what = "the input video" if not index.is_sequence else f"a frame of the input sequence ({name})"
            raise OutputError(f"output {out} would overwrite {what}; write the dream to another file or folder")


def _check_existing_frames(out: Path | str, options: JobOptions, saved_output: str | None) -> None:
    """An image-sequence output whose files exist is another render's unless ``--overwrite`` (or
    this job's own, on ``--resume``)."""
    if not is_pattern(out) or options.overwrite or (options.resume and saved_output == str(out)):
        return
    numbers = existing_numbers(str(out))
    if numbers:
        first = os.path.basename(frame_file(str(out), numbers[0]))
        raise OutputError(
            f"output {out} already holds {len(numbers)} frame file(s) ({first} …); pass --overwrite to "
            "replace them (and remove those outside the rendered range), or write to another pattern"
        )


def _check_workdir_writable(workdir: Path | str) -> None:
    if storage.is_uri(workdir):
        storage.check_container(str(workdir), JobError)
        return
    import tempfile

    existing = Path(workdir)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise JobError(
            f"work directory {workdir} cannot be made: {existing} is not a directory; choose another --workdir"
        )
    try:  # a real probe: permission bits say nothing to root or on a read-only mount
        with tempfile.NamedTemporaryFile(prefix=".distdream-probe.", dir=existing):
            pass
    except OSError as exc:
        raise JobError(
            f"work directory {workdir} cannot be made: {existing} is not writable ({exc.strerror}); "
            "choose another --workdir"
        ) from None


def preflight(
    input: str,
    output: str,
    config: RenderConfig,
    options: JobOptions,
    on_step: Callable[[str], None] = lambda _what: None,
) -> Checked:
    """Check everything that can be checked before Ray starts; see the module docstring.
    ``on_step`` hears of the slow steps as they begin ("checking the model")."""
    from ..dream import Dreamer
    from ..images import load_image

    out = location(output)
    index = probe(input, fps=config.fps)
    index.working_colour.check(f"input {input}")
    config, fmt = output_format(out, index, config)
    layout = Layout.of(fmt, index, str(out))
    frames = options.frame_range or (0, index.frame_count)
    if not 0 <= frames[0] < frames[1] <= index.frame_count:
        raise ConfigError(
            f"--frames {frames[0]}:{frames[1]} is outside {input}, which has frames 0:{index.frame_count}"
        )
    _check_not_input(input, index, out, layout, frames)
    if not is_pattern(out):
        check_output_container(out, index, fmt)
    storage.check_writable(out, OutputError)
    on_step("checking the model")
    dreamer = Dreamer(config.dream, device="cpu")  # model, weights, layers and channels, as a worker resolves them
    if config.dream.predefined_start is not None:
        load_image(config.dream.predefined_start, what="predefined_start")
    workdir = (
        location(options.workdir)
        if options.workdir
        else location(storage.join(storage.parent(out), f".{storage.name_of(out)}.distdream"))
    )
    _check_workdir_writable(workdir)
    _check_existing_frames(out, options, check_workdir(str(workdir)))
    return Checked(index, config, layout, out, workdir, options.workdir is None, dreamer.model.weights, dreamer.model)


def output_format(out: Path | str, index: VideoIndex, config: RenderConfig) -> tuple[RenderConfig, Format]:
    """The job's config with its codec resolved, and the format every piece is written in."""
    try:
        fmt = resolve_output(str(out), config.encoding, index)
    except VideoError as exc:
        raise OutputError(str(exc)) from None
    return replace(config, encoding=replace(config.encoding, codec=fmt.codec)), fmt


def _file_record(path: str | None) -> Any:
    if path is None:
        return None
    if os.path.isfile(path):
        return {"file": os.path.basename(path), "content": storage.fingerprint(path)}
    return path


def input_identity(input: str, index: VideoIndex) -> dict[str, Any]:
    """Which content this is, cheaply: a video's size, version and first and last packets; an image
    sequence's first and last three files (their content) and numbering."""
    if not index.is_sequence:
        return storage.identity(input) | {"packets": packet_digest(input, index)}
    first, n = index.first_number or 0, index.frame_count
    ends = sorted({*range(first, first + min(3, n)), *range(first + max(0, n - 3), first + n)})
    return {
        "first_number": first,
        "files": {
            os.path.basename(frame_file(index.path, k)): storage.fingerprint(frame_file(index.path, k)) for k in ends
        },
    }


def plan_record(
    input: str, index: VideoIndex, config: RenderConfig, weights: Weights | None, device: str, chunks: list[Chunk]
) -> dict[str, Any]:
    """What makes this job's pixels, as ``plan.json`` stores it (see :func:`~.workdir.differences`):
    ``config`` with its output format resolved (:func:`output_format`), ``weights`` as they resolved."""
    import torch

    from .. import __version__

    settings = config.to_dict() | {"output_format": describe(format_for(config.encoding, index))}
    dream = settings["dream"]
    for speed_only in ("channels_last", "compile"):
        # layout and compilation change speed, not the recipe (only rounding, as lanes and thread
        # counts do): a resume may switch them. Precision stays in: it is a choice about numbers.
        dream.pop(speed_only, None)
    settings.pop("carry_on_device", None)  # where the carry runs: rounding only, like the layout
    dream["precision"] = resolve_compute(config.dream, torch.device(device)).precision  # as it runs
    resolved = None if weights is None else _file_record(weights.file) if weights.file else weights.name
    dream["weights"] = {"given": config.dream.weights, "resolved": resolved}
    dream["predefined_start"] = _file_record(config.dream.predefined_start)
    identity = input_identity(input, index) | {
        "frames": index.frame_count,
        "width": index.width,
        "height": index.height,
        "pts": index.to_dict()["pts_deltas_zlib"],
    }
    return {
        "plan_version": PLAN_VERSION,
        "distdream": __version__,
        "input": str(input),
        "input_identity": identity,
        "settings": settings | {"distdream": __version__},
        "chunks": [c.to_dict() for c in chunks],
        "index": index.to_dict(),
    }
