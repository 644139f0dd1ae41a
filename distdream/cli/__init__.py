"""The ``distdream`` command: flags → a config → one library call, one module per group of commands.

Every error distdream raises on purpose (and every usage error) becomes one red line on stderr
and exit code 2; Ctrl-C exits 130, SIGTERM 143 and SIGHUP 129, the way a render stops
(:mod:`distdream.stops`). Nothing here dreams, reads or writes by itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import click
import psutil

from ..errors import DistDreamError
from ..stops import Stopped, end_children, exit_ending_children
from .bench import bench
from .jobs import logs, status, stop, submit
from .still import dream, layers, models, preview
from .video import demo, metrics, probe, render

__all__ = ["cli", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="distdream")
def cli() -> None:
    """distdream: DeepDream for images and videos, with the dream carried along by optical flow."""


for _command in (dream, render, submit, status, logs, stop, metrics, demo, preview, models, layers, probe, bench):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # without standalone mode click returns a command's Exit code instead of raising it
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="distdream", standalone_mode=False)
    except DistDreamError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        if exc.hint:
            click.echo(exc.hint, err=True)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        # Ray is a dependency, but a machine may run the dream, bench and preview commands without it
        click.secho(
            "error: this command runs on Ray, which is not installed here: pip install 'ray[default]' "
            "(dream, preview, layers and bench --only step,io,lanes,render,halving need no Ray)",
            fg="red",
            err=True,
        )
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
    except (click.Abort, KeyboardInterrupt) as exc:  # a render's own stop says more (cli.video)
        stop = exc if isinstance(exc, Stopped) else exc.__cause__  # click turns a KeyboardInterrupt into Abort
        if not isinstance(stop, Stopped):
            click.secho("interrupted", fg="red", err=True)
            return 130
        click.secho(f"stopped by {stop.name}", fg="red", err=True)
        end_children(grace=0.5)  # a Ray instance whose start the signal cut short (it takes no SIGTERM)
        return stop.exit_code
    return code if isinstance(code, int) else 0


def run() -> NoReturn:
    """The console script: :func:`main`, then exit. A process that started a local Ray instance
    leaves at once with its code, and the instance's processes are killed right after it
    (:func:`~distdream.stops.exit_ending_children`): they take no SIGTERM (see
    ``engine.cluster``), a throwaway instance has nothing to save, and neither Ray's shutdown nor
    the interpreter's teardown, seconds each, is worth waiting for once the output is written."""
    code = main()
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized() and psutil.Process().children():  # the instance is ours
        sys.stdout.flush()
        sys.stderr.flush()
        exit_ending_children(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
