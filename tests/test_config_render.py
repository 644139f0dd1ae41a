"""RenderConfig and FlowConfig: defaults, derived iteration counts, validation of every field."""

from __future__ import annotations

import pickle

import pytest

from distdream.config import DreamConfig, Encoding, FlowConfig, RenderConfig
from distdream.errors import ConfigError


def test_defaults_and_derived_iterations() -> None:
    cfg = RenderConfig().validate()
    assert cfg.keyframe_steps == cfg.dream.num_iterations == 10 and cfg.frame_steps == 5
    custom = RenderConfig(dream=DreamConfig(num_iterations=7), keyframe_iterations=12, frame_iterations=0)
    assert custom.keyframe_steps == 12 and custom.frame_steps == 0
    assert RenderConfig(dream=DreamConfig(num_iterations=1)).frame_steps == 1
    assert pickle.loads(pickle.dumps(cfg)) == cfg


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        (RenderConfig(decay=1.5), "decay"),
        (RenderConfig(decay=-0.1), "decay"),
        (RenderConfig(hold_level="yes"), "hold_level"),  # a TOML string is not a switch
        (RenderConfig(keyframe_iterations=-1), "keyframe_iterations"),
        (RenderConfig(frame_iterations=1.5), "frame_iterations"),
        (RenderConfig(encoding=Encoding(crf=60)), "crf"),
        (RenderConfig(encoding=Encoding(preset="warp")), "preset"),
        (RenderConfig(flow=FlowConfig(method="lucas")), r"flow_method \(--flow\)"),
        (RenderConfig(flow=FlowConfig(flow_scale=0)), "flow_scale"),
        (RenderConfig(flow=FlowConfig(flow_scale=1.01)), "flow_scale"),
        (RenderConfig(flow=FlowConfig(dis_preset="slow")), "dis_preset"),
        (RenderConfig(flow=FlowConfig(cut_max_error=2)), "cut_max_error"),
        (RenderConfig(dream=DreamConfig(num_octaves=0)), "num_octaves"),
    ],
)
def test_validate_rejects(cfg: RenderConfig, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        cfg.validate()
