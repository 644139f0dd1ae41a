"""How a setting's value is read: from a flag's text, a config file's TOML value or Python.

The settings records (:mod:`distdream.config`) name these as their fields' parsers; the CLI and
the engine use a few directly (a weights value that names a file, a frame rate).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from .errors import ConfigError

__all__ = [
    "ALL_LAYERS",
    "ChannelSpec",
    "channels_text",
    "layers_text",
    "looks_like_path",
    "normalize_channels",
    "parse_channels",
    "parse_rate",
    "parse_tile_size",
    "parse_weights",
]

# Key of ``channels`` that applies to every dream layer without its own entry.
ALL_LAYERS = "*"

ChannelSpec = tuple[tuple[str, tuple[int, ...]], ...]


def normalize_channels(value: Any) -> ChannelSpec:
    """Accept ``{layer: [i, …]}``, ``[(layer, [i, …]), …]`` or ``[i, …]`` (all layers)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            items = [(ALL_LAYERS, value)] if len(value) else []
        else:
            items = list(value)
    else:
        raise ConfigError(f"channels must be a list of indices or a mapping layer → indices, not {value!r}")
    out = []
    for item in items:
        try:
            layer, idx = item
            indices = tuple(int(i) for i in idx)
        except (TypeError, ValueError):
            raise ConfigError(f"channels entry {item!r} is not (layer, [indices])") from None
        out.append((str(layer), indices))
    return tuple(sorted(out))


def parse_rate(value: Any) -> Fraction | None:
    """A frame rate as a positive fraction ("24", "29.97", "24000/1001"), or None if it is not one."""
    try:
        rate = Fraction(str(value)).limit_denominator(1_000_000)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def looks_like_path(weights: str | os.PathLike[str]) -> bool:
    """Whether a ``--weights`` value names a state-dict file rather than a weights name."""
    text = os.fspath(weights)
    return os.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors")) or os.path.exists(text)


def parse_weights(value: str | None) -> str | None:
    """``none`` or ``random`` (any case) on the command line mean no weights."""
    return None if isinstance(value, str) and value.lower() in {"none", "random"} else value


def parse_tile_size(value: Any) -> int | None:
    """Pixels, or ``none`` / ``off`` / ``0`` for no tiling."""
    if value is None or (isinstance(value, str) and value.lower() in {"0", "none", "off"}):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--tile-size {value!r}: give pixels (e.g. 1024) or 'none'") from None


def parse_channels(values: Sequence[str]) -> dict[str, list[int]]:
    """``--channels 3,7`` (every layer) or ``--channels LAYER=3,7`` (one layer), repeatable."""
    out: dict[str, list[int]] = {}
    for value in values:
        layer, _, indices = value.rpartition("=")
        try:
            parsed = [int(i) for i in indices.split(",") if i.strip()]
        except ValueError:
            raise ConfigError(f"--channels {value!r}: give comma-separated integers, optionally LAYER=3,7") from None
        out.setdefault(layer or ALL_LAYERS, []).extend(parsed)
    return out


def channels_text(value: Any) -> list[str]:
    """A config file's ``{layer: [3, 7]}`` or ``[3, 7]`` as ``--channels`` values."""
    if isinstance(value, Mapping):
        return [f"{layer}={','.join(map(str, idx))}" for layer, idx in value.items()]
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return [",".join(map(str, value))]
    return [value] if isinstance(value, str) else list(value)


def layers_text(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value  # a config file's list
