"""Joining a Ray cluster (or starting a local one) without waiting forever, and sizing workers.

``ray.init`` on an address where nothing listens, or where something other than Ray answers
(the dashboard's port typed for the GCS's), retries for minutes; a typo in ``--address`` must
cost seconds. So an address with a host and port is first tried with a plain TCP connect and
then asked to speak gRPC, as a GCS (or a Ray client server) does, within ``connect_timeout``; only
an address that does is handed to Ray. ``ray.init`` also
installs a SIGTERM handler of its own (``sys.exit``); a handler the caller installed stays, and
stays through ``ray.shutdown`` (:func:`_keep_signal_handlers`). A local instance's processes do
not take the stop signals meant for the render (:func:`_signals_for_the_driver_only`).

A worker that asks for what no node has (a GPU on a CPU cluster) would wait forever for Ray to
place it: :func:`wait_for_resources` fails in seconds instead, naming what the cluster has, or
waits a bounded, visible time where nodes may still come (an autoscaling cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import ray
from ray._private import auto_init_hook, ray_constants

from ..errors import JobCancelled, JobError
from ..options import JobOptions
from .sizing import Sizing, size_workers

__all__ = ["connect", "resources", "totals", "wait_for_resources"]


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; ``None`` for ``auto`` and the like."""
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if parsed.hostname and parsed.port:
        return parsed.hostname, parsed.port
    return None


def connect(address: str | None, timeout: float = 30.0) -> None:
    """Join the cluster at ``address``, or start a local instance of our own; fail within ``timeout``."""
    if ray.is_initialized():
        return
    _no_auto_init()
    _keep_signal_handlers()
    target = _host_port(address) if address else None
    if target is not None:
        try:
            socket.create_connection(target, timeout=timeout).close()
        except OSError as exc:
            raise JobError(
                f"no Ray cluster answers at {address} ({exc.strerror or exc.__class__.__name__}, waited up to "
                f"{timeout:.0f} s); is the head running, and is the address HOST:PORT of its GCS (default 6379)?"
            ) from None
        _check_grpc(str(address), target, timeout)
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        # Ray's start-up chatter (token notices, "started a local instance") is not the user's news
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:  # a new instance of our own, even if another driver runs one on this machine
            with _signals_for_the_driver_only():
                ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"cannot connect to a Ray cluster at {address or 'a new local instance'}: {exc}") from None
    except SystemExit as exc:  # Ray's own handler, in place while it starts, took a SIGTERM meant for ours
        if main and exc.code == signal.SIGTERM and handler not in (None, signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, handler)
            signal.raise_signal(signal.SIGTERM)  # handled here and now: a stop, not an exit
        raise
    finally:
        if main and handler not in (None, signal.SIG_DFL):  # the caller's own: a render stops, not exits
            signal.signal(signal.SIGTERM, handler)


# an HTTP/2 client's connection preface and an empty SETTINGS frame: a gRPC server answers with a
# SETTINGS frame of its own (9-byte header, type 0x04)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _check_grpc(address: str, target: tuple[str, int], timeout: float) -> None:
    """Raise :class:`JobError` unless ``target`` answers as a gRPC server (a Ray GCS or client
    server) within ``timeout``, naming what answered instead."""
    reply = b""
    try:
        with socket.create_connection(target, timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(_HTTP2_PREFACE)
            while len(reply) < 9 and (chunk := conn.recv(64)):
                reply += chunk
    except OSError:  # a timeout, or the connection closed on us: judged by what came
        pass
    if len(reply) >= 9 and reply[3] == 4:
        return
    if reply.lstrip().lower().startswith((b"http/", b"<!doctype", b"<html")):  # a status line, or a bare page
        seen = "a web server (a Ray dashboard, whose port is 8265 by default?)"
    elif reply:
        seen = f"something that is not Ray (it answered {reply[:24]!r})"
    else:
        seen = f"something that does not answer as Ray does within {timeout:.0f} s"
    raise JobError(
        f"{address} is {seen}, not a Ray cluster; the address is HOST:PORT of the head's GCS "
        "(6379 by default, as `ray start --head` prints it), or ray://HOST:10001 for Ray's client"
    )


@contextlib.contextmanager
def _signals_for_the_driver_only() -> Iterator[None]:
    """Start a local instance with SIGTERM and SIGHUP blocked in the processes it starts (Ray
    blocks SIGINT there itself): a signal to the whole process group (a scheduler ending the job,
    ``kill -- -PGID``) then reaches only the driver, which stops the job in order and then ends
    its instance (the command line kills it as it exits), instead of racing the instance's own
    exit (Ray ends a driver whose raylet has gone at once, with code 1). A child inherits the mask
    of the thread that started it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # one that came meanwhile is delivered now


def _no_auto_init() -> None:
    """Ray starts a new local instance when a call finds none (``RAY_ENABLE_AUTO_CONNECT``). A
    job's thread that outlives a stop (its Ray call returned only when the cluster went down)
    must fail instead, not start a cluster of its own in a process that is exiting. Ray reads the
    variable once, when it is imported, so its hook is told too; the variable covers processes
    started from here."""
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    auto_init_hook.enable_auto_connect = False


def _keep_signal_handlers() -> None:
    """Ray's driver installs absl's crash handler for SIGSEGV, SIGABRT, SIGFPE, SIGILL and SIGTERM
    when it connects and, at ``ray.shutdown``, leaves SIGTERM at its default action while Python
    still believes its own handler is there: a second SIGTERM during the shutdown that follows a
    stop would kill the process outright, before it ends its children. Ray reads whether to install
    it once, at import, into ``ray_constants``; this driver is told there (the local instance it
    starts keeps the handler, and its crash reports)."""
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def totals() -> tuple[float, float]:
    """(CPUs, GPUs) of the cluster this process is connected to."""
    total = ray.cluster_resources()
    return float(total.get("CPU", 0.0)), float(total.get("GPU", 0.0))


def resources(options: JobOptions) -> Sizing:
    """Workers, and what each asks for, on the cluster this process is connected to."""
    total = ray.cluster_resources()
    return size_workers(options, total.get("CPU", os.cpu_count() or 1), total.get("GPU", 0.0))


def _amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}{'s' if value != 1 else ''}"


def wait_for_resources(
    cpus: float,
    gpus: float,
    wait: float,
    cancelled: threading.Event,
    on_wait: Callable[[str | None], None] = lambda _: None,
) -> None:
    """Return once a live node could host a worker asking for ``cpus`` and ``gpus``; raise
    :class:`JobError` naming what the cluster has if none appears within ``wait`` seconds
    (``on_wait`` hears how long it has waited, every two seconds)."""
    t0 = time.monotonic()
    while True:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0.0) >= cpus and r.get("GPU", 0.0) >= gpus for r in nodes):
            on_wait(None)
            return
        waited = time.monotonic() - t0
        ask = " and ".join([_amount(gpus, "GPU")] * bool(gpus) + [_amount(cpus, "CPU")] * bool(cpus))
        if cancelled.is_set():
            raise JobCancelled("job cancelled while waiting for a node that can host a worker")
        if waited >= wait:
            have = ray.cluster_resources()
            raise JobError(
                f"no worker can start: each asks for {ask} and no node has that (the cluster has "
                f"{_amount(have.get('GPU', 0.0), 'GPU')}, {_amount(have.get('CPU', 0.0), 'CPU')} on "
                f"{_amount(len(nodes), 'node')})"
                + (f", waited {waited:.0f} s" if wait else "")
                + "; ask for less (--gpus-per-worker, cpus_per_worker) or add nodes that have it"
            )
        on_wait(f"waiting for {ask} on one node: {waited:.0f} s of {wait:.0f}")
        time.sleep(min(2.0, max(0.1, wait - waited)))
