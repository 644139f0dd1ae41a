"""Commands for renders submitted to a cluster as Ray jobs: ``submit``, ``status``, ``logs``, ``stop``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from ..stops import Stopped, signals_stop
from ..values import looks_like_path
from .options import as_flags, job_options, render_config
from .video import render_inputs

__all__ = ["logs", "status", "stop", "submit"]


def _token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"--token-file {path}: {exc.strerror}; give the file holding the cluster's Ray token"
        ) from None
    if not token:
        raise ConfigError(f"--token-file {path} is empty; give the file holding the cluster's Ray token")
    return token


def _cluster(func: Any) -> Any:
    """--address (the cluster's dashboard), --token-file and --request-timeout, which every command here takes."""
    func = click.option(
        "--request-timeout",
        type=click.FloatRange(min=0.1),
        default=15.0,
        show_default=True,
        help="Seconds each request to the dashboard may take.",
    )(func)
    func = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=str),
        default=None,
        help="The cluster's Ray auth token (token authentication). [default: RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token, when the cluster asks]",
    )(func)
    return click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")(func)


def _jobs(address: str, token_file: str | None, request_timeout: float) -> Any:
    from ..engine import RemoteJobs

    return RemoteJobs(address, timeout=request_timeout, token=_token(token_file))


def _shared(path: str, what: str) -> str:
    """A path the cluster's nodes can resolve: absolute, or an object-storage URI."""
    if "://" not in path and not Path(path).is_absolute():
        raise ConfigError(
            f"{what} {path} is relative, but the render runs on the cluster, in another working "
            "directory; give an absolute path every node sees, or an object-storage URI"
        )
    return path


@click.command()
# --address is the dashboard's here, and a submitted render always resumes
@render_inputs(
    "Output video: a path every node of the cluster sees, or an object-storage URI.", skip=("address", "resume")
)
@_cluster
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the job's log until it ends; exit non-zero if it failed. Ctrl-C "
    "or SIGTERM stops the job (its finished chunks stay for a resubmit).",
)
def submit(
    input: str | None,
    output: str | None,
    address: str,
    token_file: str | None,
    request_timeout: float,
    wait: bool,
    **kw: Any,
) -> None:
    """Submit a render of INPUT as a Ray job; a resubmit of the same render resumes it."""
    import shlex

    from ..engine import submission_id

    if not input or not output:
        raise ConfigError("give INPUT and -o OUTPUT (paths on the cluster's shared storage)")
    _shared(input, "INPUT")
    _shared(output, "OUTPUT")
    if kw.get("workdir"):
        _shared(kw["workdir"], "--workdir")
    config = render_config(kw)  # refuse impossible settings here, not minutes later on the cluster
    if config.dream.predefined_start is not None:
        _shared(config.dream.predefined_start, "--predefined-start")
    if config.dream.weights is not None and looks_like_path(config.dream.weights):
        _shared(config.dream.weights, "--weights")
    job_options(kw)
    ctx = click.get_current_context()
    flags = as_flags(ctx, skip={"address", "wait", "device", "token_file", "request_timeout", "output"})
    base = submission_id(input, output, flags)
    # Always --resume: a resubmitted job continues from the work directory of the run before it
    # (the default one beside the output is the same for the same render).
    entrypoint = shlex.join(["distdream", "render", input, "-o", output, *flags, "--resume", "--address", "auto", "-q"])
    with signals_stop(exiting=True) as stops:
        jobs = _jobs(address, token_file, request_timeout)
        sid, found = jobs.submit(entrypoint, base)
        click.echo(f"submitted {sid}" if found is None else f"already submitted: {sid} ({found})")
        if not wait:
            return
        try:
            _follow(jobs, sid, stops.deferring(click.echo))
        except KeyboardInterrupt as exc:
            jobs.stop(sid)
            stopped = f"stopped by {exc.name}" if isinstance(exc, Stopped) else "interrupted"
            click.secho(
                f"{stopped}; stopped {sid}, its finished chunks are kept: the same submit command resumes it",
                fg="red",
                err=True,
            )
            raise click.exceptions.Exit(exc.exit_code if isinstance(exc, Stopped) else 130) from None


def _follow(jobs: Any, sid: str, echo: Callable[..., None] = click.echo) -> None:
    printed = 0
    while True:
        status = jobs.status(sid)
        text = jobs.logs(sid)
        echo(text[printed:], nl=False)
        printed = len(text)
        if status in jobs.TERMINAL:
            break
        time.sleep(1.0)
    click.echo(f"{sid}: {status}")
    if status != "SUCCEEDED":
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("job_id")
@_cluster
def status(job_id: str, address: str, token_file: str | None, request_timeout: float) -> None:
    """Print the state of submitted job JOB_ID (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    click.echo(_jobs(address, token_file, request_timeout).status(job_id))


@click.command()
@click.argument("job_id")
@_cluster
@click.option("--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, address: str, token_file: str | None, request_timeout: float, follow: bool) -> None:
    """Print the output of submitted job JOB_ID."""
    jobs = _jobs(address, token_file, request_timeout)
    if follow:
        _follow(jobs, job_id)
    else:
        click.echo(jobs.logs(job_id), nl=False)


@click.command()
@click.argument("job_id")
@_cluster
def stop(job_id: str, address: str, token_file: str | None, request_timeout: float) -> None:
    """Stop submitted job JOB_ID; its finished chunks stay for a resubmit."""
    stopping = _jobs(address, token_file, request_timeout).stop(job_id)
    click.echo(f"{job_id}: {'stopping' if stopping else 'already finished'}")
