"""The ``distdream`` command: flags → a config → one library call.

Every error distdream raises on purpose (and every usage error) becomes one red line on stderr
and exit code 2; Ctrl-C exits 130. Nothing here dreams, reads or writes by itself.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import FLOW_METHODS, DreamConfig, FlowConfig, JobOptions, RenderConfig, parse_frame_range, parse_weights
from ..errors import ConfigError, DistDreamError
from .options import as_flags, declared_options, dream_config, job_options, load_config_file, render_config

__all__ = ["main"]


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
        return dream_image(image, output, config, device=device, on_start=on_start,
                           progress=lambda n: bar[0].update(n))
    finally:
        if bar:
            bar[0].close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="distdream")
def cli() -> None:
    """distdream: DeepDream for images and videos, with the dream carried along by optical flow."""


@cli.command()
@click.argument("image", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Output image (.png, .jpg).")
@dream_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def dream(image: str, output: str, quiet: bool, **kw: Any) -> None:
    """Dream one IMAGE and write it to OUTPUT."""
    result = _run_still(image, output, dream_config(kw), kw["device"], quiet)
    click.echo(f"wrote {result.output} ({result.width}×{result.height}) in {result.seconds:.1f}s on {result.device} "
               f"({result.compute})")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def render_inputs(output_help: str, skip: Sequence[str] = ()) -> Any:
    """What ``render`` and ``submit`` share: --config, INPUT, -o and every render and job setting."""

    def decorate(func: Any) -> Any:
        for option in reversed([
            click.option("--config", type=click.Path(dir_okay=False, path_type=str), callback=load_config_file,
                         is_eager=True, expose_value=False,
                         help="TOML file with any of these settings (flags override it)."),
            click.argument("input", required=False, type=click.Path(path_type=str)),
            click.option("-o", "--output", type=click.Path(path_type=str), help=output_help),
            dream_options,
            declared_options(FlowConfig, RenderConfig, JobOptions, skip=skip),
        ]):
            func = option(func)
        return func

    return decorate


@cli.command()
@render_inputs("Output video (.mp4, .mkv, .mov), a path or an object-storage URI.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def render(input: str | None, output: str | None, quiet: bool, **kw: Any) -> None:
    """Dream every frame of INPUT on Ray workers, the dream carried along by optical flow."""
    import shlex

    from tqdm import tqdm

    from ..engine import submit as submit_job

    if not input or not output:
        raise ConfigError("give INPUT and -o OUTPUT (on the command line or as input/output in --config)")
    config = render_config(kw)
    options = job_options(kw)
    bar: list[tqdm] = []

    def on_progress(job: Any) -> None:
        done, total = job.progress()
        if not total:
            return
        if not bar:
            bar.append(tqdm(total=total, initial=done, unit="frame", desc="rendering", disable=quiet,
                            file=sys.stderr))
        states = job.chunks()
        bar[0].set_postfix_str(f"chunks {sum(c.state == 'done' for c in states)}/{len(states)}", refresh=False)
        bar[0].update(done - bar[0].n)

    job = submit_job(input, output, config, **options)  # preflight: bad input fails here, nothing written
    if not quiet and job.plan is not None:
        click.echo(f"plan: {job.plan.describe()}", err=True)

    def how_to_resume() -> str:
        # -o OUTPUT is written out below, so the hint names the output once
        flags = as_flags(click.get_current_context(), skip={"resume", "workdir", "config", "quiet", "output"})
        again = ["render", input, "-o", output, *flags, "--workdir", str(job.workdir), "--resume"]
        return f"work directory {job.workdir}; resume with: distdream {shlex.join(again)}"

    try:
        while not job.wait(0.25):
            on_progress(job)
        result = job.result()
    except KeyboardInterrupt:
        job.cancel()
        job.wait(60)
        click.secho(f"interrupted; finished chunks are kept in the {how_to_resume()}", fg="red", err=True)
        raise click.exceptions.Exit(130) from None
    except DistDreamError as exc:
        exc.hint = how_to_resume()  # type: ignore[attr-defined]  # printed under the error line
        raise
    finally:
        if bar:
            bar[0].close()
    reused = result.chunks - result.rendered
    click.echo(
        f"wrote {result.output}: {result.frames} frames in {result.seconds:.1f}s, {result.chunks} chunks"
        + (f" ({reused} from the ledger)" if reused else "")
        + f", lead-in overhead {100 * result.lead_in_overhead:.0f}%"
    )
    if result.rendered:
        click.echo(f"{result.workers} worker(s) × {result.lanes} lane(s), network in {result.compute}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def _token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"--token-file {path}: {exc.strerror}; give the file holding the cluster's Ray token") from None
    if not token:
        raise ConfigError(f"--token-file {path} is empty; give the file holding the cluster's Ray token")
    return token


@cli.command()
# --address is the dashboard's here, and a submitted render always resumes
@render_inputs("Output video: a path every node of the cluster sees, or an object-storage URI.",
               skip=("address", "resume"))
@click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The cluster's Ray auth token (token authentication). [default: Ray's own lookup]")
@click.option("--wait", is_flag=True, help="Follow the job's log until it ends; exit non-zero if it failed.")
def submit(input: str | None, output: str | None, address: str, token_file: str | None, wait: bool, **kw: Any) -> None:
    """Submit a render of INPUT as a Ray job; a resubmit of the same render resumes it."""
    import shlex

    from ..engine import RemoteJobs, submission_id

    if not input or not output:
        raise ConfigError("give INPUT and -o OUTPUT (paths on the cluster's shared storage)")
    render_config(kw)  # refuse impossible settings here, not minutes later on the cluster
    ctx = click.get_current_context()
    flags = as_flags(ctx, skip={"address", "wait", "device", "token_file"})
    base = submission_id(input, output, flags)
    # Always --resume: a resubmitted job continues from the work directory of the run before it
    # (the default one beside the output is the same for the same render).
    entrypoint = shlex.join(["distdream", "render", input, "-o", output, *flags, "--resume", "--address", "auto",
                             "-q"])
    jobs = RemoteJobs(address, token=_token(token_file))
    sid, found = jobs.submit(entrypoint, base)
    click.echo(f"submitted {sid}" if found is None else f"already submitted: {sid} ({found})")
    if wait:
        _follow(jobs, sid)


def _follow(jobs: Any, sid: str) -> None:
    printed = 0
    while True:
        status = jobs.status(sid)
        text = jobs.logs(sid)
        click.echo(text[printed:], nl=False)
        printed = len(text)
        if status in jobs.TERMINAL:
            break
        time.sleep(1.0)
    click.echo(f"{sid}: {status}")
    if status != "SUCCEEDED":
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("job_id")
@click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The cluster's Ray auth token (token authentication). [default: Ray's own lookup]")
def status(job_id: str, address: str, token_file: str | None) -> None:
    """Print the state of submitted job JOB_ID (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    from ..engine import RemoteJobs

    click.echo(RemoteJobs(address, token=_token(token_file)).status(job_id))


@cli.command()
@click.argument("job_id")
@click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The cluster's Ray auth token (token authentication). [default: Ray's own lookup]")
@click.option("--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, address: str, token_file: str | None, follow: bool) -> None:
    """Print the output of submitted job JOB_ID."""
    from ..engine import RemoteJobs

    jobs = RemoteJobs(address, token=_token(token_file))
    if follow:
        _follow(jobs, job_id)
    else:
        click.echo(jobs.logs(job_id), nl=False)


@cli.command()
@click.argument("job_id")
@click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The cluster's Ray auth token (token authentication). [default: Ray's own lookup]")
def stop(job_id: str, address: str, token_file: str | None) -> None:
    """Stop submitted job JOB_ID; its finished chunks stay for a resubmit."""
    from ..engine import RemoteJobs

    click.echo(f"{job_id}: {'stopping' if RemoteJobs(address, token=_token(token_file)).stop(job_id) else 'already finished'}")


@cli.command()
@click.argument("input", type=click.Path(path_type=str))
@click.argument("output", type=click.Path(path_type=str))
@click.option("--flow", "flow_method", type=click.Choice(FLOW_METHODS), default="dis", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print all figures, per frame included, as JSON.")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The render's plan.json: its seams are reported apart (and marked in the plot).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Also draw strength and warping error over time into this PNG.")
@click.option("--frames", default=None, help="OUTPUT renders only frames START:END of INPUT.")
def metrics(input: str, output: str, flow_method: str, as_json: bool, plan_path: str | None, plot_path: str | None,
            frames: str | None) -> None:
    """Warping error (Lai et al.) and strength of OUTPUT, a render of INPUT: lower is steadier."""
    from ..metrics import plot_over_time, warping_error
    from ..plan import Chunk

    chunks: list[Chunk] = []
    if plan_path:
        try:
            chunks = [Chunk(**c) for c in json.loads(Path(plan_path).read_text())["chunks"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--plan {plan_path} is not a distdream plan.json ({exc.__class__.__name__}); give "
                              "the plan.json of the render's work directory") from None
    result = warping_error(input, output, FlowConfig(method=flow_method), chunks=chunks,
                           frame_range=parse_frame_range(frames))
    if plot_path:
        plot_over_time(result, plot_path)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    measured = sum(v is not None for v in result.per_frame)
    windows = result.strength_windows()
    click.echo(f"warping error     {result.mean:.6f}  (E_warp: mean squared, RGB 0–1, reliable pixels, {measured} frames)")
    click.echo(f"input's own       {result.input_mean:.6f}  (flow and codec floor)")
    click.echo(f"ratio             {result.ratio:.2f}×")
    click.echo(f"L1                {result.l1:.2f}  (mean |Δ| after warping, levels of 255)")
    click.echo(f"strength          {statistics.median(result.strength):.2f}  (median mean |output − input|, levels of "
               f"255); 10-frame windows {min(windows):.2f}–{max(windows):.2f}× the median")
    click.echo(f"detail            {statistics.median(result.detail):.2f}  (median mean |Laplacian of output − input|: "
               "the dream's fine structure)")
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


@cli.command()
@click.option("-o", "--output", default="distdream-demo.mp4", show_default=True, type=click.Path(path_type=str),
              help="The dreamed video; its contact sheet is written beside it as .png.")
@click.option("--frames", type=int, default=72, show_default=True, help="Length of the sample clip.")
@click.option("--workers", type=int, default=None, help="Ray workers. [default: one per CPU or GPU]")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def demo(output: str, frames: int, workers: int | None, quiet: bool) -> None:
    """Render a sample clip (a pan over a real photo, with sound) on local Ray, offline."""
    from tqdm import tqdm

    from ..demo import run_demo

    if frames < 4:
        raise ConfigError(f"--frames {frames}: give at least 4")
    bar: list[tqdm] = []

    def on_progress(job: Any) -> None:
        done, total = job.progress()
        if total and not bar:
            bar.append(tqdm(total=total, unit="frame", desc="dreaming", disable=quiet, file=sys.stderr))
        if bar:
            bar[0].update(done - bar[0].n)

    try:
        result = run_demo(output, frames=frames, workers=workers, on_progress=on_progress)
    finally:
        if bar:
            bar[0].close()
    job = result.job
    click.echo(f"wrote {result.video} ({job.frames} frames, {job.chunks} chunks, bundled offline model)")
    click.echo(f"wrote {result.sheet} (input | dream at 4 frames)")
    click.echo(f"took {result.seconds:.1f}s in all")


@cli.command()
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", default="distdream-preview.png", show_default=True, type=click.Path(path_type=str),
              help="The grid picture (.png, .jpg).")
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
    path = make_preview(input, output, dream_config(kw), frame=frame, vary=parse_vary(vary) if vary else None, size=size,
                        device=kw["device"])
    click.echo(f"wrote {path} in {time.perf_counter() - t0:.1f}s")


@cli.command()
def models() -> None:
    """List model names; '*' marks weights usable offline (bundled or cached)."""
    from ..models import DEFAULT_MODEL, available_models, weights_cached

    for name in available_models():
        mark = "*" if weights_cached(name) else " "
        note = "  (default; ImageNet weights bundled, works offline)" if name == DEFAULT_MODEL else ""
        click.echo(f"{mark} {name}{note}")


@cli.command()
@click.argument("model", default="efficientnet_lite0")
@click.option("--weights", default="none", show_default=True,
              help="Weights to load first (names and shapes do not depend on them).")
@click.option("--filter", "pattern", default="", help="Only layers whose name contains this text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def layers(model: str, weights: str, pattern: str, as_json: bool) -> None:
    """List MODEL's dreamable layers: name, channels, stride ('*' = used by default)."""
    from ..models import list_layers, load_model

    loaded = load_model(model, parse_weights(weights))
    infos = [info for info in list_layers(loaded) if pattern in info.name]
    if as_json:
        rows = [{"name": i.name, "channels": i.channels, "stride": i.stride,
                 "default": i.name in loaded.default_layers} for i in infos]
        click.echo(json.dumps({"model": model, "layers": rows}, indent=2))
        return
    width = max((len(i.name) for i in infos), default=10)
    click.echo(f"  {'layer':<{width}}  channels  stride")
    for i in infos:
        mark = "*" if i.name in loaded.default_layers else " "
        click.echo(f"{mark} {i.name:<{width}}  {i.channels:>8}  {i.stride:>6g}")


@cli.command()
@click.argument("video", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the index summary as JSON (timestamps as compressed deltas).")
def probe(video: str, as_json: bool) -> None:
    """Index VIDEO (exact frame count, timestamps, keyframes, audio) and summarise it."""
    from ..video import probe as probe_video

    index = probe_video(video)
    if as_json:
        click.echo(json.dumps(index.to_dict(), indent=2))
        return
    rate = float(index.average_rate)
    click.echo(f"{index.path}")
    click.echo(f"  video   {index.codec} {index.width}×{index.height} {index.pix_fmt}, {index.frame_count} frames, "
               f"{index.duration:.3f} s, {rate:.3f} fps average ({'constant' if index.constant_rate else 'variable'} rate)")
    if index.rotation:
        click.echo(f"  rotated {index.rotation}° (frames are read upright)")
    shortest, longest = index.gop_range()
    click.echo(f"  keyframes {len(index.keyframes)} (GOP {shortest}–{longest} frames)")
    for a in index.audio:
        dur = f", {a.duration:.3f} s" if a.duration else ""
        click.echo(f"  audio   #{a.index} {a.codec} {a.sample_rate} Hz, {a.channels} ch{dur}")
    if not index.audio:
        click.echo("  audio   none")


# the bench package's SECTIONS, kept here so `--help` does not import torch (a test checks they agree)
BENCH_SECTIONS = ("step", "io", "engine", "lanes", "render", "halving", "coherence", "compile")


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
    from ..paths import temp_sibling

    out = Path(path)
    tmp = temp_sibling(out)
    tmp.write_text(json.dumps(figures, indent=2) + "\n")
    tmp.replace(out)


@cli.command()
@click.option("--quick", is_flag=True, help="Fewer repeats and a shorter clip (rough figures in seconds).")
@click.option("--only", "sections", multiple=True,
              help=f"Run only these parts, e.g. step,lanes ({', '.join(BENCH_SECTIONS)}). [default: all this machine runs]")
@click.option("--size", "sizes", type=int, multiple=True, help="Square image side for the dream step (repeatable). "
              "[default: 256]")
@click.option("--frame-size", default=None,
              help="Frame size for the lanes, render and halving figures, WxH. [default: 1280x720 on CUDA, 160x90 on CPU]")
@click.option("--lanes", "lane_counts", default="1,2,4,8", show_default=True, help="Lane counts for the lanes figures.")
@click.option("--compile", "with_compile", is_flag=True, help="Add torch.compile rows to the lanes figures.")
@click.option("--render-size", "render_sizes", multiple=True,
              help="Frame size of an in-process render, WxH (repeatable). [default: --frame-size]")
@click.option("--render-frames", type=int, default=None, help="Frames per render. [default: 120 on CUDA, 24 on CPU]")
@click.option("--render-lanes", default="1", show_default=True, help="Lane counts for the renders, e.g. 1,8.")
@click.option("--device", default=None, help="cpu, cuda …; default: CUDA when present.")
@click.option("--time-limit", type=float, default=None,
              help="Seconds; parts that would start later are skipped (what ran is kept).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Also write the figures to this JSON file (rewritten after every part).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Also draw the figures into this PNG.")
@click.option("--workers", type=int, default=None, help="N for the scaling figure. [default: the CPUs or GPUs]")
def bench(quick: bool, sections: tuple[str, ...], sizes: tuple[int, ...], frame_size: str | None, lane_counts: str,
          with_compile: bool, render_sizes: tuple[str, ...], render_frames: int | None, render_lanes: str,
          device: str | None, time_limit: float | None, json_path: str | None, plot_path: str | None,
          workers: int | None) -> None:
    """Measure dream step, video I/O, the engine, lanes × precision and renders, each beside its reference.

    Every part but the engine runs without Ray. Interrupted (Ctrl-C, or timeout -s INT), it still
    writes the JSON and plot of what it measured.
    """
    from ..bench import BenchPlan, plot, run_sections

    plan = BenchPlan(
        sections=tuple(part.strip() for value in sections for part in value.split(",") if part.strip()), quick=quick, device=device, step_sizes=sizes or (256,), frame_size=_size(frame_size),
        lanes=_counts(lane_counts, "--lanes"), compile=with_compile,
        render_sizes=tuple(_size(v, "--render-size") for v in render_sizes),  # type: ignore[misc]
        render_frames=render_frames, render_lanes=_counts(render_lanes, "--render-lanes"), workers=workers,
        time_limit=time_limit,
    ).validate()
    figures: dict[str, Any] = {}
    save = (lambda f: _write_json(json_path, f)) if json_path else None
    try:
        run_sections(plan, figures, echo=click.echo, save=save)
    except KeyboardInterrupt:
        click.secho("interrupted; the figures measured so far are kept" + (f" in {json_path}" if json_path else ""),
                    fg="red", err=True)
        raise click.exceptions.Exit(130) from None
    finally:  # also when interrupted: keep what was measured
        if plot_path and any(k in figures for k in BENCH_SECTIONS):
            plot(figures, plot_path)
            click.echo(f"wrote {plot_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # without standalone mode click returns a command's Exit code instead of raising it
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="distdream", standalone_mode=False)
    except DistDreamError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        if getattr(exc, "hint", None):
            click.echo(exc.hint, err=True)  # type: ignore[attr-defined]
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        # Ray is a dependency, but a machine may run the dream, bench and preview commands without it
        click.secho("error: this command runs on Ray, which is not installed here: pip install 'ray[default]' "
                    "(dream, preview, layers and bench --only step,io,lanes,render,halving need no Ray)",
                    fg="red", err=True)
        return 2
    except OSError as exc:  # a full disk or a vanished mount outside the engine: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        click.secho(f"error: {exc.strerror or exc}{where}", fg="red", err=True)
        return 1
    except click.ClickException as exc:
        click.secho(f"error: {exc.format_message()}", fg="red", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.secho("interrupted; finished chunks are kept — rerun with --resume --workdir DIR", fg="red", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
