"""Command-line options made from the settings' declarations, and the records built back from them.

Each option of ``dream``, ``render``, ``submit`` and ``preview`` that sets a field of
:class:`~distdream.config.DreamConfig`, :class:`~distdream.config.FlowConfig`,
:class:`~distdream.config.RenderConfig`, :class:`~distdream.config.Encoding` or
:class:`~distdream.options.JobOptions` is generated from that field's
:func:`~distdream.declare.setting`: flag, type, choices, default and help. A ``--config`` file's
keys are the same names. Nothing here knows an individual setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from ..config import DreamConfig, Encoding, FlowConfig, RenderConfig
from ..declare import Declared, check_file_value, declared, flag_of
from ..errors import ConfigError
from ..options import JobOptions

__all__ = ["as_flags", "declared_options", "dream_config", "job_options", "load_config_file", "render_config"]

F = typing.TypeVar("F", bound=Callable[..., Any])


def _base(hint: Any) -> Any:
    """``int | None`` → ``int``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def _option(field: dataclasses.Field[Any], decl: Declared, hint: Any) -> Callable[[F], F]:
    flag, key = flag_of(field, decl), decl.key or field.name
    default = field.default
    base = _base(hint)
    shown = decl.shown or (decl.unset if default is None else None)
    extra: dict[str, Any] = {}
    if base is bool:
        decls = [f"{flag}/--no-{flag[2:]}" if decl.negatable else flag]
        extra = {} if decl.negatable else {"is_flag": True}
    else:
        decls = [flag]
        if decl.rule is not None and decl.rule.choices:
            extra["type"] = click.Choice(decl.rule.choices)
        elif decl.path:
            extra["type"] = click.Path(dir_okay=decl.path == "dir", file_okay=decl.path == "file", path_type=str)
        else:  # anything but a plain number is text, for the field's own parser
            extra["type"] = base if decl.parse is None and base in (int, float) else str
    if default == () and not decl.multiple:
        default = None  # an empty tuple is no text; unset, the field keeps its own default
    return click.option(
        *decls,
        key,
        default=default,
        multiple=decl.multiple,
        show_default=shown is None and default not in (None, ()),
        help=decl.help + (f" [default: {shown}]" if shown else ""),
        **extra,
    )


def declared_options(*classes: type, skip: Iterable[str] = ()) -> Callable[[F], F]:
    """A decorator adding the command-line options of the classes' declared fields, in order."""
    skipped = set(skip)
    options = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        options += [
            _option(f, d, hints[f.name]) for f, d in declared(cls) if d.cli and (d.key or f.name) not in skipped
        ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _values(cls: type, kw: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` that the command's keyword arguments set, parsed."""
    out = {}
    for f, decl in declared(cls):
        key = decl.key or f.name
        if decl.cli and key in kw and not (kw[key] is None and f.default is not None):
            out[f.name] = decl.parse(kw[key]) if decl.parse is not None else kw[key]
    return out


def dream_config(kw: dict[str, Any]) -> DreamConfig:
    return DreamConfig(**_values(DreamConfig, kw)).validate()


def render_config(kw: dict[str, Any]) -> RenderConfig:
    return RenderConfig(
        dream=DreamConfig(**_values(DreamConfig, kw)),
        flow=FlowConfig(**_values(FlowConfig, kw)),
        encoding=Encoding(**_values(Encoding, kw)),
        **_values(RenderConfig, kw),
    ).validate()


def job_options(kw: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~distdream.engine.JobOptions` fields the command's keyword arguments set."""
    return _values(JobOptions, kw)


def load_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--config job.toml``: its keys become the defaults of the flags, which still override them."""
    if not value:
        return value
    import tomllib

    try:
        data = tomllib.loads(Path(value).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {value} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {value} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, item in data.items():  # sections ([dream], [job] …) are only for readability
        flat.update(item if isinstance(item, dict) and key != "channels" else {key: item})
    known = {p.name for p in ctx.command.params}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(
            f"config file {value}: unknown setting(s) {', '.join(unknown)}; see `distdream render --help`"
        )
    unchecked = set(flat)
    for cls in (DreamConfig, FlowConfig, RenderConfig, Encoding, JobOptions):
        for f, decl in declared(cls):
            key = decl.key or f.name
            if key in flat:  # typed as declared; text as it would be typed (the resume hint writes it back)
                unchecked.discard(key)
                try:
                    flat[key] = check_file_value(f, decl, flat[key])
                except ConfigError as exc:
                    raise ConfigError(f"config file {value}: {exc}") from None
    params = {p.name: p for p in ctx.command.params}
    for key in unchecked:  # input, output, quiet …: the command's own flags, typed as the flag is
        try:
            _check_flag_value(params[key], flat[key])
        except ConfigError as exc:
            raise ConfigError(f"config file {value}: {exc}") from None
    ctx.default_map = {**(ctx.default_map or {}), **flat}
    return value


def _check_flag_value(param: click.Parameter, item: Any) -> None:
    """A config file's value for a flag with no declared setting behind it, of the flag's type:
    TOML ``input = 5`` or ``output = true`` is an error, not a traceback further on."""
    kind = param.type
    if isinstance(kind, click.types.BoolParamType):
        ok, want = isinstance(item, bool), "true or false"
    elif isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        ok, want = isinstance(item, (int, float)) and not isinstance(item, bool), "a number"
    else:  # paths and text
        ok, want = isinstance(item, str) and item != "", 'text, e.g. "clip.mp4"'
    if not ok:
        raise ConfigError(f"{param.name} is {item!r} in the config file; it must be {want}")
    try:
        kind.convert(item, param, None)  # a range, a choice
    except click.BadParameter as exc:
        raise ConfigError(f"{param.name} is {item!r} in the config file: {exc.format_message()}") from None


def as_flags(ctx: click.Context, skip: set[str]) -> list[str]:
    """The command's options the user set (on the command line or in ``--config``), written back as flags.

    Asks click where each value came from rather than comparing with ``param.default``: click 8.5
    reports an undeclared default as its ``UNSET`` sentinel, so a comparison says every flag changed.
    """
    from click.core import ParameterSource

    out: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in skip:
            continue
        if ctx.get_parameter_source(param.name) in (None, ParameterSource.DEFAULT):
            continue
        value = ctx.params.get(param.name)
        if value is None or (param.multiple and not value):
            continue
        flag = max(param.opts, key=len)
        if param.is_flag:
            if value:
                out.append(flag)
            elif param.secondary_opts:  # --no-… of an on/off pair
                out.append(max(param.secondary_opts, key=len))
        elif param.multiple:
            for item in value:
                out += [flag, str(item)]
        else:
            out += [flag, str(value)]
    return out
