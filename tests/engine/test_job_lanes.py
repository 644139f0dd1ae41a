"""Lanes on the engine: workers dream several chunks as one batch, on a real local Ray cluster.

Lanes change rounding only, and DeepDream amplifies rounding frame by frame (each frame re-dreams
the dream carried from the one before), so a lanes render is held to the tolerance
docs/benchmarks/gpu.md states (tests/rounding.py): the dream as strong (within 2 %) and as steady
(warping error within 10 %) as the one-lane render, and closer to it than 0.8 of the distance of
a render with another seed. A lane that saw another lane's generator, flow or state lands as far as
another seed does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.engine import render, testing
from distdream.engine.faults import Fault
from distdream.errors import ConfigError
from distdream.metrics import warping_error
from distdream.samples import pan_frames, write_clip
from distdream.video import probe, read_frames
from tests.rounding import assert_same_recipe

DREAM = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",), jitter=4)
CFG = RenderConfig(
    dream=DREAM, keyframe_settle=0, encoding=Encoding(crf=0, preset="ultrafast")
)  # the light settings of the tolerance
JOB = dict(chunk_frames=8, overlap=2, scan_cuts=False, seams="crossfade")


pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames 96×64 with sound: 5 chunks."""
    return write_clip(tmp_path_factory.mktemp("lanes") / "clip.mp4", list(pan_frames(40, 96, 64)), audio="aac")


@pytest.fixture(scope="module")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], Path]:
    """The one-lane render: its frames and its file."""
    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    result = render(clip, out, CFG, workers=1, lanes=1, ray="never", **JOB)  # the same bytes as on Ray
    assert result.lanes == 1 and result.largest_batch == 1
    return list(read_frames(out)), out


def assert_lanes_tolerance(clip: Path, output: Path, reference_path: Path, control: list[np.ndarray]) -> None:
    got, want, source = list(read_frames(output)), list(read_frames(reference_path)), list(read_frames(clip))
    assert_same_recipe(got, want, control, source)
    assert warping_error(clip, output).mean == pytest.approx(warping_error(clip, reference_path).mean, rel=0.1)


@pytest.fixture(scope="module")
def control(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The same render with another seed: a different dream of the same video."""
    out = tmp_path_factory.mktemp("seed") / "seed.mp4"
    render(
        clip,
        out,
        RenderConfig(
            dream=DreamConfig(**{**DREAM.to_dict(), "seed": 5}),
            keyframe_settle=0,
            encoding=Encoding(crf=0, preset="ultrafast"),
        ),
        workers=2,
        **JOB,
    )
    return list(read_frames(out))


def test_lanes_render_the_frames_of_separate_runs(clip: Path, reference, control, tmp_path: Path) -> None:
    result = render(clip, tmp_path / "lanes.mp4", CFG, workers=2, lanes=2, **JOB)
    assert (result.workers, result.lanes, result.chunks, result.rendered) == (2, 2, 5, 5)
    assert result.largest_batch == 2  # chunks really met in one batch
    assert result.compute == "fp32, channels-last"
    out = probe(result.output)
    assert out.frame_count == 40 and out.pts.tolist() == probe(clip).pts.tolist()
    assert_lanes_tolerance(clip, result.output, reference[1], control)


def test_a_lane_that_fails_or_a_worker_that_dies_costs_only_their_chunks(
    clip: Path, reference, control, tmp_path: Path
) -> None:
    faults = (Fault(chunk=1, at_frame=3, attempts=(0,)), Fault(chunk=3, at_frame=2, attempts=(0,), kind="exit"))
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workers=1, lanes=2, faults=faults, **JOB)
    result = job.result()
    attempts = {c.index: c.attempts for c in job.chunks()}
    assert attempts[1] == 2 and attempts[3] >= 2 and all(c.state == "done" for c in job.chunks())
    assert result.rendered == 5 and probe(result.output).frame_count == 40
    assert_lanes_tolerance(clip, result.output, reference[1], control)


def test_the_watchdog_frees_a_hung_lane_and_its_neighbours(clip: Path, tmp_path: Path) -> None:
    faults = (Fault(chunk=0, at_frame=2, attempts=(0,), kind="hang"),)
    job = testing.submit(clip, tmp_path / "out.mp4", CFG, workers=1, lanes=2, chunk_timeout=8.0, faults=faults, **JOB)
    result = job.result(timeout=300)
    attempts = {c.index: c.attempts for c in job.chunks()}
    # the hung lane holds up its neighbour's batch, so both are killed by the watchdog, then done
    assert attempts[0] == 2 and attempts[1] == 2
    assert all(c.state == "done" for c in job.chunks()) and probe(result.output).frame_count == 40


def test_lanes_must_be_sensible(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lanes"):
        render(clip, tmp_path / "x.mp4", CFG, lanes=0, **JOB)
