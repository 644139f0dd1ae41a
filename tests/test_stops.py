"""Stop signals: an ignored signal stays ignored (``nohup``), and an exit at once ends the
process with its own code before its children are killed (distdream.stops)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from distdream.stops import Stopped, signals_stop


def test_a_signal_the_process_was_told_to_ignore_stays_ignored() -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup distdream render …` starts it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with signals_stop():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))  # a stop, where it is not ignored
            signal.raise_signal(signal.SIGHUP)  # the render goes on
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the caller's, back
    finally:
        for s, old in saved.items():
            signal.signal(s, old)


def test_an_exit_at_once_keeps_its_code_and_then_ends_the_children() -> None:
    script = (
        "import subprocess, sys\n"
        "from distdream.stops import exit_ending_children\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "exit_ending_children(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10  # the reaper starts a Python of its own once the process has gone
    while not gone(child):
        assert time.monotonic() < deadline, "the child outlived its parent's exit"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # also when it ends between the two questions
        return True


STOPPED_IN_A_BLOCK = """
import os, signal, sys, time
from distdream.stops import Stopped, signals_stop
def mine(*_):
    print("mine", flush=True)
signal.signal(signal.SIGTERM, mine)
try:
    with signals_stop(grace=1.0, exiting={exiting}):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the stop arrives first
except Stopped:
    print("stopped", flush=True)
print("handler back" if signal.getsignal(signal.SIGTERM) is mine else "ours still", flush=True)
time.sleep(3)  # past the grace: an armed timer ends the process here
print("alive", flush=True)
"""


def test_a_library_call_gives_the_caller_its_handlers_back_and_ends_nothing_later() -> None:
    """A notebook or a service that catches the stop and carries on is not killed after the grace."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_IN_A_BLOCK.format(exiting=False)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.split("\n")[:3] == ["stopped", "handler back", "alive"], done


def test_a_command_line_stays_armed_until_it_is_gone() -> None:
    """After a stop the command line exits; a cleanup that outlasts the grace ends it with the stop's code."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_IN_A_BLOCK.format(exiting=True)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 143 and done.stdout.split() == ["stopped", "ours", "still"], done
    assert "still stopping after 1 s; exiting at once" in done.stderr


def test_a_stop_during_a_deferring_callback_is_raised_as_it_returns() -> None:
    """What the main thread draws while it follows a job is not cut off halfway (a lock left taken)."""
    seen: list[str] = []

    def draw() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
        seen.append("drawn")

    with pytest.raises(Stopped), signals_stop() as stops:
        stops.deferring(draw)()
        seen.append("went on")
    assert seen == ["drawn"] and stops.received == signal.SIGTERM
