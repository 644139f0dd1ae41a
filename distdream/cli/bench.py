"""``distdream bench``: flags → a :class:`~distdream.bench.BenchPlan` → the run, its JSON and plot."""

from __future__ import annotations

import json
from typing import Any

import click

from ..bench import SECTIONS
from ..errors import ConfigError

__all__ = ["bench"]


def _size(value: str | None, flag: str = "--frame-size") -> tuple[int, int] | None:
    if not value:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: give WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 32 or h < 32:
        raise ConfigError(f"{flag} {value!r}: give at least 32×32 pixels")
    return w, h


def _counts(value: str, flag: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: give lane counts separated by commas, e.g. 1,2,4,8") from None
    if not counts or min(counts) < 1:
        raise ConfigError(f"{flag} {value!r}: give lane counts of at least 1")
    return counts


def _write_json(path: str, figures: dict[str, Any]) -> None:
    from .. import storage

    storage.write_text(path, json.dumps(figures, indent=2) + "\n")


@click.command()
@click.option("--quick", is_flag=True, help="Fewer repeats and a shorter clip (rough figures in seconds).")
@click.option(
    "--only",
    "sections",
    multiple=True,
    help=(
        f"Run only these parts, e.g. step,lanes ({', '.join(SECTIONS)}). "
        "[default: all this machine runs, but compile and parity]"
    ),
)
@click.option(
    "--size", "sizes", type=int, multiple=True, help="Square image side for the dream step (repeatable). [default: 256]"
)
@click.option(
    "--frame-size",
    default=None,
    help="Frame size for the lanes, render and halving figures, WxH. [default: 1280x720 on CUDA, 160x90 on CPU]",
)
@click.option("--lanes", "lane_counts", default="1,2,4,8", show_default=True, help="Lane counts for the lanes figures.")
@click.option("--compile", "with_compile", is_flag=True, help="Add torch.compile rows to the lanes figures.")
@click.option(
    "--render-size",
    "render_sizes",
    multiple=True,
    help="Frame size of an in-process render, WxH (repeatable). [default: --frame-size]",
)
@click.option("--render-frames", type=int, default=None, help="Frames per render. [default: 120 on CUDA, 24 on CPU]")
@click.option("--render-lanes", default="1", show_default=True, help="Lane counts for the renders, e.g. 1,8.")
@click.option(
    "--render-carry",
    default="auto",
    show_default=True,
    help="Where each render's carry runs, e.g. device,host: auto (the device on CUDA), device, host.",
)
@click.option("--device", default=None, help="cpu, cuda …; default: CUDA when present.")
@click.option(
    "--time-limit",
    type=float,
    default=None,
    help="Seconds; parts that would start later are skipped (what ran is kept).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write the figures to this JSON file (rewritten after every part).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also draw the figures into this PNG.",
)
@click.option("--workers", type=int, default=None, help="N for the scaling figure. [default: the CPUs or GPUs]")
def bench(
    quick: bool,
    sections: tuple[str, ...],
    sizes: tuple[int, ...],
    frame_size: str | None,
    lane_counts: str,
    with_compile: bool,
    render_sizes: tuple[str, ...],
    render_frames: int | None,
    render_lanes: str,
    render_carry: str,
    device: str | None,
    time_limit: float | None,
    json_path: str | None,
    plot_path: str | None,
    workers: int | None,
) -> None:
    """Measure dream step, video I/O, the engine, lanes × precision and renders, each beside its reference.

    Every part but the engine, parity and startup sections runs without Ray. Interrupted (Ctrl-C,
    or timeout -s INT), it still writes the JSON and plot of what it measured.
    """
    from ..bench import BenchPlan, plot, run_sections

    plan = BenchPlan(
        sections=tuple(part.strip() for value in sections for part in value.split(",") if part.strip()),
        quick=quick,
        device=device,
        step_sizes=sizes or (256,),
        frame_size=_size(frame_size),
        lanes=_counts(lane_counts, "--lanes"),
        compile=with_compile,
        render_sizes=tuple(size for v in render_sizes if (size := _size(v, "--render-size")) is not None),
        render_frames=render_frames,
        render_lanes=_counts(render_lanes, "--render-lanes"),
        render_carry=tuple(v.strip() for v in render_carry.split(",") if v.strip()),
        workers=workers,
        time_limit=time_limit,
    ).validate(SECTIONS)
    figures: dict[str, Any] = {}
    save = (lambda f: _write_json(json_path, f)) if json_path else None
    try:
        run_sections(plan, figures, echo=click.echo, save=save)
    except KeyboardInterrupt:
        click.secho(
            "interrupted; the figures measured so far are kept" + (f" in {json_path}" if json_path else ""),
            fg="red",
            err=True,
        )
        raise click.exceptions.Exit(130) from None
    finally:  # also when interrupted: keep what was measured
        if plot_path and any(k in figures for k in SECTIONS):
            plot(figures, plot_path)
            click.echo(f"wrote {plot_path}")
