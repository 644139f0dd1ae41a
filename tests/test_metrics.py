"""The warping error separates steady videos from flickering ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distdream.errors import VideoError
from distdream.metrics import frame_warping_error, warping_error
from distdream.samples import pan_frames, sample_photo
from distdream.video import write_clip


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
