"""How a render is split and run: :class:`JobOptions`, declared once (flag, config key, rule, help).

None of these change a pixel except the chunking ones (``chunk_frames``, ``overlap``, ``seams``,
``scan_cuts``, ``frame_range``). The engine's :func:`~distdream.engine.plan`,
:func:`~distdream.engine.submit` and :func:`~distdream.engine.render` take them as a
:class:`JobOptions` or as keyword shorthand (:func:`job_options_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .chunking import SEAMS
from .declare import Rule, check_fields, integer, number, one_of, setting, switch, text
from .errors import ConfigError

__all__ = ["JobOptions", "job_options_of", "parse_frame_range"]


RAY_USE = ("auto", "always", "never")  # JobOptions.ray


def _is_address(value: Any) -> bool:
    """``auto``, ``local``, ``HOST:PORT`` or ``SCHEME://HOST:PORT`` with a port in 1–65535."""
    if value in ("auto", "local"):
        return True
    if not isinstance(value, str) or not value:
        return False
    host, _, port = value.split("://", 1)[-1].rstrip("/").rpartition(":")
    return bool(host) and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535  # not '²


PROTOCOLS = Rule(
    'a list of storage protocol names, such as ["gs"]',
    lambda v: isinstance(v, (tuple, list)) and all(isinstance(p, str) and p.isidentifier() for p in v),
)
ADDRESS = Rule("auto, or HOST:PORT of the cluster's head (e.g. 10.0.0.5:6379, ray://head:10001)", _is_address)


def parse_frame_range(value: str | None) -> tuple[int, int] | None:
    """``--frames START:END``."""
    if not value:
        return None
    try:
        a, b = (int(x) for x in value.split(":"))
    except ValueError:
        raise ConfigError(f"--frames {value!r}: give START:END frame indices, e.g. 0:240") from None
    return a, b


def _frames_text(value: Any) -> Any:
    return ":".join(map(str, value)) if isinstance(value, list) else value  # a config file's [START, END]


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """How a render is split and run. None of these change a pixel except the chunking ones."""

    workers: int | None = setting(None, rule=integer(low=1), unset="one per GPU, else one per CPU", help="Ray workers.")
    gpus_per_worker: float | None = setting(
        None, rule=number(low=0), unset="1 if the cluster has GPUs, else 0", help="GPUs per worker."
    )
    # CPU workers get this many torch threads (rounded, at least 1)
    cpus_per_worker: float | None = setting(
        None,
        rule=number(above=0),
        cli=False,
        unset="1 on Ray; in this process, every CPU for frames of 256×144 or more, else 1",
        help="CPUs (and torch threads) per worker.",
    )
    lanes: int | None = setting(
        None,
        rule=integer(low=1, high=64),
        unset="8 on GPU, 1 on CPU",
        help="Chunks each worker dreams at once, as one batch.",
    )
    chunk_frames: int = setting(120, rule=integer(low=1), help="Frames owned by each chunk.")
    overlap: int | None = setting(
        None,
        rule=integer(low=0),
        unset="16, at most half of --chunk-frames",
        help="Lead-in frames dreamed by both neighbours and crossfaded at each crossfade seam.",
    )
    frame_range: tuple[int, int] | None = setting(
        None,
        flag="--frames",
        key="frames",
        parse=parse_frame_range,
        text=_frames_text,
        help="Render only frames START:END.",
    )
    workdir: str | None = setting(
        None,
        path="dir",
        rule=text("a directory path or object-storage URI"),
        unset="hidden folder beside the output, removed on success",
        help="Where chunks and the ledger live.",
    )
    resume: bool = setting(
        False, negatable=False, rule=switch(), help="Continue the job in --workdir; only missing chunks are rendered."
    )
    # an existing Ray cluster ("auto", "HOST:6379", "ray://…"); default: local
    address: str | None = setting(
        None, rule=ADDRESS, unset="start a local one", help="Ray cluster to run on (e.g. auto)."
    )
    ray: str = setting(
        "auto",
        rule=one_of(RAY_USE),
        help="Where workers run: auto (as threads of this process for a job on this "
        "machine's CPUs with at most 4 workers, or one worker; on Ray with --address, "
        "several GPUs or more workers), always (on Ray), or never (in this process).",
    )
    max_attempts: int = setting(3, rule=integer(low=1), cli=False, help="Tries per chunk before the job fails.")
    # the watchdog's limit per attempt; unset, it follows the job's own measured time per frame
    # (engine.watchdog.Watchdog)
    chunk_timeout: float | None = setting(
        None,
        rule=number(above=0),
        unset="10× the chunk's expected time as measured, at least 5 min",
        help="Seconds a chunk may run before its worker is restarted and the chunk retried "
        "(in this process, where a thread cannot be killed, the job stops, naming the chunk).",
    )
    resource_wait: float | None = setting(
        None,
        rule=number(low=0),
        unset="0 on a local instance, 600 on a cluster that may autoscale",
        help="Seconds to wait for a node that can host a worker before failing.",
    )
    overwrite: bool = setting(
        False,
        negatable=False,
        rule=switch(),
        help="Replace an image-sequence output's existing files (those outside the rendered "
        "range are removed when the job succeeds).",
    )
    unsafe_lock: tuple[str, ...] = setting(
        (),
        multiple=True,
        rule=PROTOCOLS,
        help="Lock a work directory on this object-storage protocol (e.g. gs) "
        "although it has no conditional writes: two jobs could both take it. "
        "Repeatable.",
    )
    max_restarts: int = setting(3, rule=integer(low=0), cli=False, help="Restarts per actor.")
    start_timeout: float = setting(
        600.0, rule=number(above=0), cli=False, help="Seconds a new worker may take to answer its first ping."
    )
    max_start_failures: int = setting(
        3,
        rule=integer(low=1),
        cli=False,
        help="Workers that fail to start (raise, die, or time out) before the job fails.",
    )
    connect_timeout: float = setting(
        30.0, rule=number(above=0), cli=False, help="Seconds to reach an existing cluster."
    )
    scan_cuts: bool = setting(
        True, rule=switch(), help="Scan for scene cuts first (in parallel) and put chunk boundaries on them."
    )
    seams: str = setting(
        "auto",
        rule=one_of(SEAMS),
        help="Boundaries inside a shot: handoff (exact, one after another), crossfade (parallel), "
        "or auto (handoffs until a chain would hold more than its share of the work).",
    )
    keep_source_time: bool = setting(
        False,
        negatable=False,
        rule=switch(),
        shown="it starts at 0",
        help="A --frames range keeps the source's timestamps.",
    )

    def validate(self) -> JobOptions:
        check_fields(self)
        if self.ray == "never" and self.address:
            raise ConfigError(f"--ray never runs in this process; it cannot use the cluster --address {self.address}")
        return self


def job_options_of(options: JobOptions | None, shorthand: Mapping[str, Any]) -> JobOptions:
    """``options`` (default: all defaults) with the keyword ``shorthand`` applied, validated; an
    unknown keyword is a :class:`~distdream.errors.ConfigError`."""
    try:
        merged = replace(options or JobOptions(), **shorthand)
    except TypeError as exc:
        raise ConfigError(f"unknown job option: {exc}") from None
    return merged.validate()
