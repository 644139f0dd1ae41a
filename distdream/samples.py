"""Sample footage made on the fly: a camera panning and zooming over a real photo, as a video file.

The demo, the benchmark and the tests need video with real texture and real motion but must not
download or ship media; scikit-image ships a few photos, and a moving crop makes them footage.
:func:`write_clip` encodes any frames as such a clip (with a tone for audio, explicit timestamps
for variable rates, a rotation tag), the one place outside :mod:`distdream.video` that uses PyAV.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from . import storage
from .errors import VideoError
from .video import add_audio_stream, add_video_stream
from .video.colour import Colour, rgb_to_frame

__all__ = ["pan_frames", "pan_zoom", "sample_photo", "shot_frames", "write_clip"]

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def sample_photo(name: str = "astronaut") -> np.ndarray:
    """An RGB uint8 photo from ``skimage.data`` (astronaut, coffee, chelsea, rocket …)."""
    from skimage import data

    photo = getattr(data, name)()
    return np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]


def _pan_box(
    t: float, photo_width: int, photo_height: int, width: int, height: int
) -> tuple[float, float, float, float]:
    """The crop (left, top, right, bottom) of the photo that the pan shows at time ``t`` in [0, 1]."""
    cw = min(photo_width * 0.6 * (1.0 - 0.25 * t), photo_height * 0.9 * width / height)  # crop shrinks: zoom in
    ch = cw * height / width
    x0 = (photo_width - cw) * (0.1 + 0.8 * t)
    y0 = (photo_height - ch) * (0.3 + 0.3 * np.sin(np.pi * t))
    return x0, y0, x0 + cw, y0 + ch


def pan_frames(n: int, width: int, height: int, *, photo: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield ``n`` (height, width, 3) frames: a smooth pan with a slow zoom across ``photo``."""
    photo = sample_photo() if photo is None else photo
    ph, pw = photo.shape[:2]
    img = Image.fromarray(photo)
    for i in range(n):
        box = _pan_box(i / max(n - 1, 1), pw, ph, width, height)
        yield np.asarray(img.resize((width, height), Image.Resampling.BILINEAR, box=box))


def pan_zoom(width: int, height: int, *, photo: np.ndarray | None = None) -> float:
    """Frame pixels per photo pixel halfway through :func:`pan_frames`' pan (it zooms in by a third)."""
    photo = sample_photo() if photo is None else photo
    x0, _, x1, _ = _pan_box(0.5, photo.shape[1], photo.shape[0], width, height)
    return width / (x1 - x0)


def shot_frames(shots: int, frames_per_shot: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Yield ``shots`` pans of ``frames_per_shot`` frames each, over different photos in turn: a
    clip with a hard cut every ``frames_per_shot`` frames (for shot-aware chunking)."""
    for k in range(shots):
        photo = sample_photo(PHOTOS[k % len(PHOTOS)])
        if k >= len(PHOTOS):  # photos repeat: mirror them so no two shots are alike
            photo = np.ascontiguousarray(photo[:, ::-1])
        # the start of a 48-frame pan: a camera speed footage has, whatever the shot's length
        # (a whole pan squeezed into a few frames moves so fast that flow loses track of it)
        yield from itertools.islice(pan_frames(max(frames_per_shot, 48), width, height, photo=photo), frames_per_shot)


def write_clip(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    *,
    rate: Fraction = Fraction(25),
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    x264_params: str | None = None,
    audio: str | None = "aac",
    tone_hz: float = 440.0,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    colour: Colour | None = None,
) -> Path:
    """Encode RGB ``frames`` (as stored, not rotated) to ``path`` with an optional sine tone.

    ``codec``/``pix_fmt`` choose the encoder and pixel format (default: 4:2:0, 4:4:4 at odd sizes);
    ``colour`` the matrix and range the frames are converted with and the tags written (default:
    BT.601 below 720 lines, BT.709 from there, limited range).

    ``pts``/``time_base`` give explicit (e.g. variable-rate) timestamps; by default frames are
    evenly spaced at ``rate``. ``audio`` names an audio encoder (``aac``, ``libopus``, ``flac``)
    or is ``None``; the tone lasts exactly as long as the video. The container comes from the
    file extension.
    """
    path = Path(storage.check_writable(path, VideoError))
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    time_base = time_base or Fraction(1, 1) / Fraction(rate)
    stamps: list[int] = []
    with av.open(str(path), mode="w") as out:
        stream = add_video_stream(out, codec, Fraction(rate))
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p")
        colour = colour or Colour().resolved(width, height)
        _set_up(stream, colour, time_base, codec, crf, preset, x264_params, rotation)
        a_stream = None
        if audio:
            a_stream = add_audio_stream(out, audio, 48000)
            a_stream.layout = "stereo"
        for i, array in enumerate(itertools.chain([first], frames)):
            ts = pts[i] if pts is not None else i
            stamps.append(ts)
            frame = rgb_to_frame(np.ascontiguousarray(array), stream.pix_fmt, colour)
            frame.pts, frame.time_base = ts, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if a_stream is not None:
            step = stamps[-1] - stamps[-2] if len(stamps) > 1 else Fraction(1, 1) / (Fraction(rate) * time_base)
            seconds = float((stamps[-1] - stamps[0] + step) * time_base)
            _write_tone(out, a_stream, seconds, tone_hz)
    return path


def _set_up(
    stream: Any,
    colour: Colour,
    time_base: Fraction,
    codec: str,
    crf: int,
    preset: str,
    x264_params: str | None,
    rotation: int,
) -> None:
    """Tag a new video stream with its colour, time base, encoder options and rotation."""
    colour.tag(stream.codec_context)
    stream.codec_context.time_base = time_base
    options = {"crf": str(crf), "preset": preset} if codec in ("libx264", "libx265") else {}
    if x264_params:
        options["x264-params"] = x264_params
    stream.options = options
    if rotation:
        stream.set_display_rotation(rotation)


def _write_tone(out: Any, stream: Any, seconds: float, hz: float) -> None:
    rate = stream.codec_context.sample_rate
    total = int(round(seconds * rate))
    block = stream.codec_context.frame_size or 1024
    t = np.arange(total) / rate
    tone = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    fmt = stream.codec_context.format.name
    for start in range(0, total, block):
        chunk = np.ascontiguousarray(np.stack([tone[start : start + block]] * 2))  # (2, n) planar
        if fmt == "s16":  # packed 16-bit (flac)
            chunk = np.ascontiguousarray((chunk.T * 32767).astype(np.int16).reshape(1, -1))
        elif fmt == "s32":
            chunk = np.ascontiguousarray((chunk.T * 2**31 * 0.99).astype(np.int32).reshape(1, -1))
        elif fmt == "flt":
            chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
