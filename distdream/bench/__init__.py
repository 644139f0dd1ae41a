"""``distdream bench``: every figure measured side by side with its reference, in one run.

The sections, each a module of its own:

- ``step`` (:mod:`.step`): one dream iteration against the naive loop, at every precision the
  device runs, at one or more image sizes;
- ``io`` (:mod:`.videoio`): range reads against decoding from the start, joins against re-encodes;
- ``engine`` (:mod:`.engine`): the distributed engine on a local Ray instance (the only section
  that needs Ray);
- ``lanes`` (:mod:`.lanes`): frames/s of one device for lanes × precision, with peak memory per
  lane and how far each setting moves the frames;
- ``render`` (:mod:`.render`): one worker's render end to end in this process, per stage
  (decode, flow, dream, encode) and the share of time the network waited on the others;
- ``halving`` (:mod:`.render`, CUDA only): lanes on a card capped below what they need;
- ``coherence`` (:mod:`.coherence`): E_warp of independent frames, the seed tool's rule, the
  previous default, the default and the temporal term, each at the default's strength;
- ``compile``: ``torch.compile`` against eager at the default precision, one lane and the most
  lanes, with the compile time of each batch size apart (not run unless asked for).

:func:`run_sections` runs a :class:`BenchPlan` section by section, within an optional time
limit, handing the figures gathered so far to ``save`` after each part, so an interrupted run
(Ctrl-C, or ``timeout -s INT``) keeps everything it measured. :mod:`.report` prints and plots them.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from ..config import DreamConfig, RenderConfig
from ..dream import resolve_device
from ..errors import ConfigError
from .coherence import CoherenceBenchmark, bench_coherence
from .common import device_name
from .engine import EngineBenchmark, bench_engine
from .lanes import LaneRow, LanesBenchmark, bench_lanes
from .render import HalvingBenchmark, RenderBenchmark, bench_halving, bench_render
from .report import plot, report
from .step import StepBenchmark, bench_step
from .videoio import IOBenchmark, bench_io

__all__ = [
    "SECTIONS",
    "BenchPlan",
    "CoherenceBenchmark",
    "EngineBenchmark",
    "HalvingBenchmark",
    "IOBenchmark",
    "LaneRow",
    "LanesBenchmark",
    "RenderBenchmark",
    "StepBenchmark",
    "bench_coherence",
    "bench_engine",
    "bench_halving",
    "bench_io",
    "bench_lanes",
    "bench_render",
    "bench_step",
    "environment",
    "plot",
    "report",
    "run_sections",
]

SECTIONS = ("step", "io", "engine", "lanes", "render", "halving", "coherence", "compile")

Size = tuple[int, int]


@dataclass(frozen=True)
class BenchPlan:
    """What one ``distdream bench`` run measures. ``None`` sizes pick the device's defaults."""

    sections: tuple[str, ...] = ()  # empty: every section this machine can run
    quick: bool = False  # fewer repeats, shorter clips, smaller frames: rough figures in seconds
    device: str | None = None
    step_sizes: tuple[int, ...] = (256,)
    frame_size: Size | None = None  # lanes and halving; 1280×720 on CUDA, 160×90 on CPU
    lanes: tuple[int, ...] = (1, 2, 4, 8)
    compile: bool = False  # torch.compile rows in the lanes figures
    render_sizes: tuple[Size, ...] = ()  # default: the frame size
    render_frames: int | None = None  # default: 120 on CUDA, 24 on CPU
    render_lanes: tuple[int, ...] = (1,)
    workers: int | None = None  # N for the engine's scaling figure
    time_limit: float | None = None  # seconds; a part that would start later is skipped

    def validate(self) -> BenchPlan:
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ConfigError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
        if any(s < 32 for s in self.step_sizes):
            raise ConfigError(f"--size {min(self.step_sizes)}: give at least 32 pixels")
        if any(n < 1 for n in (*self.lanes, *self.render_lanes)):
            raise ConfigError("lane counts must be at least 1")
        if self.render_frames is not None and self.render_frames < max(self.render_lanes):
            raise ConfigError(f"--render-frames {self.render_frames}: give at least one frame per lane")
        return self


def ray_installed() -> bool:
    """Whether Ray can be imported here (the engine section needs it; nothing else does)."""
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
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "distdream": ours,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                "gpu_memory_mib": props.total_memory // 2**20, "multiprocessors": props.multi_processor_count}
    return env


def _sections(plan: BenchPlan, cuda: bool, echo: Callable[[str], None]) -> list[str]:
    if plan.sections:
        if "halving" in plan.sections and not cuda:
            raise ConfigError("the halving section caps a CUDA card's memory; run it with a GPU (--device cuda)")
        if "engine" in plan.sections and not ray_installed():
            raise ConfigError("the engine section runs on Ray, which is not installed: pip install 'ray[default]'")
        return list(plan.sections)
    chosen = [s for s in SECTIONS if s != "compile" and (s != "halving" or cuda)]
    if not ray_installed():
        echo("note: Ray is not installed; skipping the engine section (every other section runs without it)")
        chosen.remove("engine")
    return chosen


def run_sections(
    plan: BenchPlan,
    figures: dict[str, Any],
    *,
    echo: Callable[[str], None] = print,
    save: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``plan`` into ``figures`` (filled in place, so an interrupted run keeps what it has).

    Prints each part's report as it finishes and calls ``save(figures)`` after it.
    """
    plan = plan.validate()
    dev = resolve_device(plan.device)
    cuda = dev.type == "cuda"
    sections = _sections(plan, cuda, echo)
    figures["env"] = environment(dev)
    deadline = None if plan.time_limit is None else time.monotonic() + plan.time_limit
    frame_size = plan.frame_size or ((96, 64) if plan.quick else (1280, 720) if cuda else (160, 90))

    def stored() -> None:
        if save is not None:
            save(figures)

    def in_time(part: str) -> bool:
        if deadline is not None and time.monotonic() > deadline:
            figures.setdefault("skipped", []).append(part)
            echo(f"{part}: skipped (past the {plan.time_limit:.0f} s time limit)")
            stored()
            return False
        return True

    for section in sections:
        if section == "step":
            for size in plan.step_sizes:
                if in_time(f"step {size}"):
                    r = bench_step(size=size, repeats=5 if plan.quick else 20, device=plan.device)
                    figures.setdefault("step", []).append(r.to_dict())
                    report("step", [r.to_dict()], echo)
                    stored()
        elif section == "render":
            sizes = plan.render_sizes or (frame_size,)
            frames = plan.render_frames or (8 if plan.quick else 120 if cuda else 24)
            for width, height in sizes:
                for lanes in plan.render_lanes:
                    if in_time(f"render {width}x{height} {lanes} lanes"):
                        config = RenderConfig(keyframe_settle=0) if plan.quick else None  # quick: rough, in seconds
                        r = bench_render(width=width, height=height, frames=frames, lanes=lanes, device=plan.device,
                                         config=config)
                        figures.setdefault("render", []).append(r.to_dict())
                        report("render", [r.to_dict()], echo)
                        stored()
        elif in_time(section):
            if section == "io":
                result: Any = bench_io(frames=300 if plan.quick else 1500, gop=100 if plan.quick else 250)
            elif section == "engine":
                result = bench_engine(quick=plan.quick, workers=plan.workers)
            elif section == "lanes":
                result = bench_lanes(device=plan.device, width=frame_size[0], height=frame_size[1],
                                     frames_per_lane=3 if plan.quick else 6, lanes=plan.lanes, compile=plan.compile)
            elif section == "coherence":
                if plan.quick:  # a light dream on a short clip: the table's shape, in a minute
                    light = RenderConfig(dream=DreamConfig(num_iterations=2, num_octaves=2), crf=12)
                    result = bench_coherence(frames=12, width=64, height=48, config=light, device=plan.device,
                                             max_renders=2)
                else:
                    size = (320, 180) if cuda else (128, 72)
                    result = bench_coherence(frames=48 if cuda else 36, width=size[0], height=size[1],
                                             device=plan.device)
            elif section == "compile":
                result = bench_lanes(device=plan.device, width=frame_size[0], height=frame_size[1],
                                     frames_per_lane=3 if plan.quick else 6, lanes=(1, max(plan.lanes)),
                                     settings=[DreamConfig()], compile=True)
            else:  # halving
                try:
                    result = bench_halving(width=frame_size[0], height=frame_size[1], lanes=max(plan.lanes),
                                           device=plan.device)
                except torch.OutOfMemoryError as exc:  # even one lane did not fit under the cap
                    figures["halving"] = {"error": str(exc).splitlines()[0]}
                    echo(f"halving: one lane did not fit under the cap either ({figures['halving']['error']})")
                    stored()
                    continue
            figures[section] = result.to_dict()
            report(section, figures[section], echo)
            stored()
    return figures
