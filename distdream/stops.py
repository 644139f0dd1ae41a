"""Signals as stops: SIGTERM (what batch schedulers send on preemption), SIGINT and SIGHUP end a
render the way Ctrl-C does, never as a crash.

Inside :func:`signals_stop` the first of them raises :class:`Stopped` in the main thread. It is a
``KeyboardInterrupt``, so every cleanup written for Ctrl-C runs: the caller cancels its job
(finished chunks stay). The command line then exits with 128 + the signal's number (143 for
SIGTERM) and has ``grace`` seconds to be gone; a second signal, or a cleanup that outlasts them,
ends it at once with that code, and its child processes (a local Ray instance) are killed right
after it (:func:`exit_ending_children`), so nothing of the job stays running. A library call
(``distdream.render``) gives its caller the handlers back when it returns, the timer cancelled:
what a stop means to a notebook or a service is theirs to decide. A signal the process was told
to ignore (``nohup``) stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

__all__ = ["SIGNALS", "Stopped", "end_children", "exit_ending_children", "signals_stop"]

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: ``signum`` says which, ``exit_code`` is what the process returns."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def end_children(grace: float = 3.0) -> None:
    """Stop every process this one started (and theirs): SIGTERM, then SIGKILL after ``grace`` s."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


# Started with this process's children as arguments: once its stdin ends (the process that
# started it has exited, closing the pipe's other end), it kills them.
_REAPER = """
import os, signal, sys
sys.stdin.buffer.read()
for pid in map(int, sys.argv[1:]):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def exit_ending_children(code: int) -> NoReturn:
    """Exit with ``code`` at once; every process this one started is killed right after, by a
    small reaper that waits for this exit. Killing them first would race the exit code: Ray's
    driver ends its process with code 1 when the local instance it is connected to dies."""
    import psutil

    with contextlib.suppress(Exception):
        pids = [str(child.pid) for child in psutil.Process().children(recursive=True)]
        if pids:
            subprocess.Popen(
                [sys.executable, "-c", _REAPER, *pids],
                stdin=subprocess.PIPE,  # its other end, held here, closes with this process
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not in this job's process group, whatever signals that gets
            )
    os._exit(code)


def _exit_now(code: int, why: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{why}; exiting at once\n")
        sys.stderr.flush()
    exit_ending_children(code)


@contextlib.contextmanager
def signals_stop(grace: float = 25.0, *, exiting: bool = False) -> Iterator[None]:
    """Turn stop signals into :class:`Stopped` while the block runs (see the module docstring).
    Outside the main thread, where Python delivers no signals, it does nothing.

    When the block ends, the caller's handlers are back and the grace timer is cancelled: a
    program that catches the stop and carries on (a notebook, a service) is not ended later.
    ``exiting=True`` is for a process that exits once the block ends (the command line): after a
    stop, the handlers and the timer stay armed until it is gone, so a second signal, or a
    shutdown that hangs, still ends it at once with the stop's code."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first: list[int] = []
    timers: list[threading.Timer] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if first:  # the second: no more waiting
            _exit_now(128 + signum, f"{signal.Signals(signum).name} again")
        first.append(signum)
        timer = threading.Timer(grace, _exit_now, (128 + signum, f"still stopping after {grace:.0f} s"))
        timer.daemon = True  # it runs on through interpreter exit (atexit), where a hang would be
        timer.start()
        timers.append(timer)
        raise Stopped(signum)

    saved = {s: signal.getsignal(s) for s in SIGNALS}
    for s, old in saved.items():
        if old is not signal.SIG_IGN:
            signal.signal(s, handle)
    try:
        yield
    finally:
        if not (first and exiting):
            for timer in timers:
                timer.cancel()
            for s, old in saved.items():
                signal.signal(s, old if old is not None else signal.SIG_DFL)
