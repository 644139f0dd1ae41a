"""What every benchmark needs: device names, device syncs, the precisions a device runs."""

from __future__ import annotations

import os

import torch

__all__ = ["device_name", "precisions", "sync"]


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
