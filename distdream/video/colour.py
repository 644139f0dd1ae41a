"""Colour that survives the round trip: the input's tags, and exact YUV ↔ RGB conversion.

A video's pixels mean something only with its tags: the matrix (BT.601, BT.709, BT.2020) and
range (limited "tv" 16–235, full "pc" 0–255) say how Y'CbCr codes become R'G'B', and primaries and
transfer say what those R'G'B' values mean. distdream reads all four from the input, converts
with the input's own matrix and range (not a fixed one), and writes all four to the output.

The conversion is done here rather than by swscale because swscale's is not invertible: a
Y'CbCr 4:2:0 frame taken to RGB and back shifts codes (measured on a photo: mean 0.08–0.87 codes,
up to 6, depending on matrix, range and precision). Here frames become float32 R'G'B' (1.0 is
full scale, nothing clamped, so out-of-gamut codes survive), chroma is upsampled by repetition and
downsampled by the box average of the same blocks, so an undreamed frame re-encodes to exactly
the codes it came from, at any bit depth. The dream itself works on those values; the transfer is
carried as it is (HDR PQ or HLG frames are dreamed in their coded values and tagged as they came).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import av
import numpy as np

from ..errors import VideoError

__all__ = ["Colour", "frame_to_rgb", "rgb_to_frame"]

# ISO/IEC 23091-2 code points (FFmpeg's AVCOL_* values), named as ffprobe names them.
PRIMARIES = {
    1: "bt709",
    2: "unknown",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
TRANSFERS = {
    1: "bt709",
    2: "unknown",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
MATRICES = {
    0: "gbr",
    1: "bt709",
    2: "unknown",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
}
RANGES = {0: "unknown", 1: "tv", 2: "pc"}
HDR_TRANSFERS = ("smpte2084", "arib-std-b67")

# (Kr, Kb) of each matrix the conversion supports; BT.601 is bt470bg / smpte170m.
_K = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020nc": (0.2627, 0.0593),
}


def _code(table: dict[int, str], name: str) -> int:
    return next(k for k, v in table.items() if v == name)


@dataclass(frozen=True)
class Colour:
    """A video's colour tags, as ffprobe names them (``unknown`` where the input says nothing)."""

    primaries: str = "unknown"
    transfer: str = "unknown"
    matrix: str = "unknown"
    range: str = "unknown"

    @classmethod
    def of(cls, frame: Any) -> Colour:
        """The tags a decoded frame carries (the decoder fills them from the stream and container)."""
        return cls(
            PRIMARIES.get(int(frame.color_primaries), "unknown"),
            TRANSFERS.get(int(frame.color_trc), "unknown"),
            MATRICES.get(int(frame.colorspace), "unknown"),
            RANGES.get(int(frame.color_range), "unknown"),
        )

    @classmethod
    def srgb(cls) -> Colour:
        """What an RGB image file means: BT.709 primaries, the sRGB curve, full range."""
        return cls("bt709", "iec61966-2-1", "gbr", "pc")

    def resolved(self, width: int, height: int) -> Colour:
        """Matrix and range decided where the input leaves them open, as players decide: BT.709 for
        HD sizes, BT.601 below; limited range. The output is tagged with what was used."""
        matrix = self.matrix
        if matrix == "unknown":
            matrix = "bt709" if width >= 1280 or height >= 720 else "smpte170m"
        return Colour(self.primaries, self.transfer, matrix, "tv" if self.range == "unknown" else self.range)

    @property
    def hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS

    def check(self, what: str) -> None:
        """:class:`VideoError` for a matrix the conversion cannot invert exactly."""
        if self.matrix not in _K and self.matrix not in ("gbr", "unknown"):
            raise VideoError(
                f"{what} uses the {self.matrix} colour matrix, which distdream cannot convert; "
                "convert it to BT.709 or BT.2020 first (e.g. ffmpeg -vf colorspace=bt709)"
            )

    def tag(self, target: Any) -> None:
        """Write the four tags onto a codec context or a frame (unknown stays unknown)."""
        target.color_primaries = _code(PRIMARIES, self.primaries)
        target.color_trc = _code(TRANSFERS, self.transfer)
        target.colorspace = _code(MATRICES, self.matrix)
        target.color_range = _code(RANGES, self.range)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _dtype(fmt: Any) -> np.dtype:
    bits = fmt.components[0].bits
    if bits <= 8:
        return np.dtype(np.uint8)
    return np.dtype(">u2" if fmt.name.endswith("be") else "<u2")


def _row_values(frame: Any, k: int, dtype: np.dtype) -> int:
    """Values in one row of plane ``k``: its width, times the channels a packed plane interleaves."""
    fmt, plane = frame.format, frame.planes[k]
    if sum(c.plane == k for c in fmt.components) > 1:  # packed: rgb24, rgb48, bgr0 (padded to 4)
        return plane.width * fmt.padded_bits_per_pixel // (8 * dtype.itemsize)
    return plane.width


def _plane(frame: Any, k: int, dtype: np.dtype) -> np.ndarray:
    plane = frame.planes[k]
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : _row_values(frame, k, dtype)]


def _scale(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma span, chroma centre, chroma span) in codes of ``bits``-bit video."""
    if full:
        top = float(2**bits - 1)
        return 0.0, top, float(2 ** (bits - 1)), top
    s = float(2 ** (bits - 8))
    return 16 * s, 219 * s, 128 * s, 224 * s


def _planar_yuv(fmt: Any) -> bool:
    return (
        not fmt.is_rgb
        and len(fmt.components) >= 3
        and fmt.name.startswith(("yuv", "yuvj"))
        and "p" in fmt.name[3:]
        and not fmt.name.startswith(("yuyv", "uyvy"))
    )


def frame_to_rgb(frame: Any, colour: Colour) -> np.ndarray:
    """A decoded frame as float32 (H, W, 3) R'G'B', 1.0 full scale, with ``colour``'s (resolved)
    matrix and range; out-of-gamut values are kept, not clamped."""
    fmt = frame.format
    if fmt.is_rgb or fmt.name.startswith(("pal8", "gray", "ya", "monob", "monow")):
        deep = max(c.bits for c in fmt.components) > 8
        array = frame.to_ndarray(format="rgb48le" if deep else "rgb24")  # a reordering: exact
        return array.astype(np.float32) / np.float32(65535.0 if deep else 255.0)
    if not _planar_yuv(fmt):  # packed or semi-planar (nv12 …): reorder into planes, no matrix applied
        deep = fmt.components[0].bits > 8
        frame = frame.reformat(format="yuv444p16le" if deep else "yuv444p")
        fmt = frame.format
    dtype = _dtype(fmt)
    bits = fmt.components[0].bits
    y0, ys, c0, cs = _scale(bits, colour.range == "pc" or fmt.name.startswith("yuvj"))
    h, w = frame.height, frame.width
    codes = np.empty((h, w, 3), np.float32)  # Y', Cb, Cr codes at full resolution
    codes[..., 0] = _plane(frame, 0, dtype)
    for k in (1, 2):
        c = _plane(frame, k, dtype)
        ry, rx = -(-h // c.shape[0]), -(-w // c.shape[1])  # the subsampling factors
        if ry > 1 or rx > 1:  # each chroma sample repeated over its block (one copy, by broadcasting)
            block = np.broadcast_to(c[:, None, :, None], (c.shape[0], ry, c.shape[1], rx))
            c = block.reshape(c.shape[0] * ry, c.shape[1] * rx)[:h, :w]
        codes[..., k] = c
    codes -= np.array([y0, c0, c0], np.float32)
    # codes → R'G'B' in one product: normalise, then the matrix's inverse
    to_rgb = np.linalg.inv(_matrix(colour.matrix)) @ np.diag([1 / ys, 1 / cs, 1 / cs])
    return codes @ to_rgb.T.astype(np.float32)


def _matrix(matrix: str) -> np.ndarray:
    """R'G'B' → (Y', Cb, Cr) in [0, 1] and [−½, ½], float64, for one of the supported matrices."""
    kr, kb = _K.get(matrix, _K["bt709"])
    kg = 1 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )


def _as_float(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / np.float32(255.0)
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / np.float32(65535.0)
    return rgb.astype(np.float32, copy=False)


def _box(c: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Average ``ry`` × ``rx`` blocks (edges padded by repetition): the inverse of repeating."""
    if ry == 1 and rx == 1:
        return c
    h, w = c.shape
    padded = np.pad(c, ((0, -h % ry), (0, -w % rx)), mode="edge")
    return padded.reshape(padded.shape[0] // ry, ry, padded.shape[1] // rx, rx).mean(axis=(1, 3))


def _fill(frame: Any, k: int, codes: np.ndarray, dtype: np.dtype) -> None:
    plane = frame.planes[k]
    width = _row_values(frame, k, dtype)
    if plane.line_size == width * dtype.itemsize:  # no row padding: the codes are the plane
        plane.update(np.ascontiguousarray(codes[: plane.height, :width]).tobytes())
        return
    rows = np.zeros((plane.height, plane.line_size // dtype.itemsize), dtype=dtype)
    rows[:, :width] = codes[: plane.height, :width]
    plane.update(rows.tobytes())


def _quantize(values: np.ndarray, top: int, dtype: np.dtype) -> np.ndarray:
    rounded = np.rint(values)
    return np.clip(rounded, 0, top, out=rounded).astype(dtype)


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, colour: Colour) -> Any:
    """Upright or stored (H, W, 3) R'G'B' (float32 1.0 full scale, or uint8/uint16) as a frame of
    ``pix_fmt``, converted with ``colour``'s matrix and range and tagged with all four tags."""
    fmt = av.VideoFormat(pix_fmt)
    values = _as_float(rgb)
    h, w = values.shape[:2]
    frame = av.VideoFrame(w, h, pix_fmt)
    dtype = _dtype(fmt)
    bits = fmt.components[0].bits
    top = 2**bits - 1
    if fmt.is_rgb:
        planes = {0: 1, 1: 2, 2: 0} if pix_fmt.startswith("gbr") else None  # planar RGB stores G, B, R
        if planes is None:  # packed RGB (rgb24, rgb48be/le, bgr0): one plane, channels interleaved
            codes = _quantize(values * top, top, dtype)
            if pix_fmt == "bgr0":
                codes = np.concatenate([codes[..., ::-1], np.zeros_like(codes[..., :1])], axis=-1)
            _fill(frame, 0, codes.reshape(h, -1), dtype)
        else:
            for k, ch in planes.items():
                _fill(frame, k, _quantize(values[..., ch] * top, top, dtype), dtype)
    else:
        y0, ys, c0, cs = _scale(bits, colour.range == "pc" or pix_fmt.startswith("yuvj"))
        to_codes = (np.diag([ys, cs, cs]) @ _matrix(colour.matrix)).T.astype(np.float32)
        codes = values @ to_codes  # (H, W, 3) Y', Cb, Cr codes, offsets still to add
        _fill(frame, 0, _quantize(codes[..., 0] + np.float32(y0), top, dtype), dtype)
        for k in (1, 2):
            plane = frame.planes[k]
            c = _box(codes[..., k], -(-h // plane.height), -(-w // plane.width))
            _fill(frame, k, _quantize(c + np.float32(c0), top, dtype), dtype)
    colour.tag(frame)
    return frame
