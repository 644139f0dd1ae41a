"""Commands for videos: ``render`` (the engine on Ray), ``metrics``, ``demo``, ``probe``."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ..config import FLOW_METHODS, Encoding, FlowConfig, RenderConfig
from ..errors import ConfigError, DistDreamError
from ..options import RAY_USE, JobOptions, parse_frame_range
from ..stops import Stopped, exit_ending_children, signals_stop
from .display import RenderDisplay
from .options import as_flags, declared_options, job_options, load_config_file, render_config
from .still import dream_options

__all__ = ["demo", "metrics", "probe", "render", "render_inputs"]

STOP_WAIT = 10.0  # seconds a stopped render's job may take to wind down (its process has 25 in all)


def render_inputs(output_help: str, skip: Sequence[str] = ()) -> Any:
    """What ``render`` and ``submit`` share: --config, INPUT, -o and every render and job setting."""

    def decorate(func: Any) -> Any:
        options: list[Callable[[Any], Any]] = [
            click.option(
                "--config",
                type=click.Path(dir_okay=False, path_type=str),
                callback=load_config_file,
                is_eager=True,
                expose_value=False,
                help="TOML file with any of these settings (flags override it).",
            ),
            click.argument("input", required=False, type=click.Path(path_type=str)),
            click.option("-o", "--output", type=click.Path(path_type=str), help=output_help),
            dream_options,
            declared_options(FlowConfig, RenderConfig, Encoding, JobOptions, skip=skip),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@click.command()
@render_inputs(
    "Output video (.mp4, .mkv, .mov; a path or an object-storage URI), or image sequence (out/dream.%05d.png or .tif)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def render(input: str | None, output: str | None, quiet: bool, **kw: Any) -> None:
    """Dream every frame of INPUT (a video, or an image sequence: plate.%05d.png or its directory, with
    --fps), the dream carried along by optical flow: on Ray workers, or in this process when one
    worker suffices (--ray)."""
    import shlex

    if not input or not output:
        raise ConfigError("give INPUT and -o OUTPUT (on the command line or as input/output in --config)")
    display = RenderDisplay(quiet)
    display.say("loading PyTorch …")  # the first line within a second: the imports below take seconds

    from ..engine import submit as submit_job

    config = render_config(kw)
    options = job_options(kw)
    said = [0.0]  # when a wait was last reported

    def on_progress(job: Any) -> None:
        if job.waiting and time.monotonic() - said[0] >= 10:  # a bounded wait is a visible one, -q or not
            click.echo(job.waiting, err=True)
            said[0] = time.monotonic()
        display.follow(job)

    with signals_stop(exiting=True) as stops:  # SIGTERM, SIGINT, SIGHUP: a stop, as Ctrl-C (distdream.stops)
        # preflight: bad input fails here, nothing written
        job = submit_job(input, output, config, on_phase=display.phase, **options)

        def how_to_resume() -> str:
            # -o OUTPUT is written out below, so the hint names the output once
            flags = as_flags(click.get_current_context(), skip={"resume", "workdir", "config", "quiet", "output"})
            again = ["render", input, "-o", output, *flags, "--workdir", str(job.workdir), "--resume"]
            return f"work directory {job.workdir}; resume with: distdream {shlex.join(again)}"

        def on_stop(exc: KeyboardInterrupt) -> None:  # said at once: the wind-down takes seconds
            display.close()
            why = exc.name if isinstance(exc, Stopped) else "interrupted"
            click.echo(f"stopping ({why}): cancelling the chunks in flight, up to {STOP_WAIT:.0f} s …", err=True)

        try:
            result = job.follow(stops.deferring(on_progress), STOP_WAIT, on_stop)
        except KeyboardInterrupt as exc:  # the job stopped, its finished chunks kept
            display.close()
            stopped = f"stopped by {exc.name}" if isinstance(exc, Stopped) else "interrupted"
            click.secho(f"{stopped}; finished chunks are kept in the {how_to_resume()}", fg="red", err=True)
            code = exc.exit_code if isinstance(exc, Stopped) else 130
            if job.in_process:
                # a frame in flight cannot be interrupted: a lane of this process may still be inside
                # the network, and an interpreter that shuts down under it aborts (134) or hangs
                sys.stdout.flush()
                sys.stderr.flush()
                exit_ending_children(code)
            raise click.exceptions.Exit(code) from None
        except DistDreamError as exc:
            exc.hint = how_to_resume()  # printed under the error line
            raise
        finally:
            display.close()
    if job.cancelled():  # the stop came as the output was being published: it finished all the same
        click.echo(f"the stop came while {result.output} was being published; the render is complete", err=True)
    reused = result.chunks - result.rendered
    click.echo(
        f"wrote {result.output}: {result.frames} frames in {result.seconds:.1f}s, {result.chunks} chunks"
        + (f" ({reused} from the ledger)" if reused else "")
        + f", lead-in overhead {100 * result.lead_in_overhead:.0f}%"
    )
    if result.rendered:
        where = "in this process" if job.in_process else "on Ray"
        click.echo(f"{result.workers} worker(s) × {result.lanes} lane(s) {where}, network in {result.compute}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@click.command()
@click.argument("input", type=click.Path(path_type=str))
@click.argument("output", type=click.Path(path_type=str))
@click.option("--flow", "flow_method", type=click.Choice(FLOW_METHODS), default="dis", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print all figures, per frame included, as JSON.")
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="The render's plan.json: its seams are reported apart (and marked in the plot).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also draw strength and warping error over time into this PNG.",
)
@click.option("--frames", default=None, help="OUTPUT renders only frames START:END of INPUT.")
@click.option("--fps", default=None, help="Frame rate of an image-sequence INPUT or OUTPUT (24, 24000/1001 …).")
def metrics(
    input: str,
    output: str,
    flow_method: str,
    as_json: bool,
    plan_path: str | None,
    plot_path: str | None,
    frames: str | None,
    fps: str | None,
) -> None:
    """Warping error (Lai et al.) and strength of OUTPUT, a render of INPUT: lower is steadier."""
    from ..chunking import Chunk
    from ..metrics import plot_over_time, warping_error

    chunks: list[Chunk] = []
    if plan_path:
        try:
            chunks = [Chunk(**c) for c in json.loads(Path(plan_path).read_text())["chunks"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"--plan {plan_path} is not a distdream plan.json ({exc.__class__.__name__}); give "
                "the plan.json of the render's work directory"
            ) from None
    result = warping_error(
        input, output, FlowConfig(method=flow_method), chunks=chunks, frame_range=parse_frame_range(frames), fps=fps
    )
    if plot_path:
        plot_over_time(result, plot_path)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    measured = sum(v is not None for v in result.per_frame)
    windows = result.strength_windows()
    click.echo(
        f"warping error     {result.mean:.6f}  (E_warp: mean squared, RGB 0–1, reliable pixels, {measured} frames)"
    )
    click.echo(f"input's own       {result.input_mean:.6f}  (flow and codec floor)")
    click.echo(f"ratio             {result.ratio:.2f}×")
    click.echo(f"L1                {result.l1:.2f}  (mean |Δ| after warping, levels of 255)")
    click.echo(
        f"strength          {statistics.median(result.strength):.2f}  (median mean |output − input|, levels of "
        f"255); 10-frame windows {min(windows):.2f}–{max(windows):.2f}× the median"
    )
    click.echo(
        f"detail            {statistics.median(result.detail):.2f}  (median mean |Laplacian of output − input|: "
        "the dream's fine structure)"
    )
    for kind in result.seams:
        click.echo(f"{kind + ' seams':<18}{result.seam_ratio(kind):.2f}× the warping error elsewhere")
    if len(result.strength) >= 8:
        window = min(100, len(result.strength) // 4)
        moved = ", ".join(f"{name} {100 * v:+.1f} %" for name, v in result.drift(window).items())
        click.echo(f"drift             {moved}  (last {window} frames against the first {window})")
    if result.cuts:
        click.echo(f"scene cuts at     {', '.join(map(str, result.cuts))} (not measured)")
    if plot_path:
        click.echo(f"wrote {plot_path}")


@click.command()
@click.option(
    "-o",
    "--output",
    default="distdream-demo.mp4",
    show_default=True,
    type=click.Path(path_type=str),
    help="The dreamed video; its contact sheet is written beside it as .png.",
)
@click.option("--frames", type=int, default=72, show_default=True, help="Length of the sample clip.")
@click.option("--workers", type=int, default=None, help="Ray workers. [default: one per CPU or GPU]")
@click.option(
    "--ray",
    "ray_use",
    type=click.Choice(RAY_USE),
    default="always",
    show_default=True,
    help="always: on a local Ray instance, as a cluster runs a job; auto: in this process, as render "
    "runs a job this size on this machine.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def demo(output: str, frames: int, workers: int | None, ray_use: str, quiet: bool) -> None:
    """Render a sample clip (a pan over a real photo, with sound) on local Ray, offline."""
    if frames < 4:
        raise ConfigError(f"--frames {frames}: give at least 4")
    display = RenderDisplay(quiet)
    display.say("loading PyTorch …")  # the first line within a second: the imports below take seconds

    from ..demo import run_demo

    try:
        result = run_demo(
            output, frames=frames, workers=workers, ray=ray_use, on_progress=display.follow, on_phase=display.phase
        )
    finally:
        display.close()
    job = result.job
    click.echo(f"wrote {result.video} ({job.frames} frames, {job.chunks} chunks, bundled offline model)")
    click.echo(f"wrote {result.sheet} (input | dream at 4 frames)")
    click.echo(f"took {result.seconds:.1f}s in all")


@click.command()
@click.argument("video", type=click.Path(path_type=str))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the index summary as JSON (timestamps as compressed deltas)."
)
@click.option("--fps", default=None, help="Frame rate of an image sequence (24, 24000/1001 …).")
def probe(video: str, as_json: bool, fps: str | None) -> None:
    """Index VIDEO (a file, or an image sequence: plate.%05d.png or its directory) and summarise it:
    exact frame count, timestamps, keyframes, colour tags and bit depth, audio."""
    from ..video import probe as probe_video

    index = probe_video(video, fps=fps)
    if as_json:
        click.echo(json.dumps(index.to_dict() | {"working_colour": index.working_colour.to_dict()}, indent=2))
        return
    rate = float(index.average_rate)
    click.echo(f"{index.path}")
    click.echo(
        f"  video   {index.codec} {index.width}×{index.height} {index.pix_fmt}, {index.frame_count} frames, "
        f"{index.duration:.3f} s, {rate:.3f} fps average ({'constant' if index.constant_rate else 'variable'} rate)"
    )
    c, used = index.colour, index.working_colour
    click.echo(
        f"  colour  primaries {c.primaries}, transfer {c.transfer}, matrix {c.matrix}, range {c.range}"
        + (f" (converted as {used.matrix}, {used.range})" if used != c else "")
        + (" — HDR: carried through, dreamed in its coded values" if c.hdr else "")
    )
    if index.is_sequence:
        click.echo(f"  images  numbered from {index.first_number}")
    if index.rotation:
        click.echo(f"  rotated {index.rotation}° (frames are read upright)")
    shortest, longest = index.gop_range()
    click.echo(f"  keyframes {len(index.keyframes)} (GOP {shortest}–{longest} frames)")
    for a in index.audio:
        dur = f", {a.duration:.3f} s" if a.duration else ""
        click.echo(f"  audio   #{a.index} {a.codec} {a.sample_rate} Hz, {a.channels} ch{dur}")
    if not index.audio:
        click.echo("  audio   none")
