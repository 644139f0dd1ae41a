"""Layers of a torchvision model by FX tracing: node names, shapes, and the truncated extractor.

Layers are named as torchvision's feature extraction names graph nodes (``inception4c``,
``layer3.1.relu_1``); a module name stands for the last node inside it. The extractor is the
traced graph cut after the deepest requested layer, frozen and in eval mode, with every batch
norm folded into its convolution, so a dream step pays for no layer it does not read. Importing
torchvision costs seconds, so only the torchvision family (:mod:`.tv`) loads this module (the
bundled one lists its layers in :mod:`.lite`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models import feature_extraction

from .base import LayerInfo, all_names, fuse_conv_bn

__all__ = ["fx_extractor", "fx_layer_infos", "fx_node_names"]


def fx_node_names(module: nn.Module, tracer_kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """The eval-mode graph's nodes, in order, without the input placeholder."""
    _, eval_nodes = feature_extraction.get_graph_node_names(
        module, tracer_kwargs=dict(tracer_kwargs or {}), suppress_diff_warning=True
    )
    return eval_nodes[1:]


def fx_layer_infos(
    module: nn.Module, size: int = 224, tracer_kwargs: Mapping[str, Any] | None = None
) -> list[LayerInfo]:
    """Every layer whose output is a (B, C, H, W) feature map, in execution order, from one
    forward pass at ``size``×``size`` (``stride`` is ``size / H``)."""
    nodes = fx_node_names(module, tracer_kwargs)
    extractor = feature_extraction.create_feature_extractor(
        module, return_nodes=nodes, tracer_kwargs=dict(tracer_kwargs or {}), suppress_diff_warning=True
    )
    with torch.no_grad():
        outputs = extractor(torch.zeros(1, 3, size, size))
    infos = []
    for name, node in all_names(nodes).items():
        out = outputs.get(node)
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            infos.append(LayerInfo(name, int(out.shape[1]), size / int(out.shape[2])))
    return infos


def fx_extractor(module: nn.Module, layers: Sequence[str], tracer_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """A frozen, eval-mode module mapping an input batch to ``{layer: (B, C, H, W)}``: the traced
    graph ends at the deepest requested layer (FX drops every node the outputs do not depend on)."""
    extractor = feature_extraction.create_feature_extractor(
        module,
        return_nodes=list(layers),
        tracer_kwargs=dict(tracer_kwargs or {}),
        suppress_diff_warning=True,
    )
    extractor.eval()
    extractor.requires_grad_(False)
    _fold_batchnorm(extractor)
    return extractor


def _fold_batchnorm(graph_module: torch.fx.GraphModule) -> None:
    """Fold every eval-mode BatchNorm2d into the convolution that alone feeds it (a fixed
    per-channel affine map in eval mode: about a quarter of a dream step on CPU). A convolution
    whose output is also read elsewhere (say, requested as a layer) is left alone. Folded
    convolutions are copies: the loaded model stays untouched."""
    modules = dict(graph_module.named_modules())
    for bn_node in list(graph_module.graph.nodes):
        if bn_node.op != "call_module" or not isinstance(modules.get(bn_node.target), nn.BatchNorm2d):
            continue
        conv_node = bn_node.args[0]
        if not isinstance(conv_node, torch.fx.Node) or conv_node.op != "call_module" or len(conv_node.users) != 1:
            continue
        conv, bn = modules[conv_node.target], modules[bn_node.target]
        if not isinstance(conv, nn.Conv2d) or bn.running_mean is None or bn.running_var is None:
            continue
        parent, _, leaf = str(conv_node.target).rpartition(".")
        setattr(graph_module.get_submodule(parent) if parent else graph_module, leaf, fuse_conv_bn(conv, bn))
        bn_node.replace_all_uses_with(conv_node)
        graph_module.graph.erase_node(bn_node)
    graph_module.graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
