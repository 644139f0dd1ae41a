"""The carry on the network's device: the same warp as OpenCV's, and a range dreamed with it
within the tolerance for renders that round differently (tests/rounding.py) of the host carry,
tested on the CPU."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from distdream.config import DreamConfig, RenderConfig
from distdream.dream import Dreamer
from distdream.frames import steps
from distdream.frames.carry import flow_tensor, warp_tensor
from distdream.frames.flow import warp
from distdream.frames.pipeline import DreamedFrames, carry_device
from distdream.samples import pan_frames, write_clip
from distdream.video import VideoIndex, probe, read_frames

from .rounding import STRENGTH, assert_same_recipe, levels

CPU = torch.device("cpu")
FAST = DreamConfig(num_iterations=3, num_octaves=2, dream_layers=("_blocks.5",), jitter=4)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_the_tensor_warp_samples_what_opencv_samples(interpolation: str) -> None:
    photo = cv2.resize(data.astronaut(), (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255 - 0.5
    noise = np.random.default_rng(0).normal(0, 3, (64, 96, 2)).astype(np.float32)
    # smooth motion of up to a few pixels, part of it pointing out of the frame (edges repeat)
    flow = cv2.GaussianBlur(noise, (0, 0), 6) * 4 + np.float32([2.5, -1.5])
    want = warp(photo, flow, interpolation)
    got = warp_tensor(torch.from_numpy(photo).permute(2, 0, 1)[None], flow_tensor(flow, CPU), interpolation)
    got_hwc = got[0].permute(1, 2, 0).numpy()
    assert np.abs(got_hwc - want).max() < 1e-4
    moved = np.abs(want - photo).mean()
    assert moved > 0.01  # the flow moved the picture: agreeing is not trivial


def test_the_tensor_warp_refuses_an_unknown_kernel() -> None:
    with pytest.raises(ValueError, match="nearest"):
        warp_tensor(torch.zeros(1, 3, 4, 4), torch.zeros(4, 4, 2), "nearest")


def test_the_carry_follows_the_network_unless_told() -> None:
    cpu_dreamer, gpu_dreamer = SimpleNamespace(device=CPU), SimpleNamespace(device=torch.device("cuda", 0))
    assert carry_device(RenderConfig(), cpu_dreamer) is None  # auto: the host, with OpenCV
    assert carry_device(RenderConfig(), gpu_dreamer) == torch.device("cuda", 0)  # auto: the card
    assert carry_device(RenderConfig(carry_on_device=True), cpu_dreamer) == CPU
    assert carry_device(RenderConfig(carry_on_device=False), gpu_dreamer) is None


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VideoIndex:
    return probe(write_clip(tmp_path_factory.mktemp("carry") / "clip.mp4", list(pan_frames(16, 64, 48)), crf=0))


def assert_handoff_matches(device: DreamedFrames, shown: list[np.ndarray], host: DreamedFrames) -> None:
    """The state a range hands off, held to the tolerance its frames are held to (tests/rounding.py).
    It is the dream residual of the range's last frame, where the two carries' frames may have
    drifted apart (DeepDream amplifies their rounding difference frame after frame, by as much as
    the host's kernels allow), so no bound on single values holds on every host. What holds: it is
    exactly the last frame shown minus that frame's input (a handoff continues what was shown),
    and it is as strong as the host carry's, within the 2 % the frames' strength keeps."""
    assert device.carried_out is not None and host.carried_out is not None
    residual = device.carried_out.residual[0].permute(1, 2, 0).numpy()  # (H, W, 3)
    source = next(read_frames(device.index.path, device.end - 1, device.end, index=device.index, dtype=np.float32))
    # one subtraction and one addition of float32 in [0, 1]: a rounding step at most, on any host
    np.testing.assert_allclose(source + residual, shown[-1], rtol=0, atol=1e-6)
    strengths = [float(c.residual.abs().mean()) for c in (device.carried_out, host.carried_out)]
    assert strengths[0] == pytest.approx(strengths[1], rel=STRENGTH)


def _range(index: VideoIndex, dreamer: Dreamer, on: bool, a: int, b: int, carried=None, seed: int = 3) -> DreamedFrames:
    config = RenderConfig(dream=FAST, keyframe_settle=0, carry_on_device=on)
    return DreamedFrames(index, a, b, config, dreamer, generator=torch.Generator().manual_seed(seed), carried=carried)


def _frames(frames: DreamedFrames) -> list[np.ndarray]:
    return [rgb for _, rgb, _ in frames]


def test_a_range_carried_on_the_device_matches_the_host_carry(index: VideoIndex, lite0, monkeypatch) -> None:
    warps: list[torch.device] = []

    def counted(image: torch.Tensor, flow: torch.Tensor, interpolation: str = "bilinear") -> torch.Tensor:
        warps.append(image.device)
        return warp_tensor(image, flow, interpolation)

    monkeypatch.setattr(steps, "warp_tensor", counted)
    dreamer = Dreamer(FAST, model=lite0, device="cpu")
    host = _range(index, dreamer, False, 0, 8)
    want = _frames(host)
    assert not warps  # the host carry: OpenCV
    device = _range(index, dreamer, True, 0, 8)
    got = _frames(device)
    assert len(warps) >= 7  # every carried frame was warped as a tensor
    other = _range(index, dreamer, False, 0, 8, seed=4)  # the same range, another dream
    other_frames = _frames(other)
    inputs = list(read_frames(index.path, 0, 12, index=index))
    assert_same_recipe(*[[levels(f) for f in r] for r in (got, want, other_frames)], inputs[:8])
    # the state a handoff passes on is on the host either way, and a continuation from the same
    # state carries it on the device as the host would
    assert device.carried_out is not None and device.carried_out.residual.device == CPU
    assert_handoff_matches(device, got, host)
    after_host = _frames(_range(index, dreamer, False, 8, 12, host.carried_out))
    after_device = _frames(_range(index, dreamer, True, 8, 12, host.carried_out))
    after_other = _frames(_range(index, dreamer, False, 8, 12, other.carried_out, seed=4))
    assert_same_recipe(*[[levels(f) for f in r] for r in (after_device, after_host, after_other)], inputs[8:])
