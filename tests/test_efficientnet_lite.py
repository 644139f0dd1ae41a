"""The bundled EfficientNet-Lite0: strict load of the real weights, TF padding, real recognition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distdream.models import LoadedModel
from distdream.models.efficientnet_lite import EfficientNetLite0, SamePadConv2d, bundled_weights_path


def test_bundled_state_dict_loads_strictly() -> None:
    state = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296
    model = EfficientNetLite0()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model._blocks[10]._depthwise_conv.weight, state["_blocks.10._depthwise_conv.weight"])


@pytest.mark.parametrize("size", [7, 8, 15, 16, 33])
@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (3, 2), (5, 2), (1, 1)])
def test_same_padding_matches_tensorflow(size: int, kernel: int, stride: int) -> None:
    conv = SamePadConv2d(1, 1, kernel, stride=stride)
    torch.nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, size, size)
    with torch.no_grad():
        y = conv(x)
    assert y.shape[-1] == math.ceil(size / stride)  # TF "SAME": output = ceil(input / stride)
    # TF pads the extra pixel at the bottom/right: the top-left output sees fewer real inputs.
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    top = total // 2
    assert float(y[0, 0, 0, 0]) == (kernel - top) ** 2
    with torch.no_grad():
        ref = F.conv2d(F.pad(x, [top, total - top, top, total - top]), conv.weight, stride=stride)
    assert torch.allclose(y, ref)


def test_bundled_model_recognises_the_cat(lite0: LoadedModel, chelsea: np.ndarray) -> None:
    x = torch.from_numpy(chelsea).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probs = lite0.module(lite0.preprocess.normalize(x)).softmax(-1)[0]
    top = int(probs.argmax())
    assert 281 <= top <= 285, f"top-1 class {top} is not an ImageNet cat"
    assert float(probs[281:286].sum()) > 0.5


def test_random_init_does_not_recognise_the_cat(chelsea: np.ndarray) -> None:
    # Guards the test above: the cat is found by the weights, not by the architecture or luck.
    torch.manual_seed(0)
    model = EfficientNetLite0().eval()
    x = torch.from_numpy(chelsea).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    assert float(probs[281:286].sum()) < 0.1
