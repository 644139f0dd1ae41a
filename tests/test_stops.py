"""Stop signals: an ignored signal stays ignored (``nohup``), and an exit at once ends the
process with its own code before its children are killed (distdream.stops)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

from distdream.stops import signals_stop


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
