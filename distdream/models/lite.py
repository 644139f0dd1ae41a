"""The bundled family: EfficientNet-Lite0 with its ImageNet weights, and its layers without tracing.

torchvision's FX feature extraction needs ``import torchvision``, which pulls in ``torch._dynamo``
and sympy: seconds of every start. The bundled model's graph is a plain chain (stem, 16 blocks
with an optional residual add, head), so its nodes are listed here under the very names FX gives
them (``_blocks.2._act_1``, ``_blocks.7.add``, ``adaptive_avg_pool2d``), shapes are worked out
from the strides without a forward pass, and :class:`LiteExtractor` runs the chain up to the
deepest requested node with every batch norm folded into its convolution — the same arithmetic as
the FX path, which the tests compare it with. :data:`BACKEND` is the family's registry record.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..values import looks_like_path
from .base import (
    DEFAULT_MODEL,
    Backend,
    Built,
    LayerInfo,
    Preprocess,
    Weights,
    all_names,
    fuse_conv_bn,
    load_state_dict_file,
)
from .efficientnet_lite import EfficientNetLite0, MBConvBlock, SamePadConv2d, bundled_weights_path

__all__ = ["BACKEND", "LiteExtractor", "Node", "build", "lite_nodes", "node_shapes"]


@dataclass(frozen=True)
class Node:
    """One step of the chain: its FX name, what it does, and the module that does it."""

    name: str
    kind: str  # conv, bn, act, add (the block's input added back), pool
    module: nn.Module | None = None
    block_start: bool = False  # the block's input is kept here for its add


def _block_nodes(i: int, block: MBConvBlock) -> list[Node]:
    p = f"_blocks.{i}."
    acts = iter(("_act", "_act_1"))  # FX numbers the second call of one module
    nodes = []
    if block.expand:
        nodes += [
            Node(p + "_expand_conv", "conv", block._expand_conv, True),
            Node(p + "_bn0", "bn", block._bn0),
            Node(p + next(acts), "act", block._act),
        ]
    nodes += [
        Node(p + "_depthwise_conv", "conv", block._depthwise_conv, not block.expand),
        Node(p + "_bn1", "bn", block._bn1),
        Node(p + next(acts), "act", block._act),
        Node(p + "_project_conv", "conv", block._project_conv),
        Node(p + "_bn2", "bn", block._bn2),
    ]
    if block.skip:
        nodes.append(Node(p + "add", "add"))
    return nodes


def lite_nodes(model: EfficientNetLite0) -> list[Node]:
    """Every node of the model's feature maps in execution order, as FX names them."""
    nodes = [
        Node("_conv_stem", "conv", model._conv_stem),
        Node("_bn0", "bn", model._bn0),
        Node("_act", "act", model._act),
    ]
    for i, block in enumerate(model._blocks):
        assert isinstance(block, MBConvBlock)
        nodes += _block_nodes(i, block)
    return nodes + [
        Node("_conv_head", "conv", model._conv_head),
        Node("_bn1", "bn", model._bn1),
        Node("_act_1", "act", model._act),
        Node("adaptive_avg_pool2d", "pool"),
    ]


def node_shapes(nodes: Sequence[Node], size: int) -> dict[str, tuple[int, int]]:
    """(channels, height) of every node's output for a ``size``×``size`` input ("SAME" padding:
    a stride-s convolution gives ``ceil(h / s)``)."""
    shapes, channels, height = {}, 3, size
    for node in nodes:
        if node.kind == "conv":
            assert isinstance(node.module, nn.Conv2d)
            channels, height = node.module.out_channels, math.ceil(height / node.module.stride[0])
        elif node.kind == "pool":
            height = 1
        shapes[node.name] = (channels, height)
    return shapes


def _unpadded(module: nn.Module) -> nn.Module:
    """A copy of ``module``; a stride-1 "SAME" convolution becomes a plain one with symmetric
    padding (an odd kernel pads (k − 1) / 2 on each side at any size): the same sums, without a
    padded copy of the input per call (its share of a step: docs/startup.md)."""
    if isinstance(module, SamePadConv2d) and module.stride == (1, 1) and all(k % 2 for k in module.kernel_size):
        plain = nn.Conv2d(
            module.in_channels,
            module.out_channels,
            (module.kernel_size[0], module.kernel_size[1]),
            padding=(module.kernel_size[0] // 2, module.kernel_size[1] // 2),
            groups=module.groups,
            bias=False,
        )
        plain.weight = nn.Parameter(module.weight.detach().clone(), requires_grad=False)
        return plain
    return copy.deepcopy(module)


class LiteExtractor(nn.Module):
    """The chain cut after the deepest of ``wanted`` (node names), batch norms folded into the
    convolution before them unless that convolution's own output is wanted; returns ``{name: map}``
    for each ``outputs`` name → node."""

    def __init__(self, model: EfficientNetLite0, outputs: dict[str, str]) -> None:
        super().__init__()
        nodes = lite_nodes(model)
        wanted = set(outputs.values())
        last = max(i for i, n in enumerate(nodes) if n.name in wanted)
        self.outputs = dict(outputs)
        self.steps: list[tuple[str, str, bool]] = []  # (node, kind, block start)
        self.ops = nn.ModuleDict()
        keep = nodes[: last + 1]
        for i, node in enumerate(keep):
            key = node.name.replace(".", "/")  # ModuleDict keys may not hold dots
            if node.kind == "bn" and keep[i - 1].kind == "conv" and keep[i - 1].name not in wanted:
                conv_key = keep[i - 1].name.replace(".", "/")
                conv, bn = self.ops[conv_key], node.module
                assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                self.ops[conv_key] = fuse_conv_bn(conv, bn)
                self.steps.append((node.name, "same", False))  # the folded conv's output is this node's
                continue
            if node.module is not None:
                self.ops[key] = _unpadded(node.module)
            self.steps.append((node.name, node.kind, node.block_start))
        self.eval()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.outputs.values())
        got: dict[str, torch.Tensor] = {}
        block_in = x
        for name, kind, block_start in self.steps:
            if block_start:
                block_in = x
            if kind == "add":
                x = x + block_in
            elif kind == "pool":
                x = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
            elif kind != "same":
                x = self.ops[name.replace(".", "/")](x)
            if name in wanted:
                got[name] = x
        return {layer: got[node] for layer, node in self.outputs.items()}


def build(name: str, weights: str | None) -> Built:
    """EfficientNet-Lite0 with ``weights``: DEFAULT (the bundled ImageNet weights), a state-dict
    file, or None (random)."""
    module = EfficientNetLite0()
    if weights is None:
        label = None
    elif looks_like_path(weights):
        load_state_dict_file(module, weights)
        label = Weights(str(weights), str(weights))
    elif weights.upper() in {"DEFAULT", "IMAGENET1K", "IMAGENET"}:
        load_state_dict_file(module, bundled_weights_path())
        label = Weights("IMAGENET1K (bundled)", str(bundled_weights_path()))
    else:
        raise ModelError(
            f"unknown weights {weights!r} for {name}: use DEFAULT (the bundled ImageNet "
            "weights), a path to a state-dict file, or none"
        )
    # The official TF-Lite training pipeline scaled pixels to [-1, 1] (mean 127, std 128 of 255).
    return module, Preprocess(mean=(127 / 255,) * 3, std=(128 / 255,) * 3), label, ("_blocks.9", "_blocks.12")


def _lite(module: nn.Module) -> EfficientNetLite0:
    assert isinstance(module, EfficientNetLite0), "the efficientnet_lite backend builds only EfficientNetLite0"
    return module


def layer_infos(module: nn.Module, size: int) -> list[LayerInfo]:
    """Every node's feature map: channels and stride at a ``size``×``size`` input, without a forward pass."""
    nodes = lite_nodes(_lite(module))
    shapes = node_shapes(nodes, size)
    return [
        LayerInfo(name, shapes[node][0], size / shapes[node][1])
        for name, node in all_names([n.name for n in nodes]).items()
    ]


def extractor(module: nn.Module, layers: Sequence[str]) -> nn.Module:
    lite = _lite(module)
    names = all_names([n.name for n in lite_nodes(lite)])
    return LiteExtractor(lite, {layer: names[layer] for layer in layers})


BACKEND = Backend(
    family="efficientnet_lite",
    names=lambda: (DEFAULT_MODEL,),
    build=build,
    layer_nodes=lambda module: [n.name for n in lite_nodes(_lite(module))],
    layer_infos=layer_infos,
    extractor=extractor,
    weights_cached=lambda _name: True,  # bundled
)
