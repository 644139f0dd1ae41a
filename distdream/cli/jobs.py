"""Commands for renders submitted to a cluster as Ray jobs: ``submit``, ``status``, ``logs``, ``stop``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from .options import as_flags, render_config
from .video import render_inputs

__all__ = ["logs", "status", "stop", "submit"]


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


def _cluster(func: Any) -> Any:
    """--address (the cluster's dashboard) and --token-file, which every command here takes."""
    func = click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), default=None,
                        help="The cluster's Ray auth token (token authentication). [default: Ray's own lookup]")(func)
    return click.option("--address", required=True, help="The cluster's dashboard, e.g. http://HEAD:8265.")(func)


def _jobs(address: str, token_file: str | None) -> Any:
    from ..engine import RemoteJobs

    return RemoteJobs(address, token=_token(token_file))


@click.command()
# --address is the dashboard's here, and a submitted render always resumes
@render_inputs("Output video: a path every node of the cluster sees, or an object-storage URI.",
               skip=("address", "resume"))
@_cluster
@click.option("--wait", is_flag=True, help="Follow the job's log until it ends; exit non-zero if it failed.")
def submit(input: str | None, output: str | None, address: str, token_file: str | None, wait: bool, **kw: Any) -> None:
    """Submit a render of INPUT as a Ray job; a resubmit of the same render resumes it."""
    import shlex

    from ..engine import submission_id

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
    jobs = _jobs(address, token_file)
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


@click.command()
@click.argument("job_id")
@_cluster
def status(job_id: str, address: str, token_file: str | None) -> None:
    """Print the state of submitted job JOB_ID (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    click.echo(_jobs(address, token_file).status(job_id))


@click.command()
@click.argument("job_id")
@_cluster
@click.option("--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, address: str, token_file: str | None, follow: bool) -> None:
    """Print the output of submitted job JOB_ID."""
    jobs = _jobs(address, token_file)
    if follow:
        _follow(jobs, job_id)
    else:
        click.echo(jobs.logs(job_id), nl=False)


@click.command()
@click.argument("job_id")
@_cluster
def stop(job_id: str, address: str, token_file: str | None) -> None:
    """Stop submitted job JOB_ID; its finished chunks stay for a resubmit."""
    click.echo(f"{job_id}: {'stopping' if _jobs(address, token_file).stop(job_id) else 'already finished'}")
