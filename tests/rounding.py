"""The tolerance for renders that round differently: the one docs/benchmarks/gpu.md states.

Lanes (a batch of chunks), where the carry runs, and precision change rounding, never the recipe.
DeepDream amplifies rounding step after step, and frame after frame (each frame re-dreams the
dream carried from the one before), by as much as the host's kernels allow: on some CPUs two
such renders agree to the level for many frames, on others a keyframe already moves by a level,
four frames later they lie half as far apart as two seeds' dreams, and once drifted apart for
good about 0.65 as far. So no bound on single pixels holds on every host. What does, against
the same render without lanes (or with the carry on the host), with the same seed: the dream is
as strong (mean |dream − input| within 2 %) and closer to it than 0.8 of the distance at which a
render with another seed lies from it. A render that mixed up a generator, a flow or a carried
state lands where another seed does (0.97–1.04 of it, measured on the test clip) and fails. How
to check that a test holds on other kernels: docs/development.md, "Timing and rounding".
"""

from __future__ import annotations

import numpy as np
import pytest

STRENGTH = 0.02  # the same dream strength, relative
CLOSER = 0.8  # at most this fraction of another seed's distance


def levels(frame: np.ndarray) -> np.ndarray:
    """A float frame (1.0 full scale) in levels of 255, as a writer quantizes it."""
    return np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a − b| of two 8-bit frames, in levels."""
    assert a.dtype == b.dtype == np.uint8  # float frames cast to int would compare nothing
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def strength(frames: list[np.ndarray], source: list[np.ndarray]) -> float:
    """How far a dream moved the pixels: mean |dream − input| in levels."""
    return float(np.mean([mean_difference(f, s) for f, s in zip(frames, source, strict=True)]))


def distance(frames: list[np.ndarray], other: list[np.ndarray]) -> float:
    """Mean |Δ| in levels between two renders of the same frames."""
    return float(np.mean([mean_difference(a, b) for a, b in zip(frames, other, strict=True)]))


def assert_same_recipe(got: list[np.ndarray], want: list[np.ndarray], other_seed: list[np.ndarray], source) -> None:
    """``got`` is ``want`` rounded otherwise (see the module docstring): 8-bit frames of the same
    range, ``other_seed`` the same render with another seed, ``source`` the input's frames."""
    assert len(got) == len(want) == len(other_seed) == len(source)
    assert strength(got, source) == pytest.approx(strength(want, source), rel=STRENGTH)
    off, seed_off = distance(got, want), distance(other_seed, want)
    assert off < CLOSER * seed_off, (off, seed_off)
