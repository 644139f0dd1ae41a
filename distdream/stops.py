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

An exception raised wherever the main thread happens to be can leave a lock taken or a display
half-drawn (a stop that then hangs in its own cleanup). Code that the main thread runs while it
follows a job (drawing the progress) runs under :meth:`StopSignals.deferring`: a stop that lands
there is raised as the callback returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn, ParamSpec, TypeVar

__all__ = ["SIGNALS", "StopSignals", "Stopped", "end_children", "exit_ending_children", "signals_stop"]

P = ParamSpec("P")
R = TypeVar("R")

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


class StopSignals:
    """What :func:`signals_stop` yields: where a stop may not be raised at once."""

    def __init__(self) -> None:
        self.received: int | None = None  # the first stop signal's number
        self._deferring = 0
        self._pending = False

    def deferring(self, callback: Callable[P, R]) -> Callable[P, R]:
        """``callback`` wrapped so that a stop arriving while it runs is raised once it returns."""

        def deferred(*args: P.args, **kwargs: P.kwargs) -> R:
            self._deferring += 1
            try:
                result = callback(*args, **kwargs)
            finally:
                self._deferring -= 1
            if self._pending and not self._deferring:
                self._pending = False
                assert self.received is not None
                raise Stopped(self.received)
            return result

        return deferred

    def _stop(self, signum: int) -> None:
        """The first stop: raised here, or where the deferring callback returns."""
        self.received = signum
        if self._deferring:
            self._pending = True
        else:
            raise Stopped(signum)


@contextlib.contextmanager
def signals_stop(grace: float = 25.0, *, exiting: bool = False) -> Iterator[StopSignals]:
    """Turn stop signals into :class:`Stopped` while the block runs (see the module docstring).
    Outside the main thread, where Python delivers no signals, it does nothing.

    When the block ends, the caller's handlers are back and the grace timer is cancelled: a
    program that catches the stop and carries on (a notebook, a service) is not ended later.
    ``exiting=True`` is for a process that exits once the block ends (the command line): after a
    stop, the handlers and the timer stay armed until it is gone, so a second signal, or a
    shutdown that hangs, still ends it at once with the stop's code."""
    stops = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    timers: list[threading.Timer] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stops.received is not None:  # the second: no more waiting
            _exit_now(128 + signum, f"{signal.Signals(signum).name} again")
        timer = threading.Timer(grace, _exit_now, (128 + signum, f"still stopping after {grace:.0f} s"))
        timer.daemon = True  # it runs on through interpreter exit (atexit), where a hang would be
        timer.start()
        timers.append(timer)
        stops._stop(signum)

    saved = {s: signal.getsignal(s) for s in SIGNALS}
    for s, old in saved.items():
        if old is not signal.SIG_IGN:
            signal.signal(s, handle)
    try:
        yield stops
    finally:
        if not (stops.received is not None and exiting):
            for timer in timers:
                timer.cancel()
            for s, old in saved.items():
                signal.signal(s, old if old is not None else signal.SIG_DFL)
