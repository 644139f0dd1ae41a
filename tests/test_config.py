"""DreamConfig: normalisation of friendly inputs and validate() on every impossible value."""

from __future__ import annotations

import pickle

import pytest

from distdream.config import DreamConfig
from distdream.errors import ConfigError
from distdream.values import ALL_LAYERS


def test_defaults_validate_and_round_trip_through_pickle() -> None:
    cfg = DreamConfig().validate()
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_layers_and_channels_are_normalised() -> None:
    cfg = DreamConfig(dream_layers="a, b", channels={"b": [3, 1], "a": (0,)})
    assert cfg.dream_layers == ("a", "b")
    assert cfg.channels == (("a", (0,)), ("b", (3, 1)))
    assert cfg.channels_for("b") == (3, 1)
    assert cfg.channels_for("c") is None
    everywhere = DreamConfig(channels=[4, 5])
    assert everywhere.channels == ((ALL_LAYERS, (4, 5)),)
    assert everywhere.channels_for("anything") == (4, 5)


def test_to_dict_is_plain_data() -> None:
    d = DreamConfig(dream_layers=("x",), channels={"x": [1]}).to_dict()
    assert d["dream_layers"] == ["x"] and d["channels"] == {"x": [1]} and d["model"] == "efficientnet_lite0"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("num_octaves", 0, "num_octaves"),
        ("num_iterations", -1, "num_iterations"),
        ("learning_rate", 0.0, "learning_rate"),
        ("learning_rate", -0.5, "learning_rate"),
        ("learning_rate", float("nan"), "learning_rate"),
        ("octave_scale", 1.0, "octave_scale"),
        ("octave_scale", 0.5, "octave_scale"),
        ("jitter", -1, "jitter"),
        ("tile_size", 16, "tile_size"),
        ("num_iterations", 2.5, "num_iterations"),
        ("model", "", "model"),
    ],
)
def test_validate_rejects(field: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        DreamConfig(**{field: value}).validate()


def test_validate_rejects_channel_problems() -> None:
    with pytest.raises(ConfigError, match="not in dream_layers"):
        DreamConfig(dream_layers=("a",), channels={"b": [1]}).validate()
    with pytest.raises(ConfigError, match="indices >= 0"):
        DreamConfig(channels=[-1]).validate()
    with pytest.raises(ConfigError, match="without repeats"):
        DreamConfig(dream_layers=("a", "a")).validate()


def test_job_options_take_keyword_shorthand_and_name_an_unknown_one() -> None:
    from distdream.options import JobOptions, job_options_of

    base = JobOptions(workers=4, chunk_frames=240)
    merged = job_options_of(base, {"resume": True})
    assert (merged.workers, merged.chunk_frames, merged.resume) == (4, 240, True)  # shorthand over the record
    assert job_options_of(None, {}) == JobOptions()
    with pytest.raises(ConfigError, match="unknown job option: .*'chunk_frame'"):
        job_options_of(base, {"chunk_frame": 10})
    with pytest.raises(ConfigError, match="workers"):
        job_options_of(None, {"workers": 0})  # validated
