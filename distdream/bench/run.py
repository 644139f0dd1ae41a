"""One ``distdream bench`` run: a :class:`~.base.BenchPlan`, run section by section within a time limit.

Each section's figures go into one dict as soon as they are measured, and ``save`` gets the dict
after every part, so an interrupted run keeps everything it measured. The sections and their
order are :data:`~.sections.SECTIONS`; each section's code is in its own module.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch

from ..compute import resolve_device
from ..errors import ConfigError
from .base import BenchPlan, BenchRun, Echo
from .common import device_name
from .report import report
from .sections import SECTIONS, Section, names

__all__ = ["environment", "run_sections"]


def ray_installed() -> bool:
    """Whether Ray can be imported here (the engine, parity and startup sections need it; nothing else does)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # sys.modules["ray"] is None: imports of it are blocked
        return False


def environment(device: torch.device) -> dict[str, Any]:
    """Where and when the figures were measured."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("distdream")
    except PackageNotFoundError:  # run from a source tree (e.g. on a machine with no installs)
        ours = "source tree"
    env: dict[str, Any] = {
        "device": device_name(device),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "distdream": ours,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "gpu_memory_mib": props.total_memory // 2**20,
            "multiprocessors": props.multi_processor_count,
        }
    return env


def _sections(plan: BenchPlan, cuda: bool, echo: Echo) -> list[Section]:
    if plan.sections:
        chosen = [s for s in SECTIONS if s.name in plan.sections]
        chosen.sort(key=lambda s: plan.sections.index(s.name))  # in the order asked for
        for s in chosen:
            if s.cuda_only and not cuda:
                raise ConfigError(f"the {s.name} section needs a CUDA card; run it with a GPU (--device cuda)")
        on_ray = [s.name for s in chosen if s.needs_ray]
        if on_ray and not ray_installed():
            raise ConfigError(
                f"the {' and '.join(on_ray)} section runs on Ray, which is not installed: pip install 'ray[default]'"
            )
        return chosen
    chosen = [s for s in SECTIONS if s.by_default and (cuda or not s.cuda_only)]
    if not ray_installed():
        skipped = [s.name for s in chosen if s.needs_ray]
        echo(f"note: Ray is not installed; skipping the {' and '.join(skipped)} sections (the others run without it)")
        chosen = [s for s in chosen if not s.needs_ray]
    return chosen


def run_sections(
    plan: BenchPlan,
    figures: dict[str, Any],
    *,
    echo: Echo = print,
    save: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``plan`` into ``figures`` (filled in place, so an interrupted run keeps what it has).

    Prints each part's report as it finishes and calls ``save(figures)`` after it.
    """
    plan = plan.validate(names())
    dev = resolve_device(plan.device)
    deadline = None if plan.time_limit is None else time.monotonic() + plan.time_limit
    run = BenchRun(plan, dev.type == "cuda", figures, echo, save, deadline, report)
    chosen = _sections(plan, run.cuda, echo)
    figures["env"] = environment(dev)
    for section in chosen:
        section.parts().run(run)
    return figures
