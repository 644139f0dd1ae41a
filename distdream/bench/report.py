"""The benchmark's figures as text and as one picture, both drawn from the JSON-ready dicts.

Each section's figures are plain dicts (what ``--json`` writes), so a report can be redrawn from
a saved file as well as from a run. Each section prints and draws itself (its module's
``PARTS``, :mod:`.sections`); this module loops over them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..images import save_figure
from .base import Echo, Figures
from .sections import SECTIONS, section

__all__ = ["plot", "report"]


def report(name: str, figures: Any, echo: Echo) -> None:
    """Print one section's figures (as :func:`~distdream.bench.run_sections` stores them)."""
    section(name).parts().report(figures, echo)


def plot(figures: Figures, path: str | os.PathLike[str]) -> Path:
    """A small figure of the benchmark: one panel per question, readable at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    panels = [panel for s in SECTIONS if s.name in figures for panel in s.parts().panels(figures)]
    if not panels:
        raise ValueError("no figures to plot")
    title = "distdream bench"
    env = figures.get("env")
    if env:
        title += f" — {env.get('device', '')}, {env.get('date', '')}"
    # at most three panels a row, so that the picture stays legible at a page's width
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False)
    for ax, draw in zip(axes.flat, panels):
        draw(ax)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
