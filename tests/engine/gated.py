"""`distdream` as users run it, with faults injected into its chunks (``distdream.engine.faults``).

A test that signals or cancels a render "once a chunk is finished" races the render's end: on a
fast or idle machine the rest may finish first. A ``wait`` fault holds a chunk at a known frame
until the test's go-ahead file exists, so the render cannot end before the test has done what
it does meanwhile. :func:`command` starts the real command line with such faults (the CLI takes
no faults: ``python -m tests.engine.gated FAULTS-JSON ARGS…`` hands them to the job it submits).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from distdream import engine
from distdream.cli import run
from distdream.engine import testing
from distdream.engine.faults import Fault

ROOT = Path(__file__).parents[2]


def gate(go: Path, chunk: int, at_frame: int = 0) -> Fault:
    """A fault that holds ``chunk`` at ``at_frame`` until ``go`` exists (every attempt)."""
    return Fault(chunk=chunk, at_frame=at_frame, kind="wait", go=str(go))


def command(*faults: Fault) -> list[str]:
    """The start of a `distdream …` command line whose job takes ``faults`` (run it with cwd=ROOT)."""
    return [sys.executable, "-m", "tests.engine.gated", json.dumps([asdict(f) for f in faults])]


def default_signals() -> None:
    """``preexec_fn`` of a render started as a scheduler starts a job: the stop signals' default
    actions, whatever this suite inherited (``nohup`` ignores SIGHUP, a background job of a
    non-interactive shell SIGINT; a render keeps an ignored signal ignored, by design)."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def spawn(args: list[str], *faults: Fault) -> subprocess.Popen:
    """`distdream ARGS…` with ``faults``, started as a scheduler starts a job: in a session of its
    own, with the stop signals' default actions; its output piped, as text."""
    return subprocess.Popen(
        [*command(*faults), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_signals,
    )


def main() -> None:
    faults = tuple(Fault(**{**f, "attempts": tuple(f["attempts"])}) for f in json.loads(sys.argv.pop(1)))

    def with_faults(*args: Any, **kwargs: Any) -> engine.Job:
        return testing.submit(*args, faults=faults, **kwargs)

    engine.submit = with_faults  # type: ignore[assignment]  # what `distdream render` calls to start its job
    run()


if __name__ == "__main__":
    main()
