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

from dataclasses import dataclass, field, fields
from typing import Any

from .declare import Rule, check_fields, integer, number, one_of, setting, switch, text
from .errors import ConfigError
from .values import (
    ALL_LAYERS,
    ChannelSpec,
    channels_text,
    layers_text,
    normalize_channels,
    parse_channels,
    parse_rate,
    parse_tile_size,
    parse_weights,
)

__all__ = [
    "DreamConfig",
    "Encoding",
    "FlowConfig",
    "PRECISIONS",
    "RenderConfig",
]

# What the network computes in. "auto" is fp32 everywhere: on an H200, bf16/fp16 autocast gave this
# network no worthwhile speed (see distdream.compute). The image itself always stays fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True, kw_only=True)
class DreamConfig:
    """How to dream one image (and, later, every frame of a video)."""

    model: str = setting(
        "efficientnet_lite0",
        help="Model name (see `distdream models`).",
        rule=text("a model name (see `distdream models`)"),
    )
    weights: str | None = setting(
        "DEFAULT",
        parse=parse_weights,
        unset="random weights",
        help="DEFAULT, a weights enum name (IMAGENET1K_V1), a state-dict file, or 'none' (random).",
    )
    learning_rate: float = setting(
        0.02, rule=number(above=0), help="Step size per iteration (normalised gradient units)."
    )
    num_iterations: int = setting(10, rule=integer(low=0), help="Gradient-ascent steps per octave.")
    num_octaves: int = setting(4, rule=integer(low=1), help="Levels of the image pyramid (1: full size only).")
    octave_scale: float = setting(1.4, rule=number(above=1), help="Size ratio between pyramid levels (> 1).")
    dream_layers: tuple[str, ...] = setting(
        (), text=layers_text, shown="the model's own", help="Comma-separated layer names."
    )
    channels: ChannelSpec = setting(
        (),
        parse=parse_channels,
        text=channels_text,
        multiple=True,
        help="Channels to amplify: '3,7' for every layer or 'LAYER=3,7'; repeatable. [default: all]",
    )
    predefined_start: str | None = setting(
        None, path="file", help="Start from this image instead of the input (resized to it)."
    )
    jitter: int = setting(32, rule=integer(low=0, unit="pixels"), help="Max random roll in pixels per step.")
    # chunk seeds are seed × 1 000 003 + a frame number, and torch takes 64-bit seeds
    seed: int = setting(
        0, rule=integer(low=0, high=2**32 - 1), help="Seed of the jitter generator: same seed, same pixels."
    )
    tile_size: int | None = setting(
        1024,
        rule=integer(low=64, unit="pixels"),
        unset="no tiling",
        parse=parse_tile_size,
        help="Dream larger images in overlapping tiles of this size; 'none' disables.",
    )
    precision: str = setting(
        "auto",
        rule=one_of(PRECISIONS),
        help="Network arithmetic (bf16/fp16 need CUDA); auto = fp32 (measured fastest-for-quality).",
    )
    # NHWC tensors. None: on for CPU (faster steps), off on CUDA (far slower batches on an H200);
    # the figures: docs/benchmarks/gpu.md
    channels_last: bool | None = setting(
        None, rule=switch(), unset="auto", shown="on for CPU, off on CUDA (measured)", help="NHWC memory layout."
    )
    compile: bool = setting(
        False, rule=switch(), help="torch.compile the network (slow first frames; falls back to eager on failure)."
    )

    def __post_init__(self) -> None:
        # Normalise forgiving inputs (a list of layers, a dict of channels) into hashable tuples.
        if isinstance(self.dream_layers, str):
            layers = tuple(s.strip() for s in self.dream_layers.split(",") if s.strip())
        else:
            layers = tuple(self.dream_layers or ())
        object.__setattr__(self, "dream_layers", layers)
        object.__setattr__(self, "channels", normalize_channels(self.channels))
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
        check_fields(self)
        if len(set(self.dream_layers)) != len(self.dream_layers):
            raise ConfigError(
                f"dream_layers (--dream-layers) is {','.join(self.dream_layers)!r}; it must be a list without repeats"
            )
        for layer, indices in self.channels:
            if layer != ALL_LAYERS and self.dream_layers and layer not in self.dream_layers:
                raise ConfigError(
                    f"channels are given for layer {layer!r}, which is not in dream_layers "
                    f"({','.join(self.dream_layers)}); add it to --dream-layers or drop its channels"
                )
            if not indices or any(i < 0 for i in indices):
                raise ConfigError(f"channels for layer {layer!r} are {list(indices)}; give indices >= 0")
        return self


FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = ("ultrafast", "fast", "medium")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


# x264's two parameters, one rule each: RenderConfig's flags and every segment writer obey them
# "auto": H.264 for a video output, PNG or TIFF by the suffix of an image-sequence output
CODEC_NAMES = ("auto", "h264", "h265", "prores", "ffv1", "png", "tiff")
PRORES_NAMES = ("auto", "proxy", "lt", "standard", "hq", "4444", "4444xq")
CRF = integer(low=0, high=51)
PIX_FMT = text("a pixel format name, e.g. yuv420p10le")
RATE = Rule("a positive frame rate such as 24, 25 or 24000/1001", lambda v: parse_rate(v) is not None)
PRESET = one_of(X264_PRESETS)


@dataclass(frozen=True, kw_only=True)
class Encoding:
    """How a job's pieces are encoded, the same for every one (they must match for a lossless
    join). "Settings" in distdream means what a user sets; this is the encoder's part of it;
    :func:`distdream.video.output_format` resolves it against the input (pixel format, colour).

    Lossy x264 output is not bit-exact from run to run at some frame sizes (PyAV's x264 build,
    seen at 97×65 and 98×66, single-threaded too); ``crf=0`` (lossless) is, by construction.
    """

    crf: int = setting(18, rule=CRF, help="x264/x265 quality (0 lossless … 51).")
    preset: str = setting("medium", rule=PRESET, help="x264/x265 speed/size trade-off.")
    codec: str = setting(
        "auto",
        rule=one_of(CODEC_NAMES),
        help="Output codec: h264, h265, prores (10-bit 4:2:2 HQ, or 4444), ffv1 (lossless); auto: "
        "h264, or png/tiff by an image sequence's suffix.",
    )
    pix_fmt: str | None = setting(
        None,
        rule=PIX_FMT,
        unset="the input's depth and chroma",
        help="Output pixel format (e.g. yuv420p10le, yuv444p, yuv422p10le).",
    )
    prores_profile: str = setting(
        "auto", rule=one_of(PRORES_NAMES), unset="hq, or 4444 from 4:4:4/RGB", help="ProRes profile."
    )

    def validate(self) -> Encoding:
        check_fields(self)
        return self


@dataclass(frozen=True, kw_only=True)
class FlowConfig:
    """How optical flow, occlusion masks and scene cuts are computed between input frames."""

    # "dis" (OpenCV DIS: fast, robust) or "farneback"
    method: str = setting(
        "dis", rule=one_of(FLOW_METHODS), flag="--flow", key="flow_method", help="Optical flow method."
    )
    dis_preset: str = setting("medium", rule=one_of(DIS_PRESETS), help="DIS flow quality/speed.")
    flow_scale: float = setting(
        0.5, rule=number(above=0, high=1), help="Compute flow at this fraction of the frame size, then resize it."
    )
    # forward–backward check: occluded if |f + b|² > c(|f|² + |b|²) + 0.5 px²
    consistency: float = setting(0.01, rule=number(low=0), cli=False, help="Forward–backward consistency factor.")
    # a scene cut when fewer pixels than this share have a consistent flow …
    cut_min_consistent: float = setting(
        0.3,
        rule=number(low=0, high=1),
        cli=False,
        help="A cut where fewer pixels than this share have a consistent flow.",
    )
    # … or when matched pixels still differ by more than this (mean |Δluma|, 0–1)
    cut_max_error: float = setting(
        0.1, rule=number(low=0, high=1), cli=False, help="A cut where matched pixels still differ by more than this."
    )

    def validate(self) -> FlowConfig:
        check_fields(self)
        return self


@dataclass(frozen=True, kw_only=True)
class RenderConfig:
    """How a video is dreamed: the dream, how it travels between frames, and how it is encoded."""

    dream: DreamConfig = field(default_factory=DreamConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    encoding: Encoding = field(default_factory=Encoding)
    keyframe_iterations: int | None = setting(
        None,
        rule=integer(low=0),
        unset="--num-iterations",
        help="Steps per octave for keyframes (first frame, after cuts).",
    )
    frame_iterations: int | None = setting(
        None, rule=integer(low=0), unset="half the keyframes'", help="Steps per octave for flow-carried frames."
    )
    decay: float = setting(
        0.9,
        rule=number(low=0, high=1),
        help="Share of the previous dream carried into the next frame (0 = independent frames).",
    )
    # carried-frame updates applied to a keyframe in place, keeping what the shot's motion carries
    # (sequence.settle_keep), so a shot starts at the strength its carried frames settle at; costs
    # about as much as this many carried frames per keyframe (docs/benchmarks/cpu.md, "Measurements
    # behind the defaults")
    keyframe_settle: int = setting(
        10,
        rule=integer(low=0, high=50),
        help="Carried-frame updates a keyframe gets in place, so a shot starts at steady strength.",
    )
    # λ of the temporal term: after each step a carried frame moves this share of the way back to
    # itself plus the previous dream warped onto it, on pixels the flow can be trusted on (0: off).
    # 0.1 takes a third off the warping error at the same strength (with hold_level;
    # docs/design/coherence.md, "At equal strength"); without hold_level it drains the dream over a shot
    temporal_weight: float = setting(
        0.1,
        rule=number(low=0, high=1),
        help="λ: each step pulls a carried frame this far back toward itself plus the previous dream, warped.",
    )
    # hold every carried frame at its keyframe's strength, colour cast and colourfulness
    # (sequence.held): no ramp, no drift over a long shot, no drain by the temporal term
    hold_level: bool = setting(
        True,
        rule=switch(),
        help="Hold carried frames at their keyframe's strength and colour (no ramp or drift over a shot).",
    )
    # where the scene holds still (under 0.05 px a frame, trusted flow) the carried dream is kept
    # whole and the steps leave it be: a still shot keeps its dream instead of morphing
    # (docs/design/coherence.md, "One dream"); 0 gives classic DeepDream's evolving dream. A render
    # from a predefined start image is not held (the image is meant to fade into the footage)
    steady: float = setting(
        1.0,
        rule=number(low=0, high=1),
        help="How firmly the dream holds where the scene is still: 1 holds it, 0 lets it keep evolving (breathing).",
    )
    occlusion_mask: bool = setting(True, rule=switch(), help="Drop the carried dream where the scene is newly visible.")
    # how the carried dream is resampled when warped onto the next frame. Bilinear blurs it a
    # little every frame, and the dream's steps redraw what was lost: at equal strength bicubic
    # keeps more detail with no more flicker than that detail brings (docs/design/coherence.md, "At
    # equal strength"). Bilinear is the previous default and the seed tool's
    carry_resampling: str = setting(
        "bicubic",
        rule=one_of(("bicubic", "bilinear")),
        help="Resampling of the carried dream: bicubic (crisper) or bilinear (softer).",
    )
    # where the carried dream is warped, masked and held: None follows the network (its device on
    # CUDA, where a host round trip per frame holds up the lanes; OpenCV on the CPU)
    carry_on_device: bool | None = setting(
        None,
        rule=switch(),
        unset="auto",
        shown="on CUDA, off on CPU",
        help="Warp, mask and hold the carried dream on the network's device (speed, not recipe).",
    )
    # an image sequence carries no timing; a video's own rate is used and this must be unset
    fps: str | None = setting(
        None, rule=RATE, unset="the video's own", help="Frame rate of an image-sequence input, e.g. 24 or 24000/1001."
    )

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain data (the job plan stores it; its hash guards resumes)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("dream", "flow", "encoding")}
        return {
            **out,
            "dream": self.dream.to_dict(),
            "flow": {f.name: getattr(self.flow, f.name) for f in fields(self.flow)},
            "encoding": {f.name: getattr(self.encoding, f.name) for f in fields(self.encoding)},
        }

    @property
    def keyframe_steps(self) -> int:
        return self.dream.num_iterations if self.keyframe_iterations is None else self.keyframe_iterations

    @property
    def frame_steps(self) -> int:
        if self.frame_iterations is not None:
            return self.frame_iterations
        return max(1, self.keyframe_steps // 2) if self.keyframe_steps else 0  # 0: a passthrough

    def validate(self) -> RenderConfig:
        self.dream.validate()
        self.flow.validate()
        self.encoding.validate()
        check_fields(self)
        return self
