"""Flow, warping, occlusion masks and cuts, on shifted real photos and real footage."""

from __future__ import annotations

import numpy as np
import pytest

from distdream.config import FlowConfig
from distdream.errors import ConfigError
from distdream.frames.flow import SCAN_SIDE, MotionEstimator, consistency_mask, motion_boundaries, shrink, warp
from distdream.samples import pan_frames, sample_photo


def shifted(dx: int, dy: int, size: tuple[int, int] = (96, 128)) -> tuple[np.ndarray, np.ndarray]:
    """Two crops of a real photo, the second's content moved by (dx, dy) pixels."""
    photo = sample_photo("astronaut")
    h, w = size
    y0, x0 = 150, 150
    a = np.ascontiguousarray(photo[y0 : y0 + h, x0 : x0 + w])
    b = np.ascontiguousarray(photo[y0 - dy : y0 - dy + h, x0 - dx : x0 - dx + w])  # content moves by +dx, +dy
    return a, b


def test_warp_with_integer_flow_is_an_exact_shift() -> None:
    image = np.arange(5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = 1.0  # sample one pixel to the right
    out = warp(image, flow)
    assert np.array_equal(out[:, :-1], image[:, 1:])
    assert np.array_equal(out[:, -1], image[:, -1])  # edge repeats


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_backward_flow_recovers_a_known_shift(method: str, scale: float) -> None:
    prev, cur = shifted(3, -2)
    motion = MotionEstimator(FlowConfig(method=method, flow_scale=scale)).motion(prev, cur)
    inner = motion.backward[16:-16, 16:-16]
    # content moved by (+3, -2), so each pixel of cur came from (-3, +2) in prev
    assert np.median(inner[..., 0]) == pytest.approx(-3, abs=0.5)
    assert np.median(inner[..., 1]) == pytest.approx(2, abs=0.5)
    aligned = warp(prev, motion.backward).astype(float)
    before = np.abs(cur.astype(float) - prev)[16:-16, 16:-16].mean()
    after = np.abs(cur.astype(float) - aligned)[16:-16, 16:-16].mean()
    assert after < 0.35 * before
    assert not motion.cut


def test_mask_drops_content_entering_the_frame() -> None:
    prev, cur = shifted(6, 0)  # content moves right: a new strip enters on the left
    motion = MotionEstimator(FlowConfig(flow_scale=1.0)).motion(prev, cur)
    assert motion.mask[:, :4].mean() < 0.2  # newly visible strip
    assert motion.mask[20:-20, 30:-30].mean() > 0.9  # interior is trusted
    assert 0.0 <= motion.mask.min() and motion.mask.max() <= 1.0


def test_consistency_mask_on_synthetic_fields() -> None:
    backward = np.zeros((8, 8, 2), np.float32)
    backward[..., 0] = -1.0
    forward = -backward  # a perfect round trip
    mask = consistency_mask(backward, forward)
    assert mask[:, 1:].all() and not mask[:, 0].any()  # column 0 comes from outside the frame
    broken = forward.copy()
    broken[2:4, 2:4] = 5.0  # a region where the two flows disagree
    assert not consistency_mask(backward, broken)[2:4, 3:5].any()


def test_cuts_are_detected_and_motion_is_not_a_cut() -> None:
    estimator = MotionEstimator(FlowConfig())
    pan = list(pan_frames(20, 160, 90))
    assert not any(estimator.motion(pan[i - 1], pan[i]).cut for i in range(1, 20))
    coffee = next(pan_frames(1, 160, 90, photo=sample_photo("coffee")))
    chelsea = next(pan_frames(1, 160, 90, photo=sample_photo("chelsea")))
    assert estimator.motion(pan[10], coffee).cut
    assert estimator.motion(coffee, chelsea).cut


@pytest.mark.parametrize("shape", [(48, 64), (2, 9), (7, 2)])
def test_motion_boundaries_are_ruders_test_exactly(shape: tuple[int, int]) -> None:
    """|∇u|² + |∇v|² > 0.01·|w|² + 0.002 with numpy's gradient, bit for bit, on a flow with a step."""
    rng = np.random.default_rng(3)
    flow = rng.normal(0, 0.05, (*shape, 2)).astype(np.float32)
    flow[:, shape[1] // 2 :, 0] += 3.0  # the right half moves: a motion boundary down the middle
    du_y, du_x = np.gradient(flow[..., 0])
    dv_y, dv_x = np.gradient(flow[..., 1])
    expected = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * (flow**2).sum(-1) + 0.002
    found = motion_boundaries(flow)
    assert np.array_equal(found, expected)
    assert found[:, shape[1] // 2].all()


def test_shrink_keeps_the_aspect_and_leaves_small_frames_alone() -> None:
    frame = next(pan_frames(1, 640, 360))
    small = shrink(frame, SCAN_SIDE)
    assert small.shape == (144, 256, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(frame.mean())) < 1.0  # an area average, not a crop
    tall = np.zeros((900, 300, 3), np.uint8)
    assert shrink(tall, 256).shape == (256, 85, 3)
    little = next(pan_frames(1, 160, 90))
    assert shrink(little, SCAN_SIDE) is little


@pytest.mark.parametrize(
    "kwargs", [{"method": "lucas"}, {"flow_scale": 0.0}, {"flow_scale": 1.5}, {"dis_preset": "slow"}]
)
def test_bad_flow_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        MotionEstimator(FlowConfig(**kwargs))
