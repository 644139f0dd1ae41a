"""How many workers a job runs, with how many CPUs, GPUs, torch threads and lanes each. No Ray.

The same rule sizes a job for a cluster (its totals from Ray) and for this machine (its CPUs and
CUDA devices, counted without starting Ray), so the engine can decide before starting Ray
whether one worker in this process will do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ConfigError
from ..options import JobOptions

__all__ = [
    "CPU_LANES",
    "GPU_LANES",
    "SHARED_STEP_PIXELS",
    "THREAD_WORKERS",
    "Sizing",
    "check_fits",
    "chunk_slots",
    "in_process",
    "local_totals",
    "size_workers",
    "workers_here",
]

# Lanes per worker when not given. GPU: at batch size 1 a dream step of a video frame is bound by
# kernel launches, and lanes batch them; on CPU a step is not, and one lane is best. The figures:
# docs/benchmarks/gpu.md.
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


# Below this many pixels a frame's dream step is too small to share: one torch thread beats two,
# and decode, flow and encode use the other cores; above it the threads pay (docs/startup.md).
SHARED_STEP_PIXELS = 256 * 144

# The most CPU workers a job on this machine runs as threads of its own process rather than as Ray
# processes. A thread holds the GIL for a share of its dream step, largest on the smallest frames;
# at 4 threads on those that is most of one GIL (docs/startup.md).
THREAD_WORKERS = 4


def in_process(options: JobOptions, sizing: Sizing, chunks: int | None, on_ray: bool) -> bool:
    """Whether a job sized ``sizing`` (``chunks`` once planned) runs in this process, its workers as
    threads: asked for (``ray="never"``), or enough for it — one worker, one chunk, or at most
    :data:`THREAD_WORKERS` CPU workers — unless it is to run on a cluster (``--address``, or this
    process is on Ray) or on Ray (``ray="always"``)."""
    if options.ray == "never":
        return True
    if options.ray == "always" or options.address or on_ray:
        return False
    return sizing.workers == 1 or chunks == 1 or (sizing.device == "cpu" and sizing.workers <= THREAD_WORKERS)


def chunk_slots(options: JobOptions, sizing: Sizing, on_ray: bool) -> int:
    """Chunks dreamed at once by a job sized ``sizing``: workers × lanes, where in this process a
    GPU's worker is the only one (it has the device; several GPUs take Ray, which gives each
    worker its own)."""
    here = in_process(options, sizing, None, on_ray)
    return (1 if here and sizing.device != "cpu" else sizing.workers) * sizing.lanes


def workers_here(options: JobOptions, sizing: Sizing, cpus: float, pixels: int) -> Sizing:
    """The workers of a job run in this process, on frames of ``pixels``: they share the
    machine's ``cpus``, so each worker's torch threads are its share for frames big enough to
    share a step (:data:`SHARED_STEP_PIXELS`), else one — unless ``cpus_per_worker`` says how many
    (the same count gives the same bytes as a Ray worker with those threads; another rounds
    differently)."""
    if options.cpus_per_worker is not None:
        threads = max(1, int(options.cpus_per_worker))
    else:
        threads = max(1, int(cpus) // sizing.workers) if pixels >= SHARED_STEP_PIXELS else 1
    return Sizing(sizing.workers, float(threads), sizing.gpus, threads, sizing.device, sizing.lanes)


def check_fits(sizing: Sizing, cpus: float, gpus: float) -> None:
    """Refuse workers that cannot all run at once on ``cpus`` CPUs and ``gpus`` GPUs (a Ray
    instance of this machine's, which gets no more): the ones left over would wait for a GPU or
    CPU that never frees, until their start-up times out. Where not even one worker fits, the
    job's wait for a node says so (:func:`~.cluster.wait_for_resources`)."""
    need_gpus, need_cpus = sizing.workers * sizing.gpus, sizing.workers * sizing.cpus
    if sizing.gpus and sizing.gpus <= gpus < need_gpus - 1e-9:
        raise ConfigError(
            f"--workers {sizing.workers} with {sizing.gpus:g} GPU each needs {need_gpus:g} GPUs, and this machine "
            f"has {gpus:g}: one worker dreams several chunks at once on its GPU (--lanes), so use --workers "
            f"{max(1, int(gpus // sizing.gpus))}, or let workers share a GPU with --gpus-per-worker "
            f"{gpus / sizing.workers:g}"
        )
    if sizing.cpus <= cpus < need_cpus - 1e-9:
        raise ConfigError(
            f"--workers {sizing.workers} with {sizing.cpus:g} CPU each needs {need_cpus:g} CPUs, and this machine "
            f"has {cpus:g}: use --workers {max(1, int(cpus // sizing.cpus))} or fewer, or --ray never (threads)"
        )


def local_totals() -> tuple[float, float]:
    """(CPUs, GPUs) of this machine as a local Ray instance would count them."""
    import torch

    return float(os.cpu_count() or 1), float(torch.cuda.device_count() if torch.cuda.is_available() else 0)
