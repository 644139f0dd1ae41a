"""``distdream bench``: every figure measured side by side with its reference, in one run.

The sections, what each measures and where it runs are :data:`~.sections.SECTIONS`, one
:class:`~.sections.Section` record each; each section's code (its run, its report and its
panels) lives in its own module (``PARTS``). :func:`~.run.run_sections` runs a
:class:`~.base.BenchPlan` section by section, within an optional time limit, handing the figures
gathered so far to ``save`` after each part, so an interrupted run (Ctrl-C, or ``timeout -s
INT``) keeps everything it measured. :mod:`.report` prints and plots them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .sections import names

__all__ = [
    "SECTIONS",
    "BenchPlan",
    "CodecBenchmark",
    "CoherenceBenchmark",
    "OneDreamBenchmark",
    "EngineBenchmark",
    "HalvingBenchmark",
    "IOBenchmark",
    "LaneRow",
    "LanesBenchmark",
    "ParityRow",
    "RenderBenchmark",
    "StartupBenchmark",
    "StepBenchmark",
    "bench_codecs",
    "bench_coherence",
    "bench_engine",
    "bench_halving",
    "bench_io",
    "bench_lanes",
    "bench_one_dream",
    "bench_parity",
    "bench_render",
    "bench_startup",
    "bench_step",
    "environment",
    "plot",
    "report",
    "run_sections",
]

# the sections' names, in the order a run measures them, for the CLI's --help (no torch imported)
SECTIONS = names()

_LAZY = {
    "BenchPlan": "base",
    "environment": "run",
    "run_sections": "run",
    "CoherenceBenchmark": "coherence",
    "bench_coherence": "coherence",
    "OneDreamBenchmark": "onedream",
    "bench_one_dream": "onedream",
    "EngineBenchmark": "engine",
    "bench_engine": "engine",
    "ParityRow": "parity",
    "bench_parity": "parity",
    "StartupBenchmark": "startup",
    "bench_startup": "startup",
    "HalvingBenchmark": "render",
    "RenderBenchmark": "render",
    "bench_halving": "render",
    "bench_render": "render",
    "IOBenchmark": "videoio",
    "bench_io": "videoio",
    "CodecBenchmark": "codecs",
    "bench_codecs": "codecs",
    "LaneRow": "lanes",
    "LanesBenchmark": "lanes",
    "bench_lanes": "lanes",
    "StepBenchmark": "step",
    "bench_step": "step",
    "plot": "report",
    "report": "report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'distdream.bench' has no attribute {name!r}")
