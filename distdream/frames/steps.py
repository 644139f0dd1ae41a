"""How the dream reaches each frame of a chunk: the previous dream moved along the flow, what the
temporal term pulls toward, and where the scene holds still.

Each decoded frame and its motion become a :class:`~distdream.frames.sequence.SequenceStep`. Where the
scene is still the carried dream is kept whole and the steps leave it be (the ``steady``
setting), so a still shot keeps its dream; where it moves, steps keep the dream locked onto it
and crisp. Whether the camera moved (``FrameMotion.camera_moved``, computed with the flow ahead
of the dreamer) tells the shot's memory (:mod:`~distdream.frames.memory`) when what it remembers is no
longer where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..config import RenderConfig
from ..images import array_to_tensor
from .carry import flow_tensor, warp_tensor
from .flow import MOVING_ABOVE, FrameMotion, warp
from .reader import MotionReader
from .sequence import Scene, SequenceStep, ShotSettings

__all__ = [
    "STILL_BELOW",
    "frame_step",
    "reader_steps",
    "shot_settings",
    "still_map",
]

# the scene is still below this speed (pixels a frame), moving above flow.MOVING_ABOVE (still_map)
STILL_BELOW = 0.05


def _mover(motion: FrameMotion, resampling: str, device: torch.device | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """warp(residual) by this frame's backward flow, (1, 3, H, W). The carry and the temporal
    term's anchor both need it for the same residual: the last one is kept, so it is warped once.

    ``resampling`` is the config's ``carry_resampling`` (bicubic by default: bilinear blurs the
    carried dream a little every frame, the temporal term pulls toward that blur, and the dream's
    steps redraw the lost texture, so detail and steadiness are lost together). ``device``: warp
    there with :func:`~distdream.frames.carry.warp_tensor` (the carry on the network's device), or on
    the host with OpenCV (``None``)."""
    last: list[tuple[torch.Tensor, torch.Tensor]] = []
    flow = None if device is None else flow_tensor(motion.backward, device)

    def moved(residual: torch.Tensor) -> torch.Tensor:
        if last and last[0][0] is residual:
            return last[0][1]
        if flow is not None:
            result = warp_tensor(residual, flow, resampling)
        else:
            out = warp(residual[0].permute(1, 2, 0).numpy(), motion.backward, resampling)  # (H, W, 3)
            result = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).unsqueeze(0)
        last[:] = [(residual, result)]  # holding the residual keeps its identity unique
        return result

    return moved


def still_map(motion: FrameMotion, steady: float, device: torch.device) -> torch.Tensor | None:
    """How still the scene is at each pixel, times ``steady`` ((1, 1, H, W), or None when 0): 1
    where the flow is trusted and under :data:`STILL_BELOW` pixels a frame, falling to 0 at
    :data:`MOVING_ABOVE`. There the carried dream is exact (the warp barely resamples), so it is
    kept whole and the steps leave it be; where the scene moves, steps keep the dream locked
    onto it and crisp."""
    if steady <= 0:
        return None
    speed = np.hypot(motion.backward[..., 0], motion.backward[..., 1])
    still = np.clip((MOVING_ABOVE - speed) / (MOVING_ABOVE - STILL_BELOW), 0.0, 1.0) * motion.mask
    if motion.reliable is not None:
        still = still * motion.reliable
    return torch.from_numpy(np.ascontiguousarray(steady * still, dtype=np.float32))[None, None].to(device)


def _anchor(
    motion: FrameMotion,
    frame: torch.Tensor,
    moved: Callable[[torch.Tensor], torch.Tensor],
    still: torch.Tensor | None,
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """The temporal term's target, this frame plus the previous dream moved onto it, and its
    weight, where that move is reliable (the consistency mask, off motion boundaries), with how
    still the scene is (:func:`still_map`).

    The target is this frame plus the previous dream *residual* warped, not the previous output
    warped: warping resamples, and pulling the picture itself toward a resampled copy frame after
    frame would blur the footage (seen as a washed-out, soft image after a few dozen frames); the
    frame stays sharp this way and only the dream is carried.
    """
    trust = motion.mask if motion.reliable is None else motion.mask * motion.reliable
    weight = torch.from_numpy(np.ascontiguousarray(trust, dtype=np.float32))[None, None].to(frame.device)

    def anchor(residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return (frame + moved(residual)).clamp(0, 1), weight, still

    return anchor


def _carry(
    motion: FrameMotion,
    config: RenderConfig,
    moved: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    still: torch.Tensor | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """decay · mask · warp(residual): the previous dream, moved with the scene. Where the scene is
    still (``still``) the decay is lifted: a dream that is kept whole has nothing to regrow."""
    mask = torch.from_numpy(np.ascontiguousarray(motion.mask, dtype=np.float32))[None, None].to(device)
    decay: float | torch.Tensor = config.decay if still is None else config.decay + (1.0 - config.decay) * still

    def carry(residual: torch.Tensor) -> torch.Tensor:
        out = moved(residual)
        return (out * mask if config.occlusion_mask else out) * decay

    return carry


def frame_step(
    image: torch.Tensor, motion: FrameMotion | None, config: RenderConfig, device: torch.device | None
) -> SequenceStep:
    """One frame as a sequence step: how the previous dream reaches it along ``motion`` (None or a
    cut: a keyframe); with a ``device``, the carry and the anchor live there (see :func:`_mover`)."""
    if motion is None or motion.cut:
        return SequenceStep(image, None)
    here = device or torch.device("cpu")
    moved = _mover(motion, config.carry_resampling, device)
    still = still_map(motion, steadiness(config), here)
    carry = _carry(motion, config, moved, here, still)
    anchored = config.temporal_weight > 0 or still is not None
    return SequenceStep(
        image,
        carry,
        _anchor(motion, image, moved, still) if anchored else None,
        _scene(config, still, motion.camera_moved),
    )


def _scene(config: RenderConfig, still: torch.Tensor | None, camera_moved: bool) -> Scene | None:
    """How still the scene is, for the sequence's memory (None without a steady dream)."""
    return None if still is None else Scene(still, steadiness(config), camera_moved)


def reader_steps(
    reader: MotionReader,
    start: int,
    config: RenderConfig,
    order: list[int],
    device: torch.device | None,
    first_motion: FrameMotion | None = None,
) -> Iterator[SequenceStep]:
    """The reader's frames from ``start`` on as sequence steps; ``first_motion`` carries a dream
    onto the first of them from elsewhere (a relay)."""
    here = device or torch.device("cpu")
    for i, frame, motion in reader:
        if i < start:
            continue  # decoded for its flow only
        order.append(i)
        # the first frame: a keyframe, or carried from elsewhere (a relay)
        yield frame_step(array_to_tensor(frame).to(here), first_motion if motion is None else motion, config, device)


def steadiness(config: RenderConfig) -> float:
    """``config.steady``, or 0 for a render from a predefined start image: that image is meant to
    fade into the footage, and a steady dream would keep it on every still pixel."""
    return config.steady if config.dream.predefined_start is None else 0.0


def shot_settings(config: RenderConfig) -> ShotSettings:
    c = config
    return ShotSettings(
        c.keyframe_steps,
        c.frame_steps,
        c.keyframe_settle,
        c.decay,
        c.temporal_weight,
        c.hold_level,
        steadiness(c) > 0,
    )
