"""What a job's output is encoded as: codec, pixel format, encoder options, colour tags, container.

Decided once from the user's :class:`~distdream.config.Encoding` and the input's index, the same
way on every worker, so every piece of a job matches and the pieces join by remuxing:

- **pixel format**: the input's chroma layout and bit depth where the codec has them (10-bit in,
  10-bit out), unless ``--pix-fmt`` says otherwise; odd frame sizes go 4:4:4 (4:2:0 and 4:2:2
  cannot hold them). ProRes is always 10-bit: 4:2:2 (HQ) or, from 4:4:4 and RGB input, 4:4:4 (4444).
- **colour**: the input's primaries, transfer, matrix and range (resolved where it says nothing,
  :meth:`Colour.resolved`); RGB image files are sRGB.
- **codec options**: x264/x265 quality (``crf``; 0 is lossless on both) and preset; ProRes
  profile; FFV1 version 3 with slice CRCs, every frame intra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import av

from ..config import Encoding
from ..errors import VideoError
from .colour import Colour
from .naming import is_pattern

__all__ = ["CODECS", "Format", "available_codecs", "format_for", "output_format"]

# distdream's codec names → (FFmpeg encoder, segment container, segment suffix)
CODECS = {
    "h264": ("libx264", "mp4", ".mp4"),
    "h265": ("libx265", "mp4", ".mp4"),
    "prores": ("prores_ks", "mov", ".mov"),
    "ffv1": ("ffv1", "matroska", ".mkv"),
    "png": ("png", "image2", ".png"),
    "tiff": ("tiff", "image2", ".tif"),
}
IMAGE_CODECS = ("png", "tiff")
PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "4444xq": 5}


@dataclass(frozen=True)
class Format:
    """A resolved output format: every piece of a job is written with exactly this."""

    codec: str  # distdream's name (h264, h265, prores, ffv1, png, tiff)
    pix_fmt: str
    colour: Colour
    options: dict[str, str] = field(default_factory=dict)

    @property
    def encoder(self) -> str:
        return CODECS[self.codec][0]

    @property
    def container(self) -> str:
        return CODECS[self.codec][1]

    @property
    def suffix(self) -> str:
        return CODECS[self.codec][2]

    @property
    def bits(self) -> int:
        return bit_depth(self.pix_fmt)


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of a pixel format (the deepest component's)."""
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def available_codecs() -> list[str]:
    """distdream's codecs that this PyAV's FFmpeg can encode."""
    return [name for name, (encoder, _, _) in CODECS.items() if encoder in av.codecs_available]


def _layout(pix_fmt: str) -> tuple[bool, str, int]:
    """(is RGB, chroma layout 420/422/444, bits) of a pixel format."""
    fmt = av.VideoFormat(pix_fmt)
    bits = bit_depth(pix_fmt)
    if fmt.is_rgb or pix_fmt.startswith(("gray", "pal8", "ya", "monob", "monow")):
        return True, "444", bits
    probe = av.VideoFrame(16, 16, pix_fmt)
    if len(probe.planes) < 2:  # packed 4:2:2 (yuyv422 …) and the like
        return False, "422", bits
    sub = {(16, 16): "444", (8, 16): "422", (8, 8): "420", (16, 8): "420"}
    chroma = probe.planes[1]
    return False, sub.get((chroma.width, chroma.height), "420"), bits


def _deepen(bits: int, choices: tuple[int, ...]) -> int:
    """The smallest depth in ``choices`` that holds ``bits``, else the deepest."""
    return next((b for b in choices if b >= bits), choices[-1])


def _yuv(layout: str, bits: int) -> str:
    return f"yuv{layout}p" + ("" if bits == 8 else f"{bits}le")


def _auto_pix_fmt(codec: str, rgb: bool, layout: str, bits: int, odd: bool, lossless: bool) -> str:
    if codec in IMAGE_CODECS:
        return "rgb24" if bits <= 8 else ("rgb48be" if codec == "png" else "rgb48le")
    if codec == "prores":
        return "yuv444p10le" if rgb or layout == "444" else "yuv422p10le"
    if codec == "ffv1":
        if rgb:  # FFV1 has no 8- or 16-bit planar RGB; packed 8-bit, or planar up to 14 bits
            return "bgr0" if bits <= 8 else "gbrp14le" if bits > 12 else f"gbrp{_deepen(bits, (10, 12))}le"
        return _yuv(layout, _deepen(bits, (8, 10, 12, 16)))
    # x264 / x265: an RGB source becomes 4:2:0 (what players expect), or 4:4:4 when lossless was
    # asked for (4:2:0 would halve its colour resolution); an unusual layout becomes 4:2:0
    layout = ("444" if lossless else "420") if rgb else layout if layout in ("420", "422", "444") else "420"
    if odd:
        layout = "444"
    return _yuv(layout, _deepen(bits, (8, 10) if codec == "h264" else (8, 10, 12)))


def _options(codec: str, encoding: Encoding, pix_fmt: str) -> dict[str, str]:
    if codec in ("h264", "h265"):
        # x264's crf 0 is lossless at 8 bits only (at 10 bits its scale is offset); qp 0 is at any depth
        options = {"qp" if encoding.crf == 0 else "crf": str(encoding.crf), "preset": encoding.preset}
        if codec == "h265":  # x265's crf 0 is not lossless; its own switch is
            options["x265-params"] = "log-level=error" + (":lossless=1" if encoding.crf == 0 else "")
        return options
    if codec == "prores":
        profile = encoding.prores_profile
        if profile == "auto":
            profile = "4444" if pix_fmt.startswith("yuv444") else "hq"
        return {"profile": str(PRORES_PROFILES[profile]), "vendor": "apl0"}
    if codec == "ffv1":
        return {"level": "3", "slicecrc": "1", "g": "1"}
    return {}


def output_format(encoding: Encoding, source_pix_fmt: str, colour: Colour, width: int, height: int) -> Format:
    """The format every piece of a job is written in (see the module's rules), from the source's
    pixel format, its (resolved) colour and its stored size; codec ``auto`` is H.264."""
    codec = "h264" if encoding.codec == "auto" else encoding.codec
    if codec not in available_codecs():
        raise VideoError(f"codec {codec} is not in this FFmpeg build; it has {', '.join(available_codecs())}")
    rgb, layout, bits = _layout(source_pix_fmt)
    pix_fmt = encoding.pix_fmt or _auto_pix_fmt(
        codec, rgb, layout, bits, width % 2 == 1 or height % 2 == 1, encoding.crf == 0
    )
    _check_pix_fmt(codec, pix_fmt, width, height)
    if av.VideoFormat(pix_fmt).is_rgb:  # RGB files and planar RGB video: no matrix, full range
        colour = Colour(colour.primaries, colour.transfer, "gbr", "pc")
    elif colour.matrix == "gbr":  # RGB in, Y'CbCr out: BT.709, limited range
        colour = Colour(colour.primaries, colour.transfer, "bt709", "tv")
    elif codec == "prores":  # ProRes is limited range by definition
        colour = Colour(colour.primaries, colour.transfer, colour.matrix, "tv")
    return Format(codec, pix_fmt, colour, _options(codec, encoding, pix_fmt))


def pixel_formats(codec: str) -> list[str]:
    """The pixel formats distdream's ``codec`` encodes in this FFmpeg build."""
    return [f.name for f in av.codec.Codec(CODECS[codec][0], "w").video_formats or ()]


def _check_pix_fmt(codec: str, pix_fmt: str, width: int, height: int) -> None:
    supported = pixel_formats(codec)
    if pix_fmt not in supported:
        raise VideoError(f"--pix-fmt {pix_fmt} is not one {codec} encodes; it takes {', '.join(supported)}")
    if not _convertible(pix_fmt):
        raise VideoError(f"--pix-fmt {pix_fmt} is not a planar Y'CbCr or RGB format distdream converts to")
    rgb, layout, _ = _layout(pix_fmt)
    if not rgb and layout != "444" and (width % 2 or height % 2) and codec in ("h264", "h265"):
        raise VideoError(
            f"--pix-fmt {pix_fmt} cannot hold an odd frame size ({width}×{height}); use a 4:4:4 format such as yuv444p"
        )


def _convertible(pix_fmt: str) -> bool:
    name = pix_fmt
    return (
        name in ("rgb24", "rgb48le", "rgb48be", "bgr0")
        or name.startswith("gbrp")
        or (name.startswith(("yuv4", "yuvj4")) and "a" not in name[3 : name.index("p")])
    )


def format_for(encoding: Encoding, index: Any) -> Format:
    """The format a job on ``index`` writes with ``encoding`` (stored, un-rotated size)."""
    w, h = (index.height, index.width) if index.rotation in (90, 270) else (index.width, index.height)
    return output_format(encoding, index.pix_fmt, index.working_colour, w, h)


def resolve_output(output: str, encoding: Encoding, index: Any) -> Format:
    """The format of a job writing ``output``: an image sequence's codec comes from its suffix
    (``.png``, ``.tif``), a video's from ``encoding`` (auto: H.264). :class:`VideoError` names
    what does not fit."""
    if is_pattern(output):
        suffix = os.path.splitext(output)[1].lower()
        codec = {".png": "png", ".tif": "tiff", ".tiff": "tiff"}.get(suffix)
        if codec is None:
            raise VideoError(
                f"output {output}: an image sequence is written as .png or .tif, not {suffix or 'no suffix'}"
            )
        if "://" in output:
            raise VideoError(f"output {output}: image sequences are written to a local or shared filesystem, not a URI")
        if encoding.codec not in ("auto", codec):
            raise VideoError(
                f"--codec {encoding.codec} does not apply to output {output}, an image sequence of {codec} files"
            )
    else:
        codec = "h264" if encoding.codec == "auto" else encoding.codec
        if codec in IMAGE_CODECS:
            raise VideoError(
                f"--codec {codec} writes an image sequence: name the output with a pattern such as "
                f"out/dream.%05d.{'png' if codec == 'png' else 'tif'}"
            )
    try:
        return format_for(replace(encoding, codec=codec), index)
    except VideoError as exc:
        raise VideoError(f"output {output}: {exc}") from None


def describe(fmt: Format) -> dict[str, Any]:
    return {"codec": fmt.codec, "pix_fmt": fmt.pix_fmt, **fmt.colour.to_dict(), "options": dict(fmt.options)}
