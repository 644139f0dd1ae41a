"""Frozen settings records. Field names keep the seed tool's parameter names.

``DreamConfig`` says what one dreamed image looks like: which network, which layers and channels
to amplify, how hard and at how many scales. ``FlowConfig`` says how motion between input frames
is estimated; ``RenderConfig`` bundles both with how the dream travels from frame to frame and how
the output is encoded. It is plain data (picklable, comparable), validated
by :meth:`DreamConfig.validate`, which raises :class:`~distdream.errors.ConfigError` for every
impossible value. Checks that need the model (layer names, channel ranges) happen when the
dreamer is built, with the same error type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError

__all__ = ["ALL_LAYERS", "PRECISIONS", "DreamConfig", "FlowConfig", "RenderConfig"]

# Key of ``channels`` that applies to every dream layer without its own entry.
ALL_LAYERS = "*"

ChannelSpec = tuple[tuple[str, tuple[int, ...]], ...]

# What the network computes in. "auto" is fp32 everywhere: on an H200, bf16/fp16 autocast gave this
# network no worthwhile speed (see distdream.compute). The image itself always stays fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _normalize_channels(value: Any) -> ChannelSpec:
    """Accept ``{layer: [i, …]}``, ``[(layer, [i, …]), …]`` or ``[i, …]`` (all layers)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            items = [(ALL_LAYERS, value)] if len(value) else []
        else:
            items = list(value)
    else:
        raise ConfigError(f"channels must be a list of indices or a mapping layer → indices, not {value!r}")
    out = []
    for item in items:
        try:
            layer, idx = item
            indices = tuple(int(i) for i in idx)
        except (TypeError, ValueError):
            raise ConfigError(f"channels entry {item!r} is not (layer, [indices])") from None
        out.append((str(layer), indices))
    return tuple(sorted(out))


@dataclass(frozen=True, kw_only=True)
class DreamConfig:
    """How to dream one image (and, later, every frame of a video)."""

    model: str = "efficientnet_lite0"  # any name from `distdream models`
    weights: str | None = "DEFAULT"  # "DEFAULT", a weights enum name, a state-dict path, or None (random)
    learning_rate: float = 0.02  # step size in normalised pixel units per iteration (grad / mean|grad|)
    num_iterations: int = 10  # gradient-ascent steps per octave
    num_octaves: int = 4  # pyramid levels; 1 dreams at full resolution only
    octave_scale: float = 1.4  # size ratio between neighbouring levels
    dream_layers: tuple[str, ...] = ()  # layer names; empty = the model's default layers
    channels: ChannelSpec = ()  # per-layer channel indices to amplify; empty = all channels
    predefined_start: str | None = None  # image to start from instead of the input (resized to it)
    jitter: int = 32  # max random roll in pixels per step, undone after the step
    seed: int = 0  # seeds the jitter generator: same seed, same pixels
    tile_size: int | None = 1024  # frames larger than this are dreamed in overlapping tiles; None = never
    precision: str = "auto"  # network arithmetic: auto, fp32, bf16, fp16 (reduced ones need CUDA)
    # NHWC tensors. None: on for CPU (1.2–1.4× faster steps, measured), off on CUDA (batches of
    # 2–8 frames ran 3–7× slower in NHWC than NCHW on an H200, cuDNN 9, torch 2.11; see the README)
    channels_last: bool | None = None
    compile: bool = False  # torch.compile the truncated extractor (eager again if compiling fails)

    def __post_init__(self) -> None:
        # Normalise forgiving inputs (a list of layers, a dict of channels) into hashable tuples.
        if isinstance(self.dream_layers, str):
            layers = tuple(s.strip() for s in self.dream_layers.split(",") if s.strip())
        else:
            layers = tuple(self.dream_layers or ())
        object.__setattr__(self, "dream_layers", layers)
        object.__setattr__(self, "channels", _normalize_channels(self.channels))
        if self.predefined_start is not None:
            object.__setattr__(self, "predefined_start", str(self.predefined_start))

    def channels_for(self, layer: str) -> tuple[int, ...] | None:
        """Channel indices to amplify in ``layer`` (``None`` = all of them)."""
        table = dict(self.channels)
        return table.get(layer, table.get(ALL_LAYERS))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict of every setting (for job plans and config files)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "channels":
                value = {layer: list(idx) for layer, idx in value}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def validate(self) -> DreamConfig:
        """Raise :class:`ConfigError` for the first impossible value; return ``self`` otherwise."""

        def bad(name: str, value: Any, rule: str) -> ConfigError:
            flag = "--" + name.replace("_", "-")
            return ConfigError(f"{name} ({flag}) is {value!r}; it must be {rule}")

        if not isinstance(self.model, str) or not self.model:
            raise bad("model", self.model, "a model name (see `distdream models`)")
        if not _is_number(self.learning_rate) or not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            raise bad("learning_rate", self.learning_rate, "a finite number > 0")
        if not _is_int(self.num_iterations) or self.num_iterations < 0:
            raise bad("num_iterations", self.num_iterations, "an integer >= 0")
        if not _is_int(self.num_octaves) or self.num_octaves < 1:
            raise bad("num_octaves", self.num_octaves, "an integer >= 1")
        if not _is_number(self.octave_scale) or not self.octave_scale > 1 or not math.isfinite(self.octave_scale):
            raise bad("octave_scale", self.octave_scale, "a finite number > 1")
        if not _is_int(self.jitter) or self.jitter < 0:
            raise bad("jitter", self.jitter, "an integer >= 0 (pixels)")
        if not _is_int(self.seed):
            raise bad("seed", self.seed, "an integer")
        if self.tile_size is not None and (not _is_int(self.tile_size) or self.tile_size < 64):
            raise bad("tile_size", self.tile_size, "an integer >= 64 (pixels), or None for no tiling")
        if self.precision not in PRECISIONS:
            raise bad("precision", self.precision, f"one of {', '.join(PRECISIONS)}")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise bad("channels_last", self.channels_last, "true, false, or unset (auto)")
        if not isinstance(self.compile, bool):
            raise bad("compile", self.compile, "true or false")
        if len(set(self.dream_layers)) != len(self.dream_layers):
            raise bad("dream_layers", ",".join(self.dream_layers), "a list without repeats")
        for layer, indices in self.channels:
            if layer != ALL_LAYERS and self.dream_layers and layer not in self.dream_layers:
                raise ConfigError(
                    f"channels are given for layer {layer!r}, which is not in dream_layers "
                    f"({','.join(self.dream_layers)}); add it to --dream-layers or drop its channels"
                )
            if not indices or any(i < 0 for i in indices):
                raise ConfigError(f"channels for layer {layer!r} are {list(indices)}; give indices >= 0")
        return self


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = ("ultrafast", "fast", "medium")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True, kw_only=True)
class FlowConfig:
    """How optical flow, occlusion masks and scene cuts are computed between input frames."""

    method: str = "dis"  # "dis" (OpenCV DIS: fast, robust) or "farneback"
    dis_preset: str = "medium"  # DIS quality/speed: ultrafast, fast, medium
    flow_scale: float = 0.5  # flow is computed at this fraction of the frame size, then resized
    consistency: float = 0.01  # forward–backward check: occluded if |f + b|² > c(|f|² + |b|²) + 0.5 px²
    cut_min_consistent: float = 0.3  # a scene cut when fewer pixels than this share have a consistent flow …
    cut_max_error: float = 0.1  # … or when matched pixels still differ by more than this (mean |Δluma|, 0–1)

    def validate(self) -> FlowConfig:
        if self.method not in FLOW_METHODS:
            raise ConfigError(f"flow method (--flow) is {self.method!r}; it must be one of {', '.join(FLOW_METHODS)}")
        if self.dis_preset not in DIS_PRESETS:
            raise ConfigError(f"DIS preset is {self.dis_preset!r}; it must be one of {', '.join(DIS_PRESETS)}")
        if not _is_number(self.flow_scale) or not 0 < self.flow_scale <= 1:
            raise ConfigError(f"flow_scale (--flow-scale) is {self.flow_scale!r}; it must be in (0, 1]")
        if not _is_number(self.consistency) or self.consistency < 0:
            raise ConfigError(f"consistency is {self.consistency!r}; it must be >= 0")
        for name in ("cut_min_consistent", "cut_max_error"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ConfigError(f"{name} is {value!r}; it must be in [0, 1]")
        return self


@dataclass(frozen=True, kw_only=True)
class RenderConfig:
    """How a video is dreamed: the dream, how it travels between frames, and how it is encoded."""

    dream: DreamConfig = field(default_factory=DreamConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    keyframe_iterations: int | None = None  # per octave, for keyframes; None = dream.num_iterations
    frame_iterations: int | None = None  # per octave, for flow-warped frames; None = half the keyframes'
    decay: float = 0.9  # share of the warped dream residual carried into the next frame
    # carried-frame updates applied to a keyframe in place, keeping what the shot's motion carries
    # (dream.settle_keep), so a shot starts at the strength its carried frames settle at. Measured
    # (64×48 still shot; 96×64 pan): first frame 26 / 32 / 38 levels against a steady ~40 on the
    # still shot, first 10 pan frames at 0.80 / 0.90 / 0.94 of the median, with 0 / 6 / 10;
    # costs about as much as this many carried frames per keyframe
    keyframe_settle: int = 10
    # λ of the temporal term: after each step a carried frame moves this share of the way back to
    # itself plus the previous dream warped onto it, on pixels the flow can be trusted on (0: off).
    # 0.1 takes 40 % off the warping error at the same strength (with hold_level; README, "At equal
    # strength"); without hold_level it drains the dream over a shot
    temporal_weight: float = 0.1
    # hold every carried frame at its keyframe's strength, colour cast and colourfulness
    # (dream.held): no ramp, no drift over a long shot, no drain by the temporal term
    hold_level: bool = True
    occlusion_mask: bool = True  # drop the carried residual where the scene is new (disoccluded)
    crf: int = 18  # x264 quality of the output: 0 lossless … 51 worst
    preset: str = "medium"  # x264 speed/size trade-off

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain data (the job plan stores it; its hash guards resumes)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("dream", "flow")}
        return {**out, "dream": self.dream.to_dict(), "flow": {f.name: getattr(self.flow, f.name) for f in fields(self.flow)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderConfig:
        rest = {k: v for k, v in data.items() if k not in ("dream", "flow")}
        dream = dict(data.get("dream", {}))
        for key in ("dream_layers",):
            if key in dream:
                dream[key] = tuple(dream[key])
        return cls(dream=DreamConfig(**dream), flow=FlowConfig(**data.get("flow", {})), **rest)

    @property
    def keyframe_steps(self) -> int:
        return self.dream.num_iterations if self.keyframe_iterations is None else self.keyframe_iterations

    @property
    def frame_steps(self) -> int:
        return max(1, self.keyframe_steps // 2) if self.frame_iterations is None else self.frame_iterations

    def validate(self) -> RenderConfig:
        self.dream.validate()
        self.flow.validate()
        for name in ("keyframe_iterations", "frame_iterations"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{name} ({flag}) is {value!r}; it must be an integer >= 0")
        if not _is_int(self.keyframe_settle) or not 0 <= self.keyframe_settle <= 50:
            raise ConfigError(f"keyframe_settle (--keyframe-settle) is {self.keyframe_settle!r}; it must be an integer "
                              "in 0–50")
        if not _is_number(self.temporal_weight) or not 0 <= self.temporal_weight <= 1:
            raise ConfigError(f"temporal_weight (--temporal-weight) is {self.temporal_weight!r}; it must be in [0, 1]")
        if not isinstance(self.hold_level, bool):
            raise ConfigError(f"hold_level (--hold-level) is {self.hold_level!r}; it must be true or false")
        if not _is_number(self.decay) or not 0 <= self.decay <= 1:
            raise ConfigError(f"decay (--decay) is {self.decay!r}; it must be in [0, 1]")
        if not _is_int(self.crf) or not 0 <= self.crf <= 51:
            raise ConfigError(f"crf (--crf) is {self.crf!r}; it must be an integer in 0–51")
        if self.preset not in X264_PRESETS:
            raise ConfigError(f"preset (--preset) is {self.preset!r}; it must be one of {', '.join(X264_PRESETS)}")
        return self
