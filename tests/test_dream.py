"""The dream core: each small piece exactly on tiny tensors, the whole by its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from distdream.ascent import Jitter, LayerObjective, SumObjective, gradient_step, octave_sizes, run_octaves, tile_starts
from distdream.compute import resolve_device
from distdream.config import DreamConfig
from distdream.dream import Dreamer
from distdream.errors import ConfigError
from distdream.images import array_to_tensor
from distdream.models import LoadedModel
from distdream.still import dream_array

FAST = dict(num_iterations=3, num_octaves=2, dream_layers=("_blocks.5",), jitter=8)


# --- pure pieces --------------------------------------------------------------------------


def test_layer_objective_on_a_tiny_tensor() -> None:
    act = torch.arange(18, dtype=torch.float32).view(1, 2, 3, 3)  # channel 0: 0..8, channel 1: 9..17
    feats = {"a": act, "b": torch.ones(1, 1, 3, 3)}
    assert float(LayerObjective("a")(feats)) == pytest.approx(float((act**2).mean()))
    assert float(LayerObjective("a", channels=(1,))(feats)) == pytest.approx(float((act[:, 1] ** 2).mean()))
    combined = LayerObjective("a", channels=(0,)) + LayerObjective("b", weight=2.0)
    assert isinstance(combined, SumObjective)
    assert float(combined(feats)) == pytest.approx(float((act[:, 0] ** 2).mean()) + 2.0)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 40), st.integers(0, 2**31 - 1))
def test_jitter_is_exactly_undone(max_shift: int, seed: int) -> None:
    jitter = Jitter(max_shift)
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(seed))
    shift = jitter.sample(torch.Generator().manual_seed(seed))
    assert all(abs(s) <= max_shift for s in shift)
    moved = Jitter.apply(x, shift)
    assert torch.equal(Jitter.undo(moved, shift), x)
    if shift[0] % 5 or shift[1] % 7:
        assert not torch.equal(moved, x)


@settings(max_examples=50, deadline=None)
@given(st.floats(1e-4, 10.0), st.integers(0, 2**31 - 1))
def test_step_is_normalised_and_stays_in_the_clamp_range(lr: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    low, high = torch.tensor([-1.0, -2.0, 0.0]).view(1, 3, 1, 1), torch.tensor([1.0, 0.5, 3.0]).view(1, 3, 1, 1)
    x = low + (high - low) * torch.rand(1, 3, 4, 4, generator=g)
    grad = torch.randn(1, 3, 4, 4, generator=g) * 1000
    y = gradient_step(x, grad, lr, low, high)
    assert bool(((y >= low) & (y <= high)).all())
    inside = (y > low) & (y < high)
    expected = x + lr * grad / grad.abs().mean()
    assert torch.allclose(y[inside], expected[inside], atol=1e-5)


def test_detail_is_carried_across_octaves() -> None:
    base = torch.rand(1, 3, 27, 36)
    sizes = octave_sizes(27, 36, 3, 1.5)
    assert sizes == [(12, 16), (18, 24), (27, 36)]
    seen = []

    def optimise(start: torch.Tensor, level: int) -> torch.Tensor:
        seen.append(tuple(start.shape[-2:]))
        return start + 1.0  # every level adds a detail of exactly 1

    out = run_octaves(base, sizes, optimise)
    assert seen == sizes
    # Three levels each add 1 and the detail travels up: base + 3, not base + 1.
    assert torch.allclose(out, base + 3.0, atol=1e-5)


def test_octave_sizes_drop_levels_too_small_to_dream() -> None:
    assert octave_sizes(100, 200, 1, 1.4) == [(100, 200)]
    assert octave_sizes(12, 12, 5, 2.0) == [(12, 12)]  # 6 px and below are dropped
    sizes = octave_sizes(500, 300, 4, 1.4)
    assert [s[0] for s in sizes] == sorted(s[0] for s in sizes)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.integers(64, 1024))
def test_tiles_cover_the_image_with_overlap(length: int, tile: int) -> None:
    overlap = max(tile // 8, 8)
    size = min(tile, length)
    starts = tile_starts(length, size, overlap)
    assert starts[0] == 0 and starts[-1] + size == length
    for a, b in zip(starts, starts[1:]):
        assert 0 < b - a <= size - overlap  # consecutive tiles overlap by at least `overlap`


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError):
        resolve_device("warp-drive")


# --- the dream on a real model and a real photo -------------------------------------------


@pytest.fixture(scope="module")
def dreamer(lite0: LoadedModel) -> Dreamer:
    return Dreamer(DreamConfig(**FAST), device="cpu", model=lite0)


def test_objective_rises_over_iterations(lite0: LoadedModel, small_photo: np.ndarray) -> None:
    one_octave = Dreamer(DreamConfig(**{**FAST, "num_octaves": 1}), model=lite0)
    image = array_to_tensor(small_photo)
    values = [
        one_octave.objective_value(
            one_octave.dream(image, generator=torch.Generator().manual_seed(0), num_iterations=n)
        )
        for n in (0, 2, 4, 8)
    ]
    assert values == sorted(values), values
    assert values[-1] > 1.5 * values[0]


def test_output_is_an_image_in_range(dreamer: Dreamer, small_photo: np.ndarray) -> None:
    out = dreamer.dream(array_to_tensor(small_photo), generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, *small_photo.shape[:2])
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out - array_to_tensor(small_photo)).abs().mean()) > 0.01  # it did dream


def test_same_seed_same_pixels_different_seed_different(lite0: LoadedModel, small_photo: np.ndarray) -> None:
    runs = {seed: dream_array(small_photo, DreamConfig(**FAST, seed=seed)) for seed in (1, 1, 2)}
    again = dream_array(small_photo, DreamConfig(**FAST, seed=1))
    assert np.array_equal(runs[1], again)
    assert not np.array_equal(runs[1], runs[2])


def test_zero_iterations_returns_the_input(lite0: LoadedModel, small_photo: np.ndarray) -> None:
    out = dream_array(small_photo, DreamConfig(**{**FAST, "num_iterations": 0}))
    assert np.abs(out.astype(int) - small_photo.astype(int)).max() <= 1  # only float rounding


def test_channels_restrict_the_objective(lite0: LoadedModel) -> None:
    all_channels = Dreamer(DreamConfig(**FAST), model=lite0)
    some = Dreamer(DreamConfig(**FAST, channels={"_blocks.5": [3, 7]}), model=lite0)
    assert some.objective == LayerObjective("_blocks.5", (3, 7))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert all_channels.objective_value(x) != pytest.approx(some.objective_value(x))
    with pytest.raises(ConfigError, match="channel 80 is out of range.*80 channels"):
        Dreamer(DreamConfig(**FAST, channels=[80]), model=lite0)


def test_tiled_gradient_matches_the_whole_image(lite0: LoadedModel) -> None:
    from skimage import data

    image = array_to_tensor(data.astronaut()[:320, :448])
    whole = Dreamer(DreamConfig(**{**FAST, "tile_size": None}), model=lite0)
    tiled = Dreamer(DreamConfig(**{**FAST, "tile_size": 192}), model=lite0)
    x = whole.model.preprocess.normalize(image)
    g_whole, g_tiled = whole.gradient(x), tiled.gradient(x)
    assert g_tiled.shape == g_whole.shape and bool(torch.isfinite(g_tiled).all())
    cos = torch.nn.functional.cosine_similarity(g_whole.flatten(), g_tiled.flatten(), dim=0)
    assert float(cos) > 0.98
    # and a whole-image tile is the same computation
    single = Dreamer(DreamConfig(**{**FAST, "tile_size": 448}), model=lite0)
    assert torch.equal(single.gradient(x), g_whole)


def test_predefined_start_replaces_the_input_and_is_resized(tmp_path, lite0: LoadedModel, small_photo) -> None:
    from skimage import data

    from distdream.images import save_image

    start = save_image(data.coffee(), tmp_path / "coffee.png")  # 400×600: a different size
    cfg = DreamConfig(**{**FAST, "num_iterations": 0}, predefined_start=str(start))
    out = dream_array(small_photo, cfg)
    assert out.shape == small_photo.shape
    assert np.abs(out.astype(int) - small_photo.astype(int)).mean() > 20  # it is the coffee, not the astronaut


def test_the_temporal_term_pulls_toward_its_target_where_trusted(dreamer: Dreamer, small_photo: np.ndarray) -> None:
    from distdream.dream import Anchor

    image = array_to_tensor(small_photo)
    target = torch.rand(image.shape, generator=torch.Generator().manual_seed(3))
    free = dreamer.dream(image, generator=torch.Generator().manual_seed(0))
    ones, zeros = torch.ones_like(image[:, :1]), torch.zeros_like(image[:, :1])
    # λ = 1 on every pixel: each step ends on the target, so the dream ends there too
    held = dreamer.dream(image, generator=torch.Generator().manual_seed(0), anchor=Anchor(target, ones, 1.0))
    assert torch.allclose(held, target, atol=1e-4)
    # a zero mask trusts nothing: exactly the free dream
    untrusted = dreamer.dream(image, generator=torch.Generator().manual_seed(0), anchor=Anchor(target, zeros, 1.0))
    assert torch.equal(untrusted, free)
    # in between, the dream lands between the free dream and the target — only on the trusted half
    half = ones.clone()
    half[..., : half.shape[-1] // 2] = 0
    pulled = dreamer.dream(image, generator=torch.Generator().manual_seed(0), anchor=Anchor(target, half, 0.3))
    right = slice(half.shape[-1] // 2 + 4, None)
    assert (pulled - target)[..., right].abs().mean() < 0.5 * (free - target)[..., right].abs().mean()
    # … and in a batch, an anchor reaches only its own image
    both = dreamer.dream_batch(
        [image, image],
        generators=[torch.Generator().manual_seed(0) for _ in range(2)],
        anchors=[Anchor(target, ones, 1.0), None],
    )
    assert torch.allclose(both[0], target, atol=1e-4)
    # the other image is the free dream up to batched rounding, which DeepDream amplifies by as
    # much as the host's kernels allow (a few hundredths on a few pixels here, none on others):
    # bounded against another seed's dream, the scale of "a different dream", not by a fixed number
    other_seed = dreamer.dream(image, generator=torch.Generator().manual_seed(1))
    assert (both[1] - free).abs().mean() < 0.25 * (other_seed - free).abs().mean()


def test_a_settling_keyframe_keeps_what_the_shots_motion_carries() -> None:
    from distdream.frames.sequence import SequenceStep, settle_keep

    residual = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)) - 0.5
    frame = torch.zeros(1, 3, 8, 8)
    still = SequenceStep(frame, lambda r: 0.9 * r)  # a still shot: the carry loses only the decay
    assert settle_keep(residual, still, 0.9) == pytest.approx(1.0)
    half = torch.ones(1, 1, 8, 8)
    half[..., :4] = 0
    masked = SequenceStep(frame, lambda r: 0.9 * r * half)  # half the picture newly visible
    assert settle_keep(residual, masked, 0.9) == pytest.approx(0.5, abs=0.1)
    assert settle_keep(residual, None, 0.9) == 0.9  # nothing follows: the plain decay
    assert settle_keep(residual, SequenceStep(frame, None), 0.9) == 0.9  # a cut follows
    assert settle_keep(residual, still, 0.0) == 0.0


def test_a_settled_still_shot_starts_at_its_carried_strength(dreamer: Dreamer, small_photo: np.ndarray) -> None:
    """Without settling a still shot ramps up from a weak first frame; settled, its first frame is
    about as strong as the carried frames after it."""
    from distdream.frames.sequence import SequenceStep, ShotSettings, dream_sequence

    image = array_to_tensor(small_photo)

    def strengths(settle: int) -> list[float]:
        steps = [SequenceStep(image, None)] + [SequenceStep(image, lambda r: 0.9 * r) for _ in range(11)]
        settings = ShotSettings(keyframe_iterations=3, frame_iterations=2, settle=settle)
        out = dream_sequence(dreamer, steps, settings, generator=torch.Generator().manual_seed(0))
        return [float((x - image).abs().mean()) for x, _ in out]

    plain, settled = strengths(0), strengths(8)
    assert len(settled) == 12
    late = np.mean(settled[8:])
    assert plain[0] < 0.8 * np.mean(plain[8:])  # the ramp settling removes
    assert settled[0] > 0.85 * late and np.mean(settled[:4]) > 0.9 * late
