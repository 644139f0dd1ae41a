"""Lanes: several ranges dreamed as one batch give each range what it gets alone.

Batched kernels round differently from unbatched ones (oneDNN picks its blocking by batch
size), and DeepDream amplifies rounding step after step and frame after frame, so a batch's
gradient is held to rounding and its renders to the tolerance docs/benchmarks/gpu.md states
(tests/rounding.py): over a range, the same dream strength within 2 % and closer to the separate
run than 0.8 of the distance of the same range at another seed. A lane that saw another lane's
generator, flow or state lands as far as another seed does.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from distdream.config import DreamConfig, RenderConfig
from distdream.dream import Dreamer
from distdream.errors import ConfigError, ModelError
from distdream.frames.lanes import LaneBatcher
from distdream.frames.pipeline import DreamedFrames
from distdream.samples import pan_frames, write_clip
from distdream.video import VideoIndex, probe, read_frames

from .rounding import assert_same_recipe, levels

FAST = DreamConfig(num_iterations=3, num_octaves=2, dream_layers=("_blocks.5",), jitter=4)
CFG = RenderConfig(dream=FAST, keyframe_settle=0)  # light settings: 3 steps, no extra keyframe steps


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VideoIndex:
    return probe(write_clip(tmp_path_factory.mktemp("lanes") / "clip.mp4", list(pan_frames(24, 64, 48)), crf=0))


@pytest.fixture(scope="module")
def dreamer(lite0) -> Dreamer:
    return Dreamer(FAST, model=lite0, device="cpu")


def _alone(index: VideoIndex, dreamer: Dreamer, a: int, b: int, seed: int) -> list[np.ndarray]:
    """Frames ``[a, b)`` dreamed with ``dreamer``, in levels of 255 as they are written."""
    frames = DreamedFrames(index, a, b, CFG, dreamer, generator=torch.Generator().manual_seed(seed))
    return [levels(rgb) for _, rgb, _ in frames]


def test_a_batch_gives_each_image_its_own_dream(dreamer: Dreamer) -> None:
    images = [torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    steps = [3, 1, 0]  # a keyframe, a carried frame, a frame with nothing to do: they leave the batch early
    alone = [
        dreamer.dream(im, generator=torch.Generator().manual_seed(10 + i), num_iterations=n)
        for i, (im, n) in enumerate(zip(images, steps))
    ]
    counted = [0, 0, 0]
    batch = dreamer.dream_batch(
        images,
        generators=[torch.Generator().manual_seed(10 + i) for i in range(3)],
        num_iterations=steps,
        progress=[lambda n, i=i: counted.__setitem__(i, counted[i] + n) for i in range(3)],
    )
    for a, b in zip(alone, batch, strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    other_seed = dreamer.dream(images[0], generator=torch.Generator().manual_seed(99), num_iterations=3)
    assert float((other_seed - alone[0]).abs().max()) > 1e-2  # what a mixed-up generator would look like
    assert counted == [n * 2 for n in steps]  # two octaves
    assert torch.allclose(batch[2], images[2], atol=1e-5)  # no steps: the image comes back


def test_batched_gradient_matches_to_rounding_with_fast_kernels(dreamer: Dreamer) -> None:
    x = torch.randn(2, 3, 72, 128, generator=torch.Generator().manual_seed(0))
    both = dreamer.gradient(x)
    for i in range(2):
        one = dreamer.gradient(x[i : i + 1])
        assert float((both[i] - one[0]).norm() / one.norm()) < 1e-5


def test_a_batch_needs_one_size(dreamer: Dreamer) -> None:
    with pytest.raises(ConfigError, match="one size"):
        dreamer.dream_batch([torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9)], generators=[torch.Generator()] * 2)


def test_lanes_equal_separate_runs_and_join_when_a_lane_frees(index: VideoIndex, dreamer: Dreamer) -> None:
    ranges = {0: (0, 4), 1: (6, 14), 2: (16, 20)}  # different lengths; lane 2 joins when lane 0 is done
    expected = {k: _alone(index, dreamer, a, b, seed=k) for k, (a, b) in ranges.items()}
    batcher = LaneBatcher(dreamer)
    got: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []
    both_open = threading.Barrier(2, timeout=60)  # lanes 0 and 1 share their first frames, however threads start

    def lane_job(k: int) -> None:
        try:
            with batcher.lane() as lane:
                if k < 2:
                    both_open.wait()
                got[k] = _alone(index, lane, *ranges[k], seed=k)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    first = [threading.Thread(target=lane_job, args=(k,)) for k in (0, 1)]
    for t in first:
        t.start()
    first[0].join(timeout=120)
    late = threading.Thread(target=lane_job, args=(2,))  # what the worker does with a freed lane
    late.start()
    for t in (first[1], late):
        t.join(timeout=120)
    batcher.close()
    assert not errors
    source = list(read_frames(index.path, 0, 24, index=index))
    for k, (a, b) in ranges.items():
        assert_same_recipe(got[k], expected[k], _alone(index, dreamer, a, b, seed=7 + k), source[a:b])
    assert batcher.largest_batch == 2 and batcher.frames == 16 and batcher.batches < 16  # frames were shared


def test_a_failing_lane_leaves_and_the_others_finish(index: VideoIndex, dreamer: Dreamer) -> None:
    batcher = LaneBatcher(dreamer)
    done: dict[str, int] = {}

    def good() -> None:
        with batcher.lane() as lane:
            done["good"] = len(_alone(index, lane, 0, 8, seed=0))  # type: ignore[arg-type]

    def bad() -> None:
        try:
            with batcher.lane() as lane:
                for k, _ in enumerate(DreamedFrames(index, 8, 16, CFG, lane, generator=torch.Generator())):
                    if k == 2:
                        raise RuntimeError("this chunk's encoder broke")
        except RuntimeError:
            done["bad"] = k

    threads = [threading.Thread(target=good), threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    batcher.close()
    assert done == {"good": 8, "bad": 2}


class SmallDevice(Dreamer):
    """A dreamer whose device holds at most ``room`` frames at once (an out-of-memory error beyond)."""

    room = 1

    def dream_batch(self, images, **kw):  # type: ignore[no-untyped-def, override]
        if len(images) > self.room:
            for g in kw["generators"]:
                torch.rand(3, generator=g)  # a failed batch has already drawn some jitter
            raise torch.OutOfMemoryError(f"cannot hold {len(images)} frames")
        return super().dream_batch(images, **kw)


def test_running_out_of_memory_halves_the_batch_and_keeps_the_frames(index: VideoIndex, lite0) -> None:
    small = SmallDevice(FAST, model=lite0, device="cpu")
    expected = {k: _alone(index, small, 4 * k, 4 * k + 4, seed=k) for k in range(3)}
    batcher = LaneBatcher(small)
    got: dict[int, list[np.ndarray]] = {}

    def lane_job(k: int) -> None:
        with batcher.lane() as lane:
            got[k] = _alone(index, lane, 4 * k, 4 * k + 4, seed=k)  # type: ignore[arg-type]

    threads = [threading.Thread(target=lane_job, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    batcher.close()
    assert batcher.max_batch == 1 and batcher.largest_batch == 1
    assert any("out of device memory" in n for n in small.notes)
    for k in range(3):  # alone on the device again, with the generators rewound: the very same frames
        assert all(np.array_equal(x, y) for x, y in zip(got[k], expected[k], strict=True))


def test_the_batcher_builds_its_dreamer_on_its_own_thread(lite0) -> None:
    built_on: list[str] = []

    def factory() -> Dreamer:
        built_on.append(threading.current_thread().name)
        return Dreamer(FAST, model=lite0, device="cpu")

    batcher = LaneBatcher(factory)
    assert built_on == ["distdream-lanes"] and isinstance(batcher.dreamer, Dreamer)
    with batcher.lane() as lane:
        out = lane.dream(torch.rand(1, 3, 32, 32), generator=torch.Generator().manual_seed(0))
        assert out.shape == (1, 3, 32, 32)
        batcher.close()
        with pytest.raises(RuntimeError, match="closed"):  # a frame after close fails, it does not wait forever
            lane.dream(torch.rand(1, 3, 32, 32), generator=torch.Generator())
    with pytest.raises(RuntimeError, match="closed"):
        with batcher.lane():
            pass
    with pytest.raises(ModelError):
        LaneBatcher(lambda: Dreamer(DreamConfig(model="no_such_net")))
