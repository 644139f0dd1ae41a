"""The warping error separates steady videos from flickering ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distdream.errors import VideoError
from distdream.metrics import dream_detail, frame_warping_error, warping_error
from distdream.samples import pan_frames, sample_photo, write_clip


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    frames = list(pan_frames(16, 128, 72))
    return write_clip(tmp_path_factory.mktemp("m") / "pan.mp4", frames, audio=None, crf=10), frames


def test_the_input_against_itself_sits_at_the_floor(pan) -> None:
    clip, _ = pan
    result = warping_error(clip, clip)
    assert result.mean == pytest.approx(result.input_mean) and result.ratio == pytest.approx(1.0)
    assert result.per_frame[0] is None and len(result.per_frame) == 16 and result.cuts == ()


def test_flicker_scores_far_above_steady_content(pan, tmp_path: Path) -> None:
    clip, frames = pan
    rng = np.random.default_rng(0)
    flicker = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8) for f in frames]
    noisy = write_clip(tmp_path / "flicker.mp4", flicker, audio=None, crf=10)
    result = warping_error(clip, noisy)
    assert result.ratio > 5
    assert result.over(range(1, 8)) > 5 * result.input_mean


def test_cuts_are_not_measured(tmp_path: Path) -> None:
    frames = list(pan_frames(40, 96, 64))[:6] + list(pan_frames(40, 96, 64, photo=sample_photo("coffee")))[:6]
    clip = write_clip(tmp_path / "cut.mp4", frames, audio=None)
    result = warping_error(clip, clip)
    assert result.cuts == (6,) and result.per_frame[6] is None


def test_frame_error_is_zero_for_a_perfect_warp() -> None:
    img = sample_photo()[:64, :64]
    flow = np.zeros((64, 64, 2), np.float32)
    assert frame_warping_error(img, img, flow, np.ones((64, 64), np.float32)) == 0.0


def test_mismatched_videos_are_refused(pan, tmp_path: Path) -> None:
    clip, frames = pan
    short = write_clip(tmp_path / "short.mp4", frames[:10], audio=None)
    with pytest.raises(VideoError, match="10 frames"):
        warping_error(clip, short)
    small = write_clip(tmp_path / "small.mp4", [f[:, :100] for f in frames], audio=None)
    with pytest.raises(VideoError, match="100×72"):
        warping_error(clip, small)


def test_strength_l1_and_motion_boundaries(pan, tmp_path: Path) -> None:
    clip, frames = pan
    brighter = write_clip(
        tmp_path / "bright.mp4",
        [np.clip(f.astype(int) + 20, 0, 255).astype(np.uint8) for f in frames],
        audio=None,
        crf=10,
    )
    result = warping_error(clip, brighter)
    assert 15 < np.median(result.strength) < 21  # +20 levels, less where it clips at 255
    assert result.l1 < 6 and result.ratio < 1.1  # a steady shift is no flicker: at the input's own floor
    from distdream.frames.flow import motion_boundaries

    flow = np.zeros((32, 32, 2), np.float32)
    flow[:, 16:, 0] = 5.0  # the right half moves: a boundary down the middle
    edges = motion_boundaries(flow)
    assert edges[:, 15:17].all() and not edges[:, :14].any() and not edges[:, 18:].any()


def test_seam_frames_are_reported_apart_and_plotted(pan, tmp_path: Path) -> None:
    from distdream.chunking import plan_chunks
    from distdream.metrics import plot_over_time

    clip, frames = pan
    # a flicker only in frames 8–10: where a crossfade window would sit
    rng = np.random.default_rng(1)
    seamy = [
        np.clip(f.astype(int) + (rng.integers(-40, 41, f.shape) if 8 <= i <= 10 else 0), 0, 255).astype(np.uint8)
        for i, f in enumerate(frames)
    ]
    out = write_clip(tmp_path / "seamy.mp4", seamy, audio=None, crf=10)
    chunks = plan_chunks(16, 8, 2, seams="crossfade")  # chunk 1 owns [9, 16): window [7, 9)
    assert [(c.start, c.lead_in) for c in chunks] == [(0, 0), (9, 2)]
    result = warping_error(clip, out, chunks=chunks)
    assert result.seams == {"crossfade": [7, 8, 9, 10, 11]}
    assert result.seam_ratio("crossfade") > 3
    picture = plot_over_time(result, tmp_path / "over_time.png")
    from PIL import Image

    assert Image.open(picture).size == (1000, 500)


def test_drift_compares_the_last_frames_with_the_first(pan, tmp_path: Path, capsys) -> None:
    """A render that fades and greys over its length drifts; the input against itself does not."""
    from distdream.cli import main

    clip, frames = pan
    faded = []
    for k, f in enumerate(frames):
        grey = f.mean(axis=-1, keepdims=True)
        share = 0.5 * k / (len(frames) - 1)  # the last frames lose half their colour and 10 % brightness
        faded.append(np.clip((f * (1 - share) + grey * share) * (1 - 0.2 * share), 0, 255).astype(np.uint8))
    out = write_clip(tmp_path / "faded.mp4", faded, audio=None, crf=10)
    moved = warping_error(clip, out).drift(window=4)
    assert -0.12 < moved["brightness"] < -0.08 and -0.6 < moved["saturation"] < -0.4 and moved["strength"] > 1
    still = warping_error(clip, clip).drift(window=4)
    assert abs(still["brightness"]) < 1e-9 and abs(still["saturation"]) < 1e-9
    assert main(["metrics", str(clip), str(out)]) == 0
    assert "drift             brightness -" in capsys.readouterr().out


def test_detail_sees_a_smoothed_dream() -> None:
    """The same dream, blurred, has less fine structure; an undreamed frame has none."""
    import cv2

    frame = next(pan_frames(1, 96, 64))
    noise = np.random.default_rng(0).normal(0, 20, frame.shape).astype(np.float32)
    sharp = np.clip(frame + noise, 0, 255).astype(np.uint8)
    soft = np.clip(frame + cv2.GaussianBlur(noise, (0, 0), 2.0), 0, 255).astype(np.uint8)
    assert dream_detail(frame, frame) == 0.0
    assert dream_detail(frame, soft) < 0.3 * dream_detail(frame, sharp)


def test_the_drift_figure_and_the_held_level_measure_chroma_alike() -> None:
    """Decoded frames (uint8, channels last) and dreamed tensors ((1, 3, H, W) in [0, 1]) get one
    measure: the held level holds what the saturation figure reports."""
    import torch

    from distdream.frames.chroma import chroma
    from distdream.images import array_to_tensor
    from distdream.samples import sample_photo

    photo = sample_photo("coffee")[:64, :96]
    assert chroma(photo, -1) == pytest.approx(255 * chroma(array_to_tensor(photo), 1), rel=1e-5)
    assert chroma(np.full((4, 4, 3), 200, np.uint8), -1) == 0.0
    assert chroma(np.array([[[0, 255, 10]]], np.uint8), -1) == 255.0  # no uint8 wrap-around
    assert chroma(torch.tensor([[[[0.0]], [[1.0]], [[0.5]]]]), 1) == 1.0
