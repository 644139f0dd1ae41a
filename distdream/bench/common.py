"""What every benchmark needs: device names, device syncs, the precisions a device runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ..dream import Dreamer
from ..frames.lanes import LaneBatcher

__all__ = ["device_name", "in_lanes", "precisions", "sync"]

T = TypeVar("T")


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu (2 cores)``: the card or machine a figure was measured on."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} cores)"


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a wall-clock interval covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precisions(device: torch.device) -> list[str]:
    """The network precisions ``device`` runs, fp32 first."""
    if device.type != "cuda":
        return ["fp32"]
    return ["fp32", "bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]


def in_lanes(dreamer: Dreamer, count: int, body: Callable[[int, Any], T]) -> tuple[list[T], LaneBatcher | None]:
    """``body(k, lane)`` for ``k < count``, each on a thread of its own as a lane of one batcher.

    With one lane, ``body(0, dreamer)`` runs in this thread with no batcher. Returns the results in
    lane order and the batcher (for its counters); the first lane's failure is raised.
    """
    if count == 1:
        return [body(0, dreamer)], None
    batcher = LaneBatcher(dreamer)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def lane_job(k: int) -> None:
        try:
            with batcher.lane() as lane:
                results[k] = body(k, lane)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lane_job, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    if errors:
        raise errors[0]
    return [results[k] for k in range(count)], batcher
