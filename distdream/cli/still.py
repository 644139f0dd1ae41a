"""Commands for one image and the networks: ``dream``, ``preview``, ``models``, ``layers``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from ..config import DreamConfig
from ..errors import ConfigError
from ..values import parse_weights
from .options import declared_options, dream_config

__all__ = ["dream", "dream_options", "layers", "models", "preview"]


def dream_options(func: Any) -> Any:
    """The flags of every :class:`DreamConfig` field (kebab-case of the seed tool's names), and --device."""
    func = click.option("--device", default=None, help="cpu, cuda, cuda:1 …; default: CUDA when present.")(func)
    return declared_options(DreamConfig)(func)


def _run_still(image: str, output: str, config: DreamConfig, device: str | None, quiet: bool) -> Any:
    from tqdm import tqdm

    from ..still import dream_image

    bar: list[tqdm] = []

    def on_start(dreamer: Any, total: int) -> None:
        bar.append(tqdm(total=total, unit="step", desc="dreaming", disable=quiet, file=sys.stderr))

    try:
        return dream_image(image, output, config, device=device, on_start=on_start, progress=lambda n: bar[0].update(n))
    finally:
        if bar:
            bar[0].close()


@click.command()
@click.argument("image", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Output image (.png, .jpg).")
@dream_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def dream(image: str, output: str, quiet: bool, **kw: Any) -> None:
    """Dream one IMAGE and write it to OUTPUT."""
    result = _run_still(image, output, dream_config(kw), kw["device"], quiet)
    click.echo(
        f"wrote {result.output} ({result.width}×{result.height}) in {result.seconds:.1f}s on {result.device} "
        f"({result.compute})"
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@click.command()
@click.argument("input", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    default="distdream-preview.png",
    show_default=True,
    type=click.Path(path_type=str),
    help="The grid picture (.png, .jpg).",
)
@click.option("--frame", type=int, default=0, show_default=True, help="Which frame of a video to dream.")
@click.option("--vary", default=None, help="One tile per value of a setting, e.g. learning_rate=0.01,0.02,0.04.")
@click.option("--size", type=int, default=320, show_default=True, help="Longer side of each tile in pixels.")
@dream_options
def preview(input: str, output: str, frame: int, vary: str | None, size: int, **kw: Any) -> None:
    """Dream one frame per layer (or per value of --vary) into a labelled grid: pick settings by eye."""
    from ..preview import parse_vary
    from ..preview import preview as make_preview

    if size < 16:
        raise ConfigError(f"--size {size}: give at least 16 pixels")
    t0 = time.perf_counter()
    path = make_preview(
        input,
        output,
        dream_config(kw),
        frame=frame,
        vary=parse_vary(vary) if vary else None,
        size=size,
        device=kw["device"],
    )
    click.echo(f"wrote {path} in {time.perf_counter() - t0:.1f}s")


@click.command()
def models() -> None:
    """List model names; '*' marks weights usable offline (bundled or cached)."""
    from ..models import DEFAULT_MODEL, available_models, weights_cached

    for name in available_models():
        mark = "*" if weights_cached(name) else " "
        note = "  (default; ImageNet weights bundled, works offline)" if name == DEFAULT_MODEL else ""
        click.echo(f"{mark} {name}{note}")


@click.command()
@click.argument("model", default="efficientnet_lite0")
@click.option(
    "--weights",
    default="none",
    show_default=True,
    help="Weights to load first (names and shapes do not depend on them).",
)
@click.option("--filter", "pattern", default="", help="Only layers whose name contains this text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def layers(model: str, weights: str, pattern: str, as_json: bool) -> None:
    """List MODEL's dreamable layers: name, channels, stride ('*' = used by default)."""
    from ..models import list_layers, load_model

    loaded = load_model(model, parse_weights(weights))
    infos = [info for info in list_layers(loaded) if pattern in info.name]
    if as_json:
        rows = [
            {"name": i.name, "channels": i.channels, "stride": i.stride, "default": i.name in loaded.default_layers}
            for i in infos
        ]
        click.echo(json.dumps({"model": model, "layers": rows}, indent=2))
        return
    width = max((len(i.name) for i in infos), default=10)
    click.echo(f"  {'layer':<{width}}  channels  stride")
    for i in infos:
        mark = "*" if i.name in loaded.default_layers else " "
        click.echo(f"{mark} {i.name:<{width}}  {i.channels:>8}  {i.stride:>6g}")
