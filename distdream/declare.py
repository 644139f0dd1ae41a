"""A setting declared once: a dataclass field that carries its help, its flag and its rule.

Every user-facing setting of :mod:`distdream.config` and :class:`~distdream.engine.JobOptions` is
a field made by :func:`setting`. From that one declaration the command line builds its option
(:mod:`distdream.cli.options`: flag, type, default, help), ``--config`` files take the same key,
and :func:`check_fields` validates the value with a message that names the field and its flag.
Adding a setting is adding one field; only rules that relate several fields stay hand-written in
the record's ``validate``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = [
    "Declared",
    "Rule",
    "check_fields",
    "check_file_value",
    "declared",
    "flag_of",
    "integer",
    "number",
    "one_of",
    "setting",
    "switch",
    "text",
]

_KEY = "distdream"  # where a field's declaration lives in its metadata


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``test`` decides, ``says`` completes "it must be …"."""

    says: str
    test: Callable[[Any], bool]
    choices: tuple[str, ...] = ()  # for a choice: the command line offers exactly these


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int | None = None, high: int | None = None, unit: str = "") -> Rule:
    """An integer, at least ``low`` and at most ``high`` where given."""
    says = (
        "an integer"
        + (f" in {low}–{high}" if low is not None and high is not None else f" >= {low}" if low is not None else "")
        + (f" ({unit})" if unit else "")
    )
    return Rule(says, lambda v: _is_int(v) and (low is None or v >= low) and (high is None or v <= high))


def number(*, low: float | None = None, above: float | None = None, high: float | None = None) -> Rule:
    """A finite number: ``>= low`` or ``> above``, and ``<= high`` where given."""
    if high is not None:
        says = f"in [{low:g}, {high:g}]" if low is not None else f"in ({above:g}, {high:g}]"
    else:
        says = f"a finite number >= {low:g}" if low is not None else f"a finite number > {above:g}"
    return Rule(
        says,
        lambda v: (
            _is_number(v) and (low is None or v >= low) and (above is None or v > above) and (high is None or v <= high)
        ),
    )


def one_of(choices: Sequence[str]) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda v: v in choices, tuple(choices))


def switch() -> Rule:
    """A bool: a TOML string such as "yes" is not a switch."""
    return Rule("true or false", lambda v: isinstance(v, bool))


def text(says: str) -> Rule:
    """A non-empty string."""
    return Rule(says, lambda v: isinstance(v, str) and bool(v))


@dataclass(frozen=True)
class Declared:
    """One field's declaration: how it is offered, explained and checked."""

    help: str
    rule: Rule | None = None
    unset: str | None = None  # what None means, where None is allowed ("auto", "no tiling" …); help shows it
    flag: str | None = None  # the command-line spelling; default: --kebab-case of the field
    key: str | None = None  # the option's (and config file's) name; default: the field's
    cli: bool = True  # offered on the command line (and in config files)
    parse: Callable[[Any], Any] | None = None  # command-line text → the field's value
    text: Callable[[Any], Any] | None = None  # a config file's value (a list, a table) → command-line text
    shown: str | None = None  # the default as help shows it, where neither the default nor ``unset`` says it
    negatable: bool = True  # a bool as --x/--no-x (else a plain --x)
    multiple: bool = False  # the flag may be repeated
    path: str | None = None  # "file" or "dir": the value names one


def setting(default: Any, **declaration: Any) -> Any:
    """A dataclass field with its default and declaration (see :class:`Declared` for the keywords)."""
    return dataclasses.field(default=default, metadata={_KEY: Declared(**declaration)})


def declared(cls: type) -> list[tuple[dataclasses.Field[Any], Declared]]:
    """The declared fields of a dataclass, in order."""
    return [(f, f.metadata[_KEY]) for f in dataclasses.fields(cls) if _KEY in f.metadata]


def flag_of(field: dataclasses.Field[Any], decl: Declared) -> str:
    return decl.flag or "--" + field.name.replace("_", "-")


def _broken(f: dataclasses.Field[Any], decl: Declared, value: Any, shown: Any = None) -> str | None:
    """Why ``value`` breaks the field's rule, as the error's text (naming ``shown``, the value as
    given, where that differs), or ``None`` if it keeps it."""
    if decl.rule is None or (value is None and decl.unset is not None) or decl.rule.test(value):
        return None
    name = decl.key or f.name  # as the user spells it in a config file
    where = f"{name} ({flag_of(f, decl)})" if decl.cli else name
    rule = decl.rule.says + (f", or unset ({decl.unset})" if decl.unset is not None else "")
    return f"{where} is {value if shown is None else shown!r}; it must be {rule}"


def check_fields(record: Any) -> None:
    """Raise :class:`ConfigError` for the first declared field whose value breaks its rule."""
    for f, decl in declared(type(record)):
        why = _broken(f, decl, getattr(record, f.name))
        if why is not None:
            raise ConfigError(why)


def check_file_value(f: dataclasses.Field[Any], decl: Declared, value: Any) -> Any:
    """A config file's ``value`` for the field, as command-line text where the field takes text
    (``decl.text``), checked against the field's type and rule before anything converts it: a
    TOML ``true`` or ``2.9`` where an integer belongs is an error, not 1 or 2."""
    name = decl.key or f.name
    given = value
    if decl.text is not None:
        value = decl.text(value)
        texts = value if decl.multiple and isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in texts):
            raise ConfigError(f"{name} is {given!r} in the config file; give it as on the command line")
    elif decl.rule is None and decl.parse is None and not isinstance(value, str):  # an untyped setting is text
        raise ConfigError(f"{name} is {given!r} in the config file; it must be text")
    why = _broken(f, decl, decl.parse(value) if decl.parse is not None else value, given)
    if why is not None:
        raise ConfigError(why)
    return value
