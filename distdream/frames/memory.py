"""What a shot remembers of its dream where the scene held still, so a hidden place comes back with
the dream it had.

The carried dream follows the scene frame to frame; where something passes in front of a still
background, the background's dream is gone from the carried one by the time it is uncovered,
and it would be dreamed afresh — a different dream. :class:`Memory` keeps, per pixel, the last
dream residual seen there while the scene was still, with the frame it was seen on. A newly
visible pixel that shows again what was remembered there gets the remembered dream back (after
Ruder et al.'s long-term consistency, which carries from several earlier frames: here the earlier
frame is the last still one at each pixel, at the cost of one frame's memory). It belongs to a
locked-off camera: when most of the frame moves, the camera moved and the memory is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MATCH_BELOW", "MOVED_FOR", "SETTLED", "Memory"]

# a newly visible pixel shows what was remembered when its 3×3 mean |difference| over RGB is
# under this (in [0, 1]); sensor noise of a few levels stays well under it, a passing object over it
MATCH_BELOW = 0.03
# frames a pixel must stay still before what it shows is remembered: the smooth inside of a
# passing object looks still for a frame or two, and must not replace the background it covers
SETTLED = 8
# frames in a row the camera must move before the memory is dropped: one frame's misjudgement (a
# large object passing) must not cost the whole memory
MOVED_FOR = 3


@dataclass
class Memory:
    """Per pixel, the dream last seen there while the scene was still, and on which frame. Only
    the dream is kept at full precision: the frame it is matched against is half precision, the
    rest bytes (a handoff writes it all)."""

    residual: torch.Tensor  # (1, 3, H, W) float32: dream − frame
    frame: torch.Tensor  # (1, 3, H, W) float16: the frame it was seen on
    kept: torch.Tensor  # (1, 1, H, W) bool: whether there is one
    still_for: torch.Tensor  # (1, 1, H, W) uint8: frames each pixel has been still in a row, up to SETTLED
    camera_moved_for: int = 0  # frames in a row the camera moved

    @classmethod
    def of(cls, frame: torch.Tensor, residual: torch.Tensor) -> Memory:
        """A memory of the whole frame (a keyframe: the shot starts here)."""
        kept = torch.ones_like(frame[:, :1], dtype=torch.bool)
        return cls(residual.clone(), frame.to(torch.float16), kept, torch.full_like(kept, SETTLED, dtype=torch.uint8))

    def recall(self, frame: torch.Tensor) -> torch.Tensor:
        """(1, 1, H, W) in {0, 1}: the pixels that show what was remembered there."""
        difference = F.avg_pool2d(
            (frame - self.frame.to(frame.dtype)).abs().mean(dim=1, keepdim=True), 3, 1, 1, count_include_pad=False
        )
        return (self.kept & (difference < MATCH_BELOW)).to(frame.dtype)

    def update(self, frame: torch.Tensor, residual: torch.Tensor, still: torch.Tensor, camera_moved: bool) -> None:
        """Remember the dream where the scene has been still (``still`` over one half) for
        :data:`SETTLED` frames and shows something else than what was remembered; forget all of
        it once the camera moved for :data:`MOVED_FOR` frames in a row."""
        self.camera_moved_for = self.camera_moved_for + 1 if camera_moved else 0
        if self.camera_moved_for >= MOVED_FOR:
            self.kept = torch.zeros_like(self.kept)
            self.still_for = torch.zeros_like(self.still_for)
            return
        counted = (self.still_for + 1).clamp(max=SETTLED)
        self.still_for = torch.where(still > 0.5, counted, torch.zeros_like(self.still_for))
        # where the frame shows what was remembered the memory stands: a pixel uncovered a frame
        # before the match could see it (its neighbourhood still held the object) gets it back
        here = (self.still_for >= SETTLED) & (self.recall(frame) == 0)  # (1, 1, H, W)
        self.residual = torch.where(here, residual, self.residual)
        self.frame = torch.where(here, frame.to(torch.float16), self.frame)
        self.kept = self.kept | here

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Its parts as host arrays, for a handoff."""
        parts = {"residual": self.residual, "frame": self.frame, "kept": self.kept, "still_for": self.still_for}
        arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in parts.items()}
        return {**arrays, "camera_moved_for": np.array(self.camera_moved_for, dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], device: torch.device | None = None) -> Memory:
        parts = {
            k: torch.from_numpy(np.array(arrays[k])).to(device) for k in ("residual", "frame", "kept", "still_for")
        }
        return cls(**parts, camera_moved_for=int(arrays["camera_moved_for"]))
