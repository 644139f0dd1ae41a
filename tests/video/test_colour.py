"""Colour survives the round trip: exact Y'CbCr ↔ RGB conversion, tags in = tags out, and a
zero-dream render that returns its input (exactly with a lossless codec)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from distdream.config import DreamConfig, Encoding, RenderConfig
from distdream.errors import VideoError
from distdream.samples import pan_frames, write_clip
from distdream.video import Colour, SegmentWriter, format_for, output_format, probe, read_frames
from distdream.video.colour import _dtype, _plane, frame_to_rgb, rgb_to_frame
from tests.media import render_here

BT601_TV = Colour("smpte170m", "smpte170m", "smpte170m", "tv")
BT709_PC = Colour("bt709", "bt709", "bt709", "pc")
BT709_TV = Colour("bt709", "bt709", "bt709", "tv")
BT601_PC = Colour("bt470bg", "gamma28", "bt470bg", "pc")
INPUTS = [("yuv420p", BT601_TV), ("yuv420p", BT709_PC), ("yuv420p10le", BT709_TV), ("yuv422p10le", BT601_PC)]
PASS = RenderConfig(dream=DreamConfig(num_iterations=0))


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    return [_plane(frame, k, _dtype(frame.format)).astype(np.int64) for k in range(len(frame.planes))]


def coded(path: Path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as container:
        return [planes(f) for f in container.decode(video=0)]


@pytest.mark.parametrize(
    "pix_fmt",
    ["yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuv420p10le", "yuv444p12le", "gbrp10le", "rgb48be", "bgr0"],
)
@pytest.mark.parametrize("colour", [BT709_TV, BT601_PC], ids=["709tv", "601pc"])
def test_codes_survive_rgb_and_back(pix_fmt: str, colour: Colour) -> None:
    rng = np.random.default_rng(3)
    h, w = (64, 96) if pix_fmt.startswith("yuv4") and "444" not in pix_fmt else (65, 97)
    source = rgb_to_frame(rng.random((h, w, 3), dtype=np.float32), pix_fmt, colour)  # random codes, edges
    rgb = frame_to_rgb(source, colour)
    back = rgb_to_frame(rgb, pix_fmt, colour)
    assert all(np.array_equal(a, b) for a, b in zip(planes(source), planes(back)))
    if pix_fmt in ("rgb48be", "bgr0"):  # packed: every channel of every pixel, as FFmpeg reads it
        assert np.array_equal(source.to_ndarray(format="rgb48le"), back.to_ndarray(format="rgb48le"))


def test_the_conversion_uses_the_tagged_matrix_and_range() -> None:
    grey_red = np.zeros((16, 16, 3), np.float32)
    grey_red[..., 0] = 0.8
    codes = {c: planes(rgb_to_frame(grey_red, "yuv444p", c))[0][0, 0] for c in (BT709_TV, BT601_TV, BT709_PC)}
    assert codes[BT709_TV] == round(16 + 219 * 0.2126 * 0.8)  # luma of red: 0.2126 (BT.709) …
    assert codes[BT601_TV] == round(16 + 219 * 0.299 * 0.8)  # … 0.299 (BT.601)
    assert codes[BT709_PC] == round(255 * 0.2126 * 0.8)  # full range: no 16 offset
    frame = rgb_to_frame(grey_red, "yuv444p", BT601_TV)
    assert np.abs(frame_to_rgb(frame, BT601_TV) - grey_red).max() < 0.01
    assert np.abs(frame_to_rgb(frame, BT709_TV) - grey_red).max() > 0.03  # the wrong matrix shifts it


@pytest.mark.parametrize("pix_fmt,colour", INPUTS, ids=["601tv8", "709pc8", "709tv10", "601pc10-422"])
@pytest.mark.parametrize("codec,crf", [("ffv1", 18), ("h264", 0), ("h265", 0), ("h264", 18), ("prores", 18)])
def test_a_zero_dream_render_returns_its_input(
    tmp_path: Path, pix_fmt: str, colour: Colour, codec: str, crf: int
) -> None:
    clip = write_clip(
        tmp_path / "in.mkv", pan_frames(5, 96, 64), codec="ffv1", pix_fmt=pix_fmt, colour=colour, audio=None
    )
    config = RenderConfig(dream=DreamConfig(num_iterations=0), encoding=Encoding(codec=codec, crf=crf))
    out = render_here(clip, tmp_path / "out.mkv", config).output
    got, want = probe(out), probe(clip)
    assert (got.colour.primaries, got.colour.transfer, got.colour.matrix) == (
        colour.primaries,
        colour.transfer,
        colour.matrix,
    )
    assert got.colour.range == ("tv" if codec == "prores" else colour.range)  # ProRes is limited range
    # 10-bit in, 10-bit out (x264 names full-range 8-bit 4:2:0 yuvj420p)
    assert got.pix_fmt.replace("yuvj", "yuv") == ("yuv422p10le" if codec == "prores" else pix_fmt)
    a = np.stack(list(read_frames(clip, dtype=np.float32))) * 255
    b = np.stack(list(read_frames(out, dtype=np.float32))) * 255
    if codec == "ffv1" or crf == 0:  # lossless: every code, so under 1 level trivially
        assert all(np.array_equal(x, y) for fx, fy in zip(coded(clip), coded(out), strict=True) for x, y in zip(fx, fy))
        return
    # lossy: no shift of any channel, and no error beyond the codec's own on the same frames
    assert np.abs((b - a).mean(axis=(0, 1, 2))).max() < 0.5
    fmt = format_for(config.encoding, want)
    with SegmentWriter(
        tmp_path / f"direct{fmt.suffix}", width=want.width, height=want.height, rate=want.average_rate, fmt=fmt
    ) as writer:
        for frame in read_frames(clip, dtype=np.float32):
            writer.write(frame)
    direct = np.stack(list(read_frames(writer.path, dtype=np.float32))) * 255
    assert np.abs(b - a).mean() <= np.abs(direct - a).mean() * 1.02 + 0.05


def test_hdr_transfer_is_carried_through(tmp_path: Path) -> None:
    hlg = Colour("bt2020", "arib-std-b67", "bt2020nc", "tv")
    clip = write_clip(
        tmp_path / "hlg.mkv", pan_frames(3, 64, 48), codec="ffv1", pix_fmt="yuv420p10le", colour=hlg, audio=None
    )
    out = render_here(clip, tmp_path / "out.mp4", PASS).output
    got = probe(out)
    assert got.colour == hlg and got.pix_fmt == "yuv420p10le"


def test_a_codec_or_pixel_format_the_build_lacks_is_refused_with_what_it_has(tmp_path: Path) -> None:
    from distdream.config import Encoding

    with pytest.raises(VideoError, match="prores encodes; it takes yuv422p10le"):
        output_format(Encoding(codec="prores", pix_fmt="yuv420p"), "yuv420p", BT709_TV, 64, 48)
    with pytest.raises(VideoError, match="odd frame size"):
        output_format(Encoding(pix_fmt="yuv420p"), "yuv420p", BT709_TV, 65, 48)
    assert output_format(Encoding(), "yuv420p", BT709_TV, 65, 48).pix_fmt == "yuv444p"


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_prores_4444_stays_4444_after_the_join(tmp_path: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / "in.mkv", pan_frames(3, 64, 48), codec="ffv1", pix_fmt="yuv444p", audio=None)
    out = render_here(
        clip,
        tmp_path / f"out{suffix}",
        RenderConfig(dream=DreamConfig(num_iterations=0), encoding=Encoding(codec="prores")),
    ).output
    with av.open(str(out)) as container:
        context = container.streams.video[0].codec_context
        assert context.codec_tag == "ap4h" and context.profile == "4444"  # not relabelled 422 HQ by the remux
    with pytest.raises(VideoError, match=r"not a container that takes ProRes video .*use \.mov or \.mkv"):
        render_here(clip, tmp_path / "out.mp4", RenderConfig(encoding=Encoding(codec="prores")))


def test_a_matrix_that_cannot_be_inverted_is_refused_before_any_work(tmp_path: Path) -> None:
    ycgco = Colour("bt709", "bt709", "ycgco", "tv")
    clip = write_clip(tmp_path / "in.mkv", pan_frames(2, 64, 48), codec="ffv1", colour=ycgco, audio=None)
    assert probe(clip).colour.matrix == "ycgco"  # probing still reports it
    with pytest.raises(VideoError, match="ycgco colour matrix, which distdream cannot convert; convert it"):
        render_here(clip, tmp_path / "out.mp4", PASS)
    assert not (tmp_path / "out.mp4").exists()
