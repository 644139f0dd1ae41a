"""Joining a Ray cluster (or starting a local one) without waiting forever, and sizing workers.

``ray.init`` on an address where nothing listens retries for minutes; a typo in ``--address``
must cost seconds. So an address with a host and port is first tried with a plain TCP connect
(``connect_timeout``), and only an address that answers is handed to Ray.
"""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlparse

import ray

from ..config import JobOptions
from ..errors import JobError

__all__ = ["CPU_LANES", "GPU_LANES", "connect", "resources"]

# Lanes per worker when not given. GPU: at batch size 1 a dream step of a video frame is bound by
# kernel launches; on an H200 at 1280×720, lanes 2/4/8 gave 1.6×/2.1×/2.3× one lane's frames/s
# (fp32) and an 8-lane render 2.6× (1080p: 2.0×), at 0.8 GB per lane. CPU: see README, "Lanes".
GPU_LANES = 8
CPU_LANES = 1


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
    target = _host_port(address) if address else None
    if target is not None:
        try:
            socket.create_connection(target, timeout=timeout).close()
        except OSError as exc:
            raise JobError(
                f"no Ray cluster answers at {address} ({exc.strerror or exc.__class__.__name__}, waited up to "
                f"{timeout:.0f} s); is the head running, and is the address HOST:PORT of its GCS (default 6379)?"
            ) from None
    try:
        # Ray's start-up chatter (token notices, "started a local instance") is not the user's news
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:  # a new instance of our own, even if another driver runs one on this machine
            ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"cannot connect to a Ray cluster at {address or 'a new local instance'}: {exc}") from None


def resources(options: JobOptions) -> tuple[int, float, float, int, str, int]:
    """(workers, CPUs per worker, GPUs per worker, torch threads, device kind, lanes) on this cluster."""
    total = ray.cluster_resources()
    gpus = total.get("GPU", 0.0)
    gpus_per = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    threads = max(1, int(options.cpus_per_worker))
    if gpus_per > 0:
        workers = options.workers or max(1, int(gpus // gpus_per))
        return workers, options.cpus_per_worker, gpus_per, threads, "cuda", options.lanes or GPU_LANES
    cpus = total.get("CPU", os.cpu_count() or 1)
    workers = options.workers or max(1, int(cpus // options.cpus_per_worker))
    return workers, options.cpus_per_worker, 0.0, threads, "cpu", options.lanes or CPU_LANES
