"""One ``distdream bench`` run: a :class:`BenchPlan`, run section by section within a time limit.

Each section's figures go into one dict as soon as they are measured, and ``save`` gets the dict
after every part, so an interrupted run keeps everything it measured.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import torch

from ..compute import resolve_device
from ..config import DreamConfig, Encoding, RenderConfig
from ..errors import ConfigError
from . import SECTIONS
from .codecs import bench_codecs
from .coherence import bench_coherence
from .common import device_name
from .engine import bench_engine
from .lanes import bench_lanes
from .onedream import bench_one_dream
from .parity import bench_parity
from .render import bench_halving, bench_render
from .report import report
from .startup import bench_startup
from .step import bench_step
from .videoio import bench_io

__all__ = ["BenchPlan", "environment", "run_sections"]

Size = tuple[int, int]
CARRY = {"auto": None, "device": True, "host": False}  # --render-carry → RenderConfig.carry_on_device


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
    render_carry: tuple[str, ...] = ("auto",)  # where each render's carry runs: auto, device, host
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
        if not self.render_carry or any(c not in CARRY for c in self.render_carry):
            raise ConfigError(f"--render-carry {','.join(self.render_carry)!r}: choose from {', '.join(CARRY)}")
        if self.render_frames is not None and self.render_frames < max(self.render_lanes):
            raise ConfigError(f"--render-frames {self.render_frames}: give at least one frame per lane")
        return self


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


def _sections(plan: BenchPlan, cuda: bool, echo: Callable[[str], None]) -> list[str]:
    if plan.sections:
        if "halving" in plan.sections and not cuda:
            raise ConfigError("the halving section caps a CUDA card's memory; run it with a GPU (--device cuda)")
        if {"engine", "parity", "startup"} & set(plan.sections) and not ray_installed():
            wanted = " and ".join(s for s in ("engine", "parity", "startup") if s in plan.sections)
            raise ConfigError(f"the {wanted} section runs on Ray, which is not installed: pip install 'ray[default]'")
        return list(plan.sections)
    chosen = [s for s in SECTIONS if s not in ("compile", "parity") and (s != "halving" or cuda)]
    if not ray_installed():
        echo("note: Ray is not installed; skipping the engine and startup sections (the others run without it)")
        chosen.remove("engine")
        chosen.remove("startup")
    return chosen


@dataclass
class _Run:
    """One run's state: the plan, the device's defaults, the figures, and the clock."""

    plan: BenchPlan
    cuda: bool
    figures: dict[str, Any]
    echo: Callable[[str], None]
    save: Callable[[dict[str, Any]], None] | None
    deadline: float | None

    @property
    def frame_size(self) -> Size:
        return self.plan.frame_size or ((96, 64) if self.plan.quick else (1280, 720) if self.cuda else (160, 90))

    def stored(self) -> None:
        if self.save is not None:
            self.save(self.figures)

    def in_time(self, part: str) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.figures.setdefault("skipped", []).append(part)
            self.echo(f"{part}: skipped (past the {self.plan.time_limit:.0f} s time limit)")
            self.stored()
            return False
        return True

    def record(self, section: str, figures: Any, *, many: bool = False) -> None:
        """Keep a part's figures (appended for a section of several parts), print and save them."""
        if many:
            self.figures.setdefault(section, []).append(figures)
        else:
            self.figures[section] = figures
        report(section, [figures] if many else figures, self.echo)
        self.stored()


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
    run = _Run(
        plan,
        dev.type == "cuda",
        figures,
        echo,
        save,
        None if plan.time_limit is None else time.monotonic() + plan.time_limit,
    )
    sections = _sections(plan, run.cuda, echo)
    figures["env"] = environment(dev)
    for section in sections:
        if section == "step":
            for size in plan.step_sizes:
                if run.in_time(f"step {size}"):
                    run.record(
                        "step",
                        bench_step(size=size, repeats=5 if plan.quick else 20, device=plan.device).to_dict(),
                        many=True,
                    )
        elif section == "render":
            _renders(run)
        elif section == "parity":
            _parity(run)
        elif run.in_time(section):
            result = _PARTS[section](run)
            if result is not None:
                run.record(section, result.to_dict())
    return figures


def _renders(run: _Run) -> None:
    plan = run.plan
    frames = plan.render_frames or (8 if plan.quick else 120 if run.cuda else 24)
    for width, height in plan.render_sizes or (run.frame_size,):
        for lanes in plan.render_lanes:
            for carry in plan.render_carry:
                if run.in_time(f"render {width}x{height} {lanes} lanes, carry {carry}"):
                    quick = {"keyframe_settle": 0} if plan.quick else {}  # quick: rough, in seconds
                    config = RenderConfig(carry_on_device=CARRY[carry], **quick)
                    result = bench_render(
                        width=width, height=height, frames=frames, lanes=lanes, device=plan.device, config=config
                    )
                    run.record("render", result.to_dict(), many=True)


def _parity(run: _Run) -> None:
    """The engine against the in-process path: a pan at each render size, then 8 shots at the
    frame size (quick: the 8 shots only, tiny, light and lossless, where both paths give the
    same frames)."""
    plan = run.plan
    if plan.quick:
        light = RenderConfig(
            dream=DreamConfig(num_iterations=2, num_octaves=2), keyframe_settle=0, encoding=Encoding(crf=0)
        )
        clips = [("8 shots", (64, 48), 16)]  # cuts, several chunks: the engine's whole path, once
    else:
        light = None
        frames = plan.render_frames or (120 if run.cuda else 24)
        clips = [("one shot", size, frames) for size in plan.render_sizes or (run.frame_size,)]
        clips.append(("8 shots", run.frame_size, 2 * frames))
    for clip, (w, h), frames in clips:
        if run.in_time(f"parity {clip} {w}x{h}"):
            row = bench_parity(clip, width=w, height=h, frames=frames, config=light)
            run.record("parity", row.to_dict(), many=True)


def _io(run: _Run) -> Any:
    return bench_io(frames=300 if run.plan.quick else 1500, gop=100 if run.plan.quick else 250)


def _codecs(run: _Run) -> Any:
    return bench_codecs(
        frames=12 if run.plan.quick else 48, width=160 if run.plan.quick else 640, height=90 if run.plan.quick else 360
    )


def _engine(run: _Run) -> Any:
    return bench_engine(quick=run.plan.quick, workers=run.plan.workers)


def _startup(run: _Run) -> Any:
    return bench_startup(quick=run.plan.quick)


def _lanes(run: _Run) -> Any:
    (w, h), plan = run.frame_size, run.plan
    return bench_lanes(
        device=plan.device,
        width=w,
        height=h,
        frames_per_lane=3 if plan.quick else 6,
        lanes=plan.lanes,
        compile=plan.compile,
    )


def _coherence(run: _Run) -> Any:
    if run.plan.quick:  # a light dream on a short clip: the table's shape, in a minute
        light = RenderConfig(dream=DreamConfig(num_iterations=2, num_octaves=2), encoding=Encoding(crf=12))
        return bench_coherence(frames=12, width=64, height=48, config=light, device=run.plan.device, max_renders=2)
    w, h = (320, 180) if run.cuda else (128, 72)
    return bench_coherence(frames=48 if run.cuda else 36, width=w, height=h, device=run.plan.device)


def _one_dream(run: _Run) -> Any:
    if run.plan.quick:  # a light dream on short clips: the table's shape, in a minute
        light = RenderConfig(dream=DreamConfig(num_iterations=2, num_octaves=2))
        return bench_one_dream(width=64, height=48, still=24, pan=48, reveal=24, chunk_frames=16, span=4, config=light)
    return bench_one_dream()


def _compile(run: _Run) -> Any:
    (w, h), plan = run.frame_size, run.plan
    return bench_lanes(
        device=plan.device,
        width=w,
        height=h,
        frames_per_lane=3 if plan.quick else 6,
        lanes=(1, max(plan.lanes)),
        settings=[DreamConfig()],
        compile=True,
    )


def _halving(run: _Run) -> Any:
    (w, h), plan = run.frame_size, run.plan
    try:
        return bench_halving(width=w, height=h, lanes=max(plan.lanes), device=plan.device)
    except torch.OutOfMemoryError as exc:  # even one lane did not fit under the cap
        run.figures["halving"] = {"error": str(exc).splitlines()[0]}
        run.echo(f"halving: one lane did not fit under the cap either ({run.figures['halving']['error']})")
        run.stored()
        return None


_PARTS: dict[str, Callable[[_Run], Any]] = {
    "io": _io,
    "codecs": _codecs,
    "engine": _engine,
    "startup": _startup,
    "lanes": _lanes,
    "coherence": _coherence,
    "onedream": _one_dream,
    "compile": _compile,
    "halving": _halving,
}
