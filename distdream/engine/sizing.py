"""How many workers a job runs, with how many CPUs, GPUs, torch threads and lanes each. No Ray.

The same rule sizes a job for a cluster (its totals from Ray) and for this machine (its CPUs and
CUDA devices, counted without starting Ray), so the engine can decide before starting Ray
whether one worker in this process will do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import JobOptions

__all__ = ["CPU_LANES", "GPU_LANES", "Sizing", "local_totals", "one_worker_here", "size_workers"]

# Lanes per worker when not given. GPU: at batch size 1 a dream step of a video frame is bound by
# kernel launches; on an H200 at 1280×720, lanes 2/4/8 gave 1.6×/2.1×/2.3× one lane's frames/s
# (fp32) and an 8-lane render 2.6× (1080p: 2.0×), at 0.8 GB per lane. CPU: see README, "Lanes".
GPU_LANES = 8
CPU_LANES = 1


@dataclass(frozen=True)
class Sizing:
    """Workers and what each asks for."""

    workers: int
    cpus: float  # per worker
    gpus: float  # per worker
    threads: int  # torch threads per worker
    device: str  # "cuda" or "cpu"
    lanes: int


def size_workers(options: JobOptions, cpus: float, gpus: float) -> Sizing:
    """Size a job for a cluster (or machine) with ``cpus`` CPUs and ``gpus`` GPUs in all."""
    gpus_per = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    cpus_per = options.cpus_per_worker or 1.0
    threads = max(1, int(cpus_per))
    if gpus_per > 0:
        workers = options.workers or max(1, int(gpus // gpus_per))
        return Sizing(workers, cpus_per, gpus_per, threads, "cuda", options.lanes or GPU_LANES)
    workers = options.workers or max(1, int(cpus // cpus_per))
    return Sizing(workers, cpus_per, 0.0, threads, "cpu", options.lanes or CPU_LANES)


def one_worker_here(options: JobOptions, sizing: Sizing, cpus: float) -> Sizing:
    """The one worker of a job run in this process: it has the machine, so its torch threads are
    every CPU unless ``cpus_per_worker`` says how many (the same count gives the same bytes as a
    Ray worker with those threads; another count rounds differently)."""
    threads = max(1, int(options.cpus_per_worker or cpus))
    return Sizing(1, float(threads), sizing.gpus, threads, sizing.device, sizing.lanes)


def local_totals() -> tuple[float, float]:
    """(CPUs, GPUs) of this machine as a local Ray instance would count them."""
    import torch

    return float(os.cpu_count() or 1), float(torch.cuda.device_count() if torch.cuda.is_available() else 0)
