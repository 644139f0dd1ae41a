"""The carried dream moved on the network's device: a warp by ``grid_sample``.

Between frames each chunk warps the previous dream residual onto the next frame by its flow,
masks it and holds its level. On the CPU path that is OpenCV's ``remap`` on host arrays; on a
GPU it would cost each lane a round trip and CPU time beside the batch (the lanes' lockstep idle:
docs/benchmarks/gpu.md). This warp samples the same points with the same kernels (bilinear, or
bicubic with a = −0.75, edges repeated) on whatever device the residual lives on, so the carry,
the mask, the anchor and the held level stay there. It agrees with ``remap`` to float rounding
(``tests/test_carry.py``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["flow_tensor", "warp_tensor"]

_MODES = {"bilinear": "bilinear", "bicubic": "bicubic"}


def flow_tensor(flow: np.ndarray, device: torch.device) -> torch.Tensor:
    """An (H, W, 2) float32 flow field as a tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).to(device)


def warp_tensor(image: torch.Tensor, flow: torch.Tensor, interpolation: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` (B, C, H, W) at ``x + flow(x)`` (``flow``: (H, W, 2), on its device), edges
    repeated: :func:`distdream.frames.flow.warp` on tensors."""
    if interpolation not in _MODES:
        raise ValueError(f"interpolation {interpolation!r}: choose from {', '.join(_MODES)}")
    h, w = flow.shape[:2]
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device)
    # pixel centres at -1 … 1 (align_corners): x ↦ 2x / (W − 1) − 1
    gx = (xs[None, :] + flow[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys[:, None] + flow[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)[None].expand(image.shape[0], h, w, 2).to(image.dtype)
    return F.grid_sample(image, grid, mode=_MODES[interpolation], padding_mode="border", align_corners=True)
