"""The parameters page, made from the declared settings (:mod:`distdream.declare`), their one source.

The docs site's ``reference/parameters.md`` is this module's output (the MkDocs hook in
``docs/hooks.py`` writes it at build time), so the page cannot disagree with ``--help``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import DreamConfig, Encoding, FlowConfig, RenderConfig
from .declare import declared, flag_of
from .options import JobOptions

__all__ = ["RECORDS", "parameters_markdown"]

# (section title, record, what it holds), in the order a user meets them
RECORDS: tuple[tuple[str, type, str], ...] = (
    ("Dream", DreamConfig, "how each image or frame is dreamed (`DreamConfig`; `[dream]` in a config file)"),
    ("Video", RenderConfig, "how a video's frames carry the dream and are written (`RenderConfig`)"),
    ("Flow", FlowConfig, "the optical flow that carries the dream (`FlowConfig`; `[flow]`)"),
    ("Encoding", Encoding, "how the output is encoded (`Encoding`, `RenderConfig.encoding`; `[encoding]`)"),
    ("Job", JobOptions, "where and how a render runs (`JobOptions`; `[job]`)"),
)


def _default(f: dataclasses.Field[Any], unset: str | None, shown: str | None) -> str:
    if shown is not None:
        return shown
    if f.default is dataclasses.MISSING:
        return "required"
    if f.default is None:
        return unset or "none"
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    if f.default == ():
        return "none"
    return f"`{f.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parameters_markdown() -> str:
    """Every declared setting, a table per record: name, flag, default and meaning."""
    out = [
        "# Parameters",
        "",
        "Every setting, as declared in `distdream/config.py` and `distdream/options.py` (this page is",
        "generated from those declarations at build time, as `--help` is). A setting's name is its",
        "`--config` key and its Python keyword; its flag is the command line's spelling. Settings",
        "without a flag are for the Python API and config files.",
        "",
    ]
    for title, record, says in RECORDS:
        rows = []
        for f, decl in declared(record):
            name = decl.key or f.name
            flag = f"`{flag_of(f, decl)}`" if decl.cli else "—"
            rows.append(f"| `{name}` | {flag} | {_cell(_default(f, decl.unset, decl.shown))} | {_cell(decl.help)} |")
        if not rows:
            continue
        out += [f"## {title}", "", f"{says[0].upper()}{says[1:]}.", "", "| setting | flag | default | meaning |"]
        out += ["|---|---|---|---|", *rows, ""]
    return "\n".join(out)
