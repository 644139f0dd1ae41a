"""Optical flow, warping, occlusion masks and scene cuts: every use of cv2 in the render path.

Conventions: a flow field is (H, W, 2) float32 of (dx, dy) pixel displacements. The *backward*
flow of frame t maps each pixel of frame t to where it was in frame t-1, so
``warp(frame[t-1], backward)`` lines frame t-1 up with frame t. The *forward* flow maps frame t-1
to frame t. A pixel whose backward flow is not undone by the forward flow at its destination is
occluded (or newly visible) and gets mask 0: nothing from frame t-1 should be carried there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..config import FlowConfig

__all__ = [
    "MOVING_ABOVE",
    "SCAN_SIDE",
    "FrameMotion",
    "MotionEstimator",
    "consistency_mask",
    "motion_boundaries",
    "shrink",
    "to_gray",
    "warp",
]

# The cut scan runs the motion test on frames shrunk to this long side. A cut is an event of the
# whole frame, and the test's figures barely move with size, at a tenth of the cost
# (docs/benchmarks/cpu.md, "Measurements behind the defaults").
SCAN_SIDE = 256

# The scene moves where the flow is faster than this (pixels a frame); the camera moved when most
# of the frame does and the flow explains the frame better than no motion (FrameMotion.camera_moved)
MOVING_ABOVE = 0.2
_ALIKE = 0.03  # two pixels look alike when their 3×3 mean |difference| of luma (0–1) is under this

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` resized (area average) so that its long side is at most ``side``; as it is if it fits."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB → (H, W) uint8 luma. Flow needs no more than 8 bits: deeper frames (float32,
    1.0 full scale, as the pipeline reads them) are quantized to 8 bits first."""
    if rgb.dtype != np.uint8:
        scale = 255.0 if rgb.dtype.kind == "f" else 255.0 / 65535.0
        rgb = np.clip(rgb * np.float32(scale) + np.float32(0.5), 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of an h × w frame, read-only: a video has one size, so it is built once."""
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def _planes(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of a flow field as contiguous planes: numpy is several times slower on the strided
    views ``flow[..., 0]`` and on reductions over the last axis of length 2."""
    u, v = cv2.split(flow)
    return u, v


_INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "bilinear") -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (edges repeat). Works for any dtype/channels.

    ``interpolation`` is ``bilinear`` (what the warping-error metric and the flow checks use, as
    the literature defines them) or ``bicubic`` (the dream carry's default, see
    :func:`distdream.frames.pipeline._mover`).
    """
    h, w = flow.shape[:2]
    grid_x, grid_y = _grid(h, w)
    u, v = _planes(flow)
    return cv2.remap(
        image, grid_x + u, grid_y + v, interpolation=_INTERPOLATION[interpolation], borderMode=cv2.BORDER_REPLICATE
    )


def consistency_mask(backward: np.ndarray, forward: np.ndarray, consistency: float = 0.01) -> np.ndarray:
    """1.0 where the backward flow is confirmed by the forward flow, 0.0 where it is not.

    The forward flow sampled where the backward flow points should cancel it; the tolerance grows
    with the motion (Sundaram et al., 2010). Pixels whose source lies outside the previous frame
    are new content and are masked too.
    """
    h, w = backward.shape[:2]
    grid_x, grid_y = _grid(h, w)
    bu, bv = _planes(backward)
    src_x, src_y = grid_x + bu, grid_y + bv  # each pixel's source in the previous frame
    fu, fv = _planes(
        cv2.remap(forward, src_x, src_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    )  # the forward flow at each pixel's source
    err = (bu + fu) ** 2 + (bv + fv) ** 2  # the round trip, which should be 0
    tolerance = consistency * ((bu * bu + bv * bv) + (fu * fu + fv * fv)) + 0.5
    inside = (src_x >= 0) & (src_x <= w - 1) & (src_y >= 0) & (src_y <= h - 1)
    return ((err <= tolerance) & inside).astype(np.float32)


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """True where the flow field changes sharply (Ruder et al. 2016): |∇u|² + |∇v|² > 0.01·|w|² + 0.002.

    Near a motion boundary a flow vector is unreliable even when the forward–backward check
    passes: the pixel may belong to either side.
    """
    u, v = _planes(flow)
    gradient = np.zeros_like(u)
    for plane in (u, v):
        for axis in (1, 0):  # the sum's order as ∂u/∂x² + ∂u/∂y² + ∂v/∂x² + ∂v/∂y²
            d = _derivative(plane, axis)
            gradient += d * d
    return gradient > 0.01 * (u * u + v * v) + 0.002


def _derivative(plane: np.ndarray, axis: int) -> np.ndarray:
    """``np.gradient(plane, axis=axis)``, the same numbers, written into one array instead of
    through its generic slicing: central differences inside, one-sided at the edges (a plane one
    pixel across has none: 0)."""
    a = plane if axis == 1 else plane.T
    out = np.zeros_like(a)
    if a.shape[1] > 1:
        np.subtract(a[:, 2:], a[:, :-2], out=out[:, 1:-1])
        out[:, 1:-1] /= 2.0
        np.subtract(a[:, 1], a[:, 0], out=out[:, 0])
        np.subtract(a[:, -1], a[:, -2], out=out[:, -1])
    return out if axis == 1 else out.T


@dataclass(frozen=True)
class FrameMotion:
    """How frame t relates to frame t-1."""

    backward: np.ndarray  # (H, W, 2) float32, frame t → frame t-1
    mask: np.ndarray  # (H, W) float32 in [0, 1]: 1 where frame t-1's content is visible in frame t
    consistent: float  # share of pixels whose flow passed the forward–backward check
    photometric: float  # mean |frame_t − warp(frame_{t-1})| on consistent pixels, luma in [0, 1]
    cut: bool  # frame t starts a new shot: nothing should be carried from frame t-1
    reliable: np.ndarray | None = None  # (H, W) bool: consistent and off motion boundaries (Ruder et al.)
    camera_moved: bool = False  # most of the frame moved, and not only by the flow's spread (_camera_moved)


class MotionEstimator:
    """Computes flows, masks and cut decisions for consecutive frames with one configuration.

    Not thread-safe (OpenCV's DIS object keeps state): give each thread its own.
    """

    def __init__(self, config: FlowConfig) -> None:
        self.config = config.validate()
        self._dis = cv2.DISOpticalFlow.create(_DIS_PRESETS[config.dis_preset]) if config.method == "dis" else None

    def flow(self, src_gray: np.ndarray, dst_gray: np.ndarray) -> np.ndarray:
        """Flow from ``src`` to ``dst`` at full size: ``src(x) ≈ dst(x + flow(x))``."""
        h, w = src_gray.shape
        scale = self.config.flow_scale
        if scale < 1:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            # INTER_AREA averages: the small image keeps the texture flow locks onto, without aliasing
            src = cv2.resize(src_gray, size, interpolation=cv2.INTER_AREA)
            dst = cv2.resize(dst_gray, size, interpolation=cv2.INTER_AREA)
        else:
            src, dst = src_gray, dst_gray
        if self._dis is not None:
            small = self._dis.calc(src, dst, None)  # type: ignore[call-overload]  # OpenCV's stub wants a flow to refine; None asks for a new one
        else:
            small = cv2.calcOpticalFlowFarneback(src, dst, None, 0.5, 4, 15, 3, 5, 1.2, 0)
        if small.shape[:2] == (h, w):
            return small
        flow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / small.shape[1]  # vectors scale with the image
        flow[..., 1] *= h / small.shape[0]
        return flow

    def motion(self, prev_rgb: np.ndarray, cur_rgb: np.ndarray) -> FrameMotion:
        """Backward flow, occlusion mask and cut decision for ``cur`` against ``prev``."""
        prev_g, cur_g = to_gray(prev_rgb), to_gray(cur_rgb)
        backward = self.flow(cur_g, prev_g)
        forward = self.flow(prev_g, cur_g)
        mask = consistency_mask(backward, forward, self.config.consistency)
        consistent = float(mask.mean())
        moved = warp(prev_g, backward)
        if consistent > 0:
            diff = np.abs(cur_g.astype(np.float32) - moved.astype(np.float32)) / 255.0
            photometric = float((diff * mask).sum() / mask.sum())
        else:
            photometric = 1.0
        # A cut: most of the frame has no consistent match in the previous one, or what matched
        # does not look alike (the thresholds' margins: docs/benchmarks/cpu.md).
        cut = consistent < self.config.cut_min_consistent or photometric > self.config.cut_max_error
        # Soften the mask's edges so the carried dream fades in over a few pixels, not a hard seam.
        soft = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.5) * mask
        reliable = (mask > 0.5) & ~motion_boundaries(backward)
        camera = _camera_moved(backward, prev_g, cur_g, moved)
        return FrameMotion(backward, soft, consistent, photometric, cut, reliable, camera)


def _camera_moved(backward: np.ndarray, prev_g: np.ndarray, cur_g: np.ndarray, moved_g: np.ndarray) -> bool:
    """Most of the flow moves faster than :data:`MOVING_ABOVE`, and the flow predicts the frame
    better than no motion on more pixels than the other way round (a win by a third of
    :data:`_ALIKE` or more). The flow alone misleads: DIS spreads a large passing object's motion
    over most of a still frame, where no motion predicts the background exactly."""
    if float(np.median(np.hypot(backward[..., 0], backward[..., 1]))) <= MOVING_ABOVE:
        return False
    cur = cur_g.astype(np.float32)
    still = cv2.blur(np.abs(cur - prev_g.astype(np.float32)), (3, 3)) / 255.0
    flowed = cv2.blur(np.abs(cur - moved_g.astype(np.float32)), (3, 3)) / 255.0
    margin = _ALIKE / 3
    return int((flowed + margin < still).sum()) > int((still + margin < flowed).sum())
