"""One dream over time: a still scene keeps its dream, crossfaded chains of a shot dream the same
dream, and classic DeepDream's evolving dream stays one setting away (``steady`` 0)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from distdream.bench.onedream import reveal_change, reveal_frames, still_frames
from distdream.chunking import RELAY_CHAINS, Chunk, plan_chunks
from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.dream import Anchor, Dreamer
from distdream.engine import plan, render
from distdream.frames.flow import MOVING_ABOVE, FrameMotion
from distdream.frames.steps import STILL_BELOW, still_map
from distdream.images import array_to_tensor, save_image
from distdream.samples import sample_photo, write_clip
from distdream.video import read_frames
from tests.media import render_here

FAST = DreamConfig(num_iterations=3, num_octaves=2, dream_layers=("_blocks.5",), jitter=4)
LOSSLESS = RenderConfig(dream=FAST, encoding=Encoding(crf=0, preset="veryfast"))


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("still") / "still.mp4", still_frames(24, 64, 48), audio=None, crf=0)


def frames(path: Path) -> np.ndarray:
    return np.stack([f.astype(np.float32) for f in read_frames(str(path))])


def test_a_still_shot_keeps_its_dream_and_the_breathing_dream_evolves(still_clip: Path, tmp_path: Path) -> None:
    source = frames(still_clip)
    change, strength = {}, {}
    for steady in (1.0, 0.0):
        out = frames(render_here(still_clip, tmp_path / f"s{steady}.mp4", replace(LOSSLESS, steady=steady)).output)
        strength[steady] = np.abs(out - source).mean(axis=(1, 2, 3))  # per frame
        change[steady] = np.abs(out[-1] - out[1]).mean() / np.median(strength[steady])
    assert change[1.0] < 0.02, change  # the same dream, frame after frame
    assert change[0.0] > 0.15, change  # classic DeepDream: the patterns keep morphing
    for steady in (1.0, 0.0):  # both at the keyframe's strength (compared at equal strength)
        assert np.all(np.abs(strength[steady][1:] / strength[steady][0] - 1) < 0.1), strength


def test_a_predefined_start_image_fades_on_a_still_shot(still_clip: Path, tmp_path: Path) -> None:
    """The start image is the user's way into the footage, not a dream to hold on still pixels."""
    start = tmp_path / "start.png"
    save_image(sample_photo("astronaut"), start)
    config = replace(LOSSLESS, dream=replace(FAST, predefined_start=str(start)))
    out = frames(render_here(still_clip, tmp_path / "start.mp4", config).output)
    away = np.abs(out - frames(still_clip)).mean(axis=(1, 2, 3))  # how far each frame is from the input
    assert away[-1] < 0.7 * away[0], away  # fading toward the footage's own dream


def test_crossfaded_chains_of_a_still_shot_dream_one_dream(still_clip: Path, tmp_path: Path) -> None:
    """Each chain's dream is relayed from the shot's keyframe: where chains meet, the crossfade
    blends one dream with itself (unrelayed chains start from keyframes of their own seeds)."""
    one = frames(render_here(still_clip, tmp_path / "one.mp4", LOSSLESS).output)
    options = {"workers": 2, "ray": "never", "seams": "crossfade", "chunk_frames": 8}
    assert [c.begins for c in plan(still_clip, LOSSLESS, **options).chunks].count("crossfade") >= 2
    chunked = frames(render(still_clip, tmp_path / "chunked.mp4", LOSSLESS, **options).output)
    strength = np.abs(one - frames(still_clip)).mean()
    assert np.abs(chunked - one).mean() < 0.01 * strength


@pytest.fixture(scope="module")
def reveal_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("reveal") / "reveal.mp4", reveal_frames(32, 64, 48), audio=None, crf=0)


def test_a_place_a_passing_object_hid_comes_back_with_its_dream(reveal_clip: Path, tmp_path: Path) -> None:
    source = frames(reveal_clip)
    steady = frames(render_here(reveal_clip, tmp_path / "steady.mp4", LOSSLESS).output)
    breathing = frames(render_here(reveal_clip, tmp_path / "breathing.mp4", replace(LOSSLESS, steady=0.0)).output)
    change, kept = reveal_change(list(source), list(steady))
    assert change < 0.2 and kept > 0.8, (change, kept)
    assert reveal_change(list(source), list(breathing))[0] > 0.6  # dreamed afresh: another dream


def test_a_handoff_carries_what_the_shot_remembers(reveal_clip: Path, tmp_path: Path) -> None:
    """Chunks joined by handoffs give the one-chunk render pixel for pixel: the memory of the
    hidden background travels with the carried state."""
    one = frames(render_here(reveal_clip, tmp_path / "one.mp4", LOSSLESS).output)
    options = {"workers": 1, "ray": "never", "seams": "handoff", "chunk_frames": 6}
    chunks = plan(reveal_clip, LOSSLESS, **options).chunks
    assert len(chunks) >= 4 and {c.begins for c in chunks[1:]} == {"handoff"}
    chunked = frames(render(reveal_clip, tmp_path / "chunked.mp4", LOSSLESS, **options).output)
    assert np.array_equal(chunked, one)


def test_stillness_is_where_the_trusted_flow_barely_moves() -> None:
    h, w = 4, 10
    speed = np.linspace(0.0, 0.4, w, dtype=np.float32)  # pixels a frame, along x
    backward = np.zeros((h, w, 2), np.float32)
    backward[..., 0] = speed
    mask = np.ones((h, w), np.float32)
    mask[0] = 0.0  # newly visible: never still
    motion = FrameMotion(backward, mask, 1.0, 0.0, False, mask > 0.5)
    still = still_map(motion, 1.0, torch.device("cpu"))[0, 0].numpy()
    assert np.all(still[1:, speed <= STILL_BELOW] == 1.0) and np.all(still[1:, speed >= MOVING_ABOVE] == 0.0)
    between = (speed > STILL_BELOW) & (speed < MOVING_ABOVE)
    assert np.all(np.diff(still[1, between]) < 0) and np.all(still[0] == 0.0)
    assert np.allclose(still_map(motion, 0.5, torch.device("cpu"))[0, 0].numpy(), 0.5 * still)
    assert still_map(motion, 0.0, torch.device("cpu")) is None


def test_a_still_anchor_holds_its_pixels_and_frees_the_others(lite0, small_photo: np.ndarray) -> None:
    dreamer = Dreamer(FAST, device="cpu", model=lite0)
    image = array_to_tensor(small_photo)
    free = dreamer.dream(image, generator=torch.Generator().manual_seed(0))
    still = torch.zeros_like(image[:, :1])
    still[..., : still.shape[-1] // 2] = 1.0  # the left half is still
    anchor = Anchor(image, torch.zeros_like(still), 0.0, still)
    held = dreamer.dream(image, generator=torch.Generator().manual_seed(0), anchor=anchor)
    left, right = slice(0, still.shape[-1] // 2 - 8), slice(still.shape[-1] // 2 + 8, None)
    assert (held - image)[..., left].abs().mean() < 0.05 * (free - image)[..., left].abs().mean()
    assert (held - image)[..., right].abs().mean() > 0.5 * (free - image)[..., right].abs().mean()


def test_a_crossfade_chain_relays_from_the_chains_of_its_shot_before_it() -> None:
    """All of them, or the last RELAY_CHAINS, the first of those dreamed with the shot's seed."""
    chunks = plan_chunks(1200, 40, 8, cuts=[150], seams="crossfade")
    heads = {c.index: (c.first, c.seed) for c in chunks if c.begins != "handoff"}
    shot_of = [0 if c.start < 150 else 1 for c in chunks]
    for c in chunks:
        earlier = [
            heads[k.index] for k in chunks[: c.index] if k.begins != "handoff" and shot_of[k.index] == shot_of[c.index]
        ]
        if len(earlier) > RELAY_CHAINS:
            earlier = [(earlier[-RELAY_CHAINS][0], earlier[0][1]), *earlier[-RELAY_CHAINS + 1 :]]
        assert c.relay == (tuple(earlier) if c.begins == "crossfade" else ())
    assert any(len(c.relay) == 2 for c in chunks) and max(len(c.relay) for c in chunks) == RELAY_CHAINS
    back = [Chunk(**json.loads(json.dumps(c.to_dict()))) for c in chunks]  # as a saved plan reads back
    assert back == chunks
