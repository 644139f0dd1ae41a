"""A crossfade chain's start: the dream of the chains of its shot before it, relayed onto its
first frame, so that where two chains meet they carry the same dream.

Chains of one long shot are dreamed side by side, each from a keyframe of its own, and where one
hands over to the next their windows are crossfaded. Two unrelated dreams would dissolve into each
other there. Instead each chain redoes, cheaply, how the shot's dream reached the first frame of
every chain before it (the shot's keyframe, then one carried frame per chain, along the flow
between their first frames, each with that chain's seed), and continues from there: on a still
shot every chain dreams the very same dream; on a moving one they share what both frames show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..config import RenderConfig
from ..dream import FrameDreamer
from ..images import array_to_tensor
from ..video import VideoIndex, read_frames
from .flow import FrameMotion, MotionEstimator
from .sequence import ShotState, dream_sequence
from .steps import frame_step, shot_settings

__all__ = ["relayed"]


def relayed(
    index: VideoIndex,
    relay: Sequence[tuple[int, int]],
    target: int,
    config: RenderConfig,
    dreamer: FrameDreamer,
    device: torch.device | None,
    start_image: torch.Tensor | None,
) -> tuple[ShotState, FrameMotion] | None:
    """The dream the chains before this one start with, relayed chain to chain onto frame
    ``target``: the shot's keyframe dreamed as its chain dreams it (its next frame decoded for the
    settle), then each later chain's first frame carried from the one before along the flow
    between them and dreamed as that chain dreams it (its own seed). Returns where the shot's
    dream stands and the motion that carries it onto ``target``; None when the scene between two
    of them does not match (a relay across a cut-like change starts afresh)."""
    (head, seed), *hops = relay
    estimator = MotionEstimator(config.flow)
    here = device or torch.device("cpu")
    # the shot's keyframe, and its next frame's motion for the settle (as its own chain sees it)
    first = list(read_frames(index.path, head, min(head + 2, index.frame_count), index=index, dtype=np.float32))
    steps = [frame_step(array_to_tensor(first[0]).to(here), None, config, device)]
    if len(first) > 1:
        motion = estimator.motion(first[0], first[1])
        steps.append(frame_step(array_to_tensor(first[1]).to(here), motion, config, device))
    state = ShotState()
    generator = torch.Generator().manual_seed(seed)
    sequence = dream_sequence(
        dreamer, steps, shot_settings(config), generator=generator, start=start_image, state=state
    )
    next(iter(sequence))
    previous = first[0]
    for frame_index, hop_seed in [*hops, (target, -1)]:
        frame = next(iter(read_frames(index.path, frame_index, frame_index + 1, index=index, dtype=np.float32)))
        motion = estimator.motion(previous, frame)
        if motion.cut or state.residual is None:
            return None
        if hop_seed < 0:
            return state, motion
        step = frame_step(array_to_tensor(frame).to(here), motion, config, device)
        generator = torch.Generator().manual_seed(hop_seed)
        next(iter(dream_sequence(dreamer, [step], shot_settings(config), generator=generator, state=state)))
        previous = frame
    return None
