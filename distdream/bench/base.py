"""What every bench section shares: the run's plan (:class:`BenchPlan`), its state
(:class:`BenchRun`), a section's three parts (:class:`Parts`) and the report's small helpers.

No torch here: ``distdream bench --help`` lists the sections without loading it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CARRY",
    "BenchPlan",
    "BenchRun",
    "Echo",
    "Figures",
    "Panel",
    "Parts",
    "Size",
    "bars",
    "no_panels",
    "recorded",
    "row",
    "times",
]

Size = tuple[int, int]
Echo = Callable[[str], None]
Figures = Mapping[str, Any]
Panel = Callable[[Any], None]  # draws one panel into a matplotlib axis
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

    def validate(self, names: tuple[str, ...]) -> BenchPlan:
        """Check the plan; ``names``: the sections there are."""
        unknown = [s for s in self.sections if s not in names]
        if unknown:
            raise ConfigError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(names)}")
        if any(s < 32 for s in self.step_sizes):
            raise ConfigError(f"--size {min(self.step_sizes)}: give at least 32 pixels")
        if any(n < 1 for n in (*self.lanes, *self.render_lanes)):
            raise ConfigError("lane counts must be at least 1")
        if not self.render_carry or any(c not in CARRY for c in self.render_carry):
            raise ConfigError(f"--render-carry {','.join(self.render_carry)!r}: choose from {', '.join(CARRY)}")
        if self.render_frames is not None and self.render_frames < max(self.render_lanes):
            raise ConfigError(f"--render-frames {self.render_frames}: give at least one frame per lane")
        return self


@dataclass
class BenchRun:
    """One run's state: the plan, the device's defaults, the figures, and the clock. ``show``
    prints a section's figures (:func:`~.report.report`)."""

    plan: BenchPlan
    cuda: bool
    figures: dict[str, Any]
    echo: Echo
    save: Callable[[dict[str, Any]], None] | None
    deadline: float | None
    show: Callable[[str, Any, Echo], None]

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
        self.show(section, [figures] if many else figures, self.echo)
        self.stored()


@dataclass(frozen=True)
class Parts:
    """A section's code, in its own module: ``run(run)`` measures and records its figures,
    ``report(figures, echo)`` prints them, ``panels(figures)`` draws them (none: no panel)."""

    run: Callable[[BenchRun], None]
    report: Callable[[Any, Echo], None]
    panels: Callable[[Figures], list[Panel]]


def recorded(section: str, measure: Callable[[BenchRun], Any]) -> Callable[[BenchRun], None]:
    """The run of a section of one part: measured if in time, recorded unless it gave nothing."""

    def run(bench: BenchRun) -> None:
        if bench.in_time(section):
            result = measure(bench)
            if result is not None:
                bench.record(section, result.to_dict())

    return run


def no_panels(_figures: Figures) -> list[Panel]:
    return []


def row(echo: Echo, label: str, value: str) -> None:
    echo(f"  {label:<46}{value}")


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def bars(ax: Any, names: list[str], values: list[float], title: str) -> None:
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    ax.bar(names, values, color=[colours[i % len(colours)] for i in range(len(values))])
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    for x, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
