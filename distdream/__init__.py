"""distdream: distributed, frame-parallel DeepDream.

The public API. Heavy modules (torch, torchvision) load on first use of a name that needs them,
so ``import distdream`` and the CLI's ``--help`` stay fast.

    >>> import distdream
    >>> cfg = distdream.DreamConfig(dream_layers=("_blocks.10",), num_iterations=5)
    >>> distdream.dream_image("in.jpg", "out.png", cfg)  # doctest: +SKIP
    >>> job = distdream.submit("in.mp4", "out.mp4", distdream.RenderConfig(dream=cfg), workers=4)  # doctest: +SKIP
    >>> job.result()  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .config import DreamConfig, Encoding, FlowConfig, RenderConfig
from .errors import (
    ChunkFailed,
    ConfigError,
    DistDreamError,
    InputError,
    JobCancelled,
    JobError,
    ModelError,
    OutputError,
    VideoError,
)
from .options import JobOptions

try:
    __version__ = version("distdream")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+source"

if TYPE_CHECKING:  # pragma: no cover
    from .dream import Dreamer
    from .engine import Job, JobPlan, JobResult, plan, render, submit
    from .models import LayerInfo, LoadedModel, available_models, list_layers, load_model
    from .still import StillResult, dream_array, dream_image
    from .video import VideoIndex, probe, read_frames

__all__ = [
    "ChunkFailed",
    "ConfigError",
    "DistDreamError",
    "DreamConfig",
    "Dreamer",
    "Encoding",
    "FlowConfig",
    "InputError",
    "Job",
    "JobCancelled",
    "JobError",
    "JobOptions",
    "JobPlan",
    "JobResult",
    "LayerInfo",
    "LoadedModel",
    "ModelError",
    "OutputError",
    "RenderConfig",
    "StillResult",
    "VideoError",
    "VideoIndex",
    "available_models",
    "dream_array",
    "dream_image",
    "list_layers",
    "load_model",
    "plan",
    "probe",
    "read_frames",
    "render",
    "submit",
]

_LAZY = {
    "Dreamer": "dream",
    "Job": "engine",
    "JobPlan": "engine",
    "JobResult": "engine",
    "plan": "engine",
    "render": "engine",
    "submit": "engine",
    "LayerInfo": "models",
    "LoadedModel": "models",
    "available_models": "models",
    "list_layers": "models",
    "load_model": "models",
    "StillResult": "still",
    "dream_array": "still",
    "dream_image": "still",
    "VideoIndex": "video",
    "probe": "video",
    "read_frames": "video",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'distdream' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
