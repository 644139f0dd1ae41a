"""``distdream bench``: every figure measured side by side with its reference, in one run.

The sections, each a module of its own:

- ``step`` (:mod:`.step`): one dream iteration against the naive loop, at every precision the
  device runs, at one or more image sizes;
- ``io`` (:mod:`.videoio`): range reads against decoding from the start, joins against re-encodes;
- ``codecs`` (:mod:`.codecs`): every output codec on one 10-bit clip: encode speed, size, error;
- ``engine`` (:mod:`.engine`): the distributed engine on a local Ray instance;
- ``parity`` (:mod:`.parity`): one worker on one device, in this process against through Ray, on
  a long shot at each ``--render-size`` and on 8 short ones at ``--frame-size``: the rate while
  dreaming, start-up apart (not run unless asked for: it is the GPU's figure);
- ``startup`` (:mod:`.startup`): ``distdream render`` from the shell against a seed-style script
  (:mod:`.seed_script`): a one-frame render against the script's start, one worker (in process)
  and two (on Ray) over a pan, and when each phase of the render appeared;
- ``lanes`` (:mod:`.lanes`): frames/s of one device for lanes × precision, with peak memory per
  lane and how far each setting moves the frames;
- ``render`` (:mod:`.render`): one worker's render end to end in this process, per stage
  (decode, flow, dream, encode) and the share of time the network waited on the others;
- ``halving`` (:mod:`.render`, CUDA only): lanes on a card capped below what they need;
- ``coherence`` (:mod:`.coherence`): E_warp of independent frames, the seed tool's rule, the
  previous default, the default and the temporal term, each at the default's strength;
- ``onedream`` (:mod:`.onedream`): one dream over time, steady against breathing: a still shot
  over 64 frames and in crossfaded chunks, a pan's 16-frame span error across crossfade windows,
  and a background a passing object uncovered;
- ``compile``: ``torch.compile`` against eager at the default precision, one lane and the most
  lanes, with the compile time of each batch size apart (not run unless asked for).

:func:`~.run.run_sections` runs a :class:`~.run.BenchPlan` section by section, within an optional time
limit, handing the figures gathered so far to ``save`` after each part, so an interrupted run
(Ctrl-C, or ``timeout -s INT``) keeps everything it measured. :mod:`.report` prints and plots them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

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

# The sections in the order a run measures them; here, so that the CLI's --help names them
# without importing torch (everything else loads on first use)
SECTIONS = (
    "step",
    "io",
    "codecs",
    "engine",
    "parity",
    "startup",
    "lanes",
    "render",
    "halving",
    "coherence",
    "onedream",
    "compile",
)

_LAZY = {
    "BenchPlan": "run",
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
