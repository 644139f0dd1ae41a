"""The bench's sections, in the order a run measures them: one :class:`Section` record each, the
one place a section is registered. Its code (run, report, panels) lives in its own module as that
module's ``PARTS[name]``, loaded on first use: ``distdream bench --help`` lists the sections
without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from .base import Parts

__all__ = ["SECTIONS", "Section", "names", "section"]


@dataclass(frozen=True)
class Section:
    """One section: its name (``--only``), the module that measures it, what it measures, and
    where it runs."""

    name: str
    module: str
    summary: str
    needs_ray: bool = False
    cuda_only: bool = False
    by_default: bool = True  # else run only when asked for (--only)

    def parts(self) -> Parts:
        """The section's run, report and panels (imports its module)."""
        parts: Parts = import_module(f"{__package__}.{self.module}").PARTS[self.name]
        return parts


SECTIONS: tuple[Section, ...] = (
    Section("step", "step", "one dream iteration against the naive loop, at every precision the device runs"),
    Section("io", "videoio", "range reads against decoding from the start, joins against re-encodes"),
    Section("codecs", "codecs", "every output codec on one 10-bit clip: encode speed, size, error"),
    Section(
        "engine", "engine", "the distributed engine on a local Ray instance: scaling, seams, memory", needs_ray=True
    ),
    Section(
        "parity",
        "parity",
        "one worker in this process against through Ray, while dreaming (the GPU's figure)",
        needs_ray=True,
        by_default=False,
    ),
    Section("startup", "startup", "`distdream render` from the shell against a seed-style script", needs_ray=True),
    Section("lanes", "lanes", "frames/s of one device for lanes × precision, memory per lane"),
    Section("render", "render", "one worker's render end to end, per stage (decode, flow, dream, encode)"),
    Section("halving", "render", "lanes on a card capped below what they need", cuda_only=True),
    Section("coherence", "coherence", "warping error of each way to carry the dream, at equal strength"),
    Section("onedream", "onedream", "one dream over time: still shots, slow pans across seams, reveals"),
    Section("compile", "lanes", "torch.compile against eager, one lane and the most lanes", by_default=False),
)


def names() -> tuple[str, ...]:
    return tuple(s.name for s in SECTIONS)


def section(name: str) -> Section:
    return next(s for s in SECTIONS if s.name == name)
