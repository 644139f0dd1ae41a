"""Video I/O on real encoded clips: index, exact range reads, segments, lossless joins, bad files."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from distdream.errors import ConfigError, VideoError
from distdream.samples import write_clip
from distdream.video import (
    Colour,
    Encoding,
    SegmentWriter,
    VideoIndex,
    concat,
    probe,
    read_frames,
)
from distdream.video.colour import frame_to_rgb
from tests.media import BFRAMES_GOP, pan_frames

N = 60
GOP = 12


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MP4 and MKV, odd and even sizes, AAC/Opus/none, constant and variable rate; all with B-frames."""
    d = tmp_path_factory.mktemp("clips")
    odd = pan_frames(N, 161, 121)
    even = pan_frames(N, 160, 90)
    params = BFRAMES_GOP.format(gop=GOP)
    # variable rate: 40 ms frames with every third frame held for 80 ms, in a 1 ms time base
    vfr_pts = np.cumsum([0] + [80 if i % 3 == 0 else 40 for i in range(N - 1)]).tolist()
    return {
        "mp4": write_clip(d / "odd_aac.mp4", odd, x264_params=params, audio="aac"),
        "mkv": write_clip(d / "even_opus.mkv", even, x264_params=params, audio="libopus"),
        "vfr_mp4": write_clip(d / "vfr.mp4", even, pts=vfr_pts, time_base=Fraction(1, 1000), x264_params=params),
        "vfr_mkv": write_clip(
            d / "vfr.mkv", odd, pts=vfr_pts, time_base=Fraction(1, 1000), x264_params=params, audio=None
        ),
        "silent": write_clip(d / "silent.mp4", even[:20], x264_params=params, audio=None),
    }


def sequential(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Reference: every frame by a plain sequential decode, with its pts."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))

    def rgb(f: av.VideoFrame) -> np.ndarray:  # the library's conversion, with the frame's own tags
        values = frame_to_rgb(f, Colour.of(f).resolved(f.width, f.height))
        return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)

    return [rgb(f) for f in frames], [int(f.pts) for f in frames]


def audio_seconds(path: Path) -> float:
    """Duration of the first audio stream, from its packets (containers disagree on metadata)."""
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(c.streams.audio[0]) if p.size and p.pts is not None]
    start = min(p.pts * p.time_base for p in packets)
    end = max((p.pts + (p.duration or 0)) * p.time_base for p in packets)
    return float(end - start)


# --- probe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mp4", "mkv", "vfr_mp4", "vfr_mkv"])
def test_probe_counts_exactly_and_indexes_timestamps(clips: dict[str, Path], name: str) -> None:
    index = probe(clips[name])
    frames, pts = sequential(clips[name])
    assert index.frame_count == len(frames) == N
    assert index.pts.tolist() == pts  # sorted presentation timestamps, frame by frame
    assert (index.width, index.height) == (frames[0].shape[1], frames[0].shape[0])
    assert index.keyframes.tolist() == list(range(0, N, GOP))
    assert index.codec == "h264" and index.rotation == 0


def test_probe_reads_what_containers_do_not_say(clips: dict[str, Path]) -> None:
    with av.open(str(clips["mkv"])) as c:
        assert c.streams.video[0].frames == 0  # MKV stores no frame count: counting is on us
    mkv = probe(clips["mkv"])
    assert (mkv.width, mkv.height, mkv.pix_fmt) == (160, 90, "yuv420p")
    assert [a.codec for a in mkv.audio] == ["opus"] and mkv.audio[0].channels == 2
    mp4 = probe(clips["mp4"])
    assert (mp4.width, mp4.height, mp4.pix_fmt) == (161, 121, "yuv444p")
    assert mp4.average_rate == 25 and mp4.duration == pytest.approx(N / 25)
    assert [a.codec for a in mp4.audio] == ["aac"] and probe(clips["silent"]).audio == ()


def test_index_round_trips_through_json_and_stays_small(clips: dict[str, Path]) -> None:
    for name in ("mp4", "vfr_mkv"):
        index = probe(clips[name])
        text = json.dumps(index.to_dict())
        again = VideoIndex.from_dict(json.loads(text))
        assert again == index and again.pts.tolist() == index.pts.tolist()
    two_hours = VideoIndex(
        path="x",
        stream_index=0,
        codec="h264",
        width=1920,
        height=1080,
        rotation=0,
        pix_fmt="yuv420p",
        time_base=Fraction(1, 90000),
        average_rate=Fraction(60000, 1001),
        pts=np.arange(431_568, dtype=np.int64) * 1501,
        keyframes=np.arange(0, 431_568, 250, dtype=np.int64),
    )
    assert len(json.dumps(two_hours.to_dict())) < 20_000  # constant rate: deltas compress to nothing
    jitter = np.random.default_rng(0).integers(1490, 1510, size=431_568)
    vfr = VideoIndex(**{**vars(two_hours), "pts": np.cumsum(jitter).astype(np.int64)})
    assert len(json.dumps(vfr.to_dict())) < 1_000_000  # jittery variable rate: still well under 1 MB


# --- range reads ------------------------------------------------------------------------------


RANGES = [(0, 5), (N - 5, N), (13, 20), (5, 50), (30, 31), (GOP, GOP + 1), (GOP - 1, GOP + 2), (0, N)]


@pytest.mark.parametrize("name", ["mp4", "mkv", "vfr_mkv"])
def test_range_reads_equal_sequential_decode(clips: dict[str, Path], name: str) -> None:
    frames, _ = sequential(clips[name])
    index = probe(clips[name])
    for start, end in RANGES:
        got = list(read_frames(clips[name], start, end, index=index))
        assert len(got) == end - start, (start, end)
        for i, frame in enumerate(got):
            assert np.array_equal(frame, frames[start + i]), (name, start, end, i)
    assert list(read_frames(clips[name], 7, 7, index=index)) == []
    with pytest.raises(VideoError, match="outside"):
        list(read_frames(clips[name], 50, N + 1, index=index))


def test_range_read_stops_at_the_end_of_the_range(clips: dict[str, Path], tmp_path: Path) -> None:
    # Damage the file's second half: a range read in the first half must not touch it.
    data = bytearray(clips["mp4"].read_bytes())
    cut = int(len(data) * 0.55)
    data[cut : cut + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    index = probe(damaged)  # demux-only: the index is intact
    frames, _ = sequential(clips["mp4"])
    head = list(read_frames(damaged, 0, 10, index=index))
    assert all(np.array_equal(a, b) for a, b in zip(head, frames[:10], strict=True))
    with pytest.raises(VideoError, match=r"failed at frame \d+"):
        list(read_frames(damaged, 0, N, index=index))


# --- segments and joining ---------------------------------------------------------------------


def encode_segments(frames: list[np.ndarray], bounds: list[int], d: Path, index: VideoIndex) -> list[Path]:
    paths = []
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        with SegmentWriter(
            d / f"{k:05d}.mp4",
            width=index.width,
            height=index.height,
            rate=index.average_rate,
            encoding=Encoding(crf=16, preset="veryfast"),
            rotation=index.rotation,
        ) as w:
            for frame in frames[a:b]:
                w.write(frame)
        paths.append(w.path)
    return paths


@pytest.mark.parametrize(("name", "ext"), [("mp4", ".mp4"), ("mkv", ".mkv"), ("vfr_mp4", ".mp4"), ("vfr_mkv", ".mkv")])
def test_three_segments_join_losslessly_with_input_timing_and_audio(
    clips: dict[str, Path], tmp_path: Path, name: str, ext: str
) -> None:
    index = probe(clips[name])
    frames = list(read_frames(clips[name], index=index))
    segments = encode_segments(frames, [0, 17, 41, N], tmp_path, index)
    for seg in segments:
        with av.open(str(seg)) as c:
            assert next(p for p in c.demux(video=0) if p.size).is_keyframe  # starts on an IDR frame
    out = concat(segments, tmp_path / f"joined{ext}", index)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp left
    joined = probe(out)
    assert joined.frame_count == N and (joined.width, joined.height) == (index.width, index.height)
    # the joined frames are exactly the segments' frames: packets were copied, not re-encoded
    parts = [f for seg in segments for f in read_frames(seg)]
    for a, b in zip(read_frames(out, index=joined), parts, strict=True):
        assert np.array_equal(a, b)
    # every frame keeps the input's presentation time, variable rate included
    assert joined.time_base == index.time_base and joined.pts.tolist() == index.pts.tolist()
    assert {0, 17, 41} <= set(joined.keyframes.tolist())
    if index.audio:
        assert [a.codec for a in joined.audio] == [a.codec for a in index.audio]
        assert audio_seconds(out) == pytest.approx(index.duration, abs=1 / float(index.average_rate))


def test_joined_output_interleaves_audio_and_video(clips: dict[str, Path], tmp_path: Path) -> None:
    index = probe(clips["mp4"])
    frames = list(read_frames(clips["mp4"], index=index))
    out = concat(encode_segments(frames, [0, 30, N], tmp_path, index), tmp_path / "out.mp4", index)
    with av.open(str(out)) as c:
        order = [
            (p.stream.type, float((p.dts if p.dts is not None else p.pts) * p.time_base)) for p in c.demux() if p.size
        ]
    kinds = [k for k, _ in order]
    switches = sum(1 for a, b in zip(kinds, kinds[1:]) if a != b)
    assert switches > 4  # interleaved, not all video then all audio
    video_dts = [t for k, t in order if k == "video"]
    assert video_dts == sorted(video_dts) and len(set(video_dts)) == len(video_dts)


def test_concat_refuses_missing_frames_and_mismatched_segments(clips: dict[str, Path], tmp_path: Path) -> None:
    index = probe(clips["mkv"])
    frames = list(read_frames(clips["mkv"], index=index))
    segments = encode_segments(frames, [0, 20, 40, N], tmp_path, index)
    with pytest.raises(VideoError, match="40 frames.*60"):
        concat(segments[:2], tmp_path / "short.mp4", index)
    small = [f[:, :-2] for f in frames[40:]]
    odd = tmp_path / "odd.mp4"
    with SegmentWriter(odd, width=158, height=90, rate=index.average_rate) as w:
        for f in small:
            w.write(np.ascontiguousarray(f))
    with pytest.raises(VideoError, match="other settings"):
        concat([*segments[:2], odd], tmp_path / "mixed.mp4", index)
    assert not (tmp_path / "short.mp4").exists() and not (tmp_path / "mixed.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_segment_writer_is_atomic_and_checks_frames(tmp_path: Path) -> None:
    target = tmp_path / "seg.mp4"
    with pytest.raises(RuntimeError):
        with SegmentWriter(target, width=64, height=48, rate=Fraction(25)) as w:
            w.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("worker died mid-segment")
    assert list(tmp_path.iterdir()) == []  # neither the segment nor its temp file
    with SegmentWriter(target, width=64, height=48, rate=Fraction(25)) as w:
        with pytest.raises(VideoError, match="takes"):
            w.write(np.zeros((48, 63, 3), np.uint8))
        w.write(np.zeros((48, 64, 3), np.uint8))
    assert probe(target).frame_count == 1
    with pytest.raises(ConfigError, match="preset"):
        SegmentWriter(tmp_path / "x.mp4", width=8, height=8, rate=Fraction(25), encoding=Encoding(preset="warp"))


def test_rotation_is_read_upright_and_kept_on_output(tmp_path: Path) -> None:
    stored = pan_frames(12, 96, 64)  # landscape as stored; the player turns it a quarter
    clip = write_clip(tmp_path / "phone.mp4", stored, rotation=90, audio=None, crf=10)
    index = probe(clip)
    assert index.rotation == 90 and (index.width, index.height) == (64, 96)
    upright = list(read_frames(clip, index=index))
    assert upright[0].shape == (96, 64, 3)
    decoded, _ = sequential(clip)
    assert np.array_equal(upright[3], np.rot90(decoded[3]))
    seg_dir = tmp_path / "segs"
    seg_dir.mkdir()
    out = concat(encode_segments(upright, [0, 6, 12], seg_dir, index), tmp_path / "out.mp4", index)
    again = probe(out)
    assert again.rotation == 90 and (again.width, again.height) == (64, 96)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).width == 96  # stored in the input's layout


# --- bad input --------------------------------------------------------------------------------


def test_bad_video_files(tmp_path: Path, clips: dict[str, Path]) -> None:
    with pytest.raises(VideoError, match="does not exist"):
        probe(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoError, match="empty"):
        probe(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="not a readable video"):
        probe(text)


def test_truncated_files(tmp_path: Path, clips: dict[str, Path]) -> None:
    data = clips["mkv"].read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"truncated.*after frame \d+"):
        probe(cut)
    data = clips["mp4"].read_bytes()
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated"):
        probe(cut_mp4)


def test_audio_only_and_undecodable_video(tmp_path: Path) -> None:
    from fractions import Fraction as F

    audio_only = tmp_path / "song.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "stereo"
        silence = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        silence.sample_rate = 48000
        for i in range(20):
            silence.pts = i * 1024
            for p in s.encode(silence):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoError, match="no video stream.*audio"):
        probe(audio_only)
    garbage = tmp_path / "garbage.mp4"
    with av.open(str(garbage), "w") as c:
        s = c.add_stream("h264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
        for i in range(10):
            p = av.Packet(np.random.default_rng(i).integers(0, 256, 500, dtype=np.uint8).tobytes())
            p.stream, p.pts, p.dts, p.time_base = s, i, i, F(1, 25)
            p.is_keyframe = True
            c.mux(p)
    with pytest.raises(VideoError, match="no decodable video frames|no frames"):
        probe(garbage)


def test_missing_output_directory(tmp_path: Path, clips: dict[str, Path]) -> None:
    index = probe(clips["silent"])
    with pytest.raises(VideoError, match="does not exist"):
        SegmentWriter(tmp_path / "nope" / "seg.mp4", width=8, height=8, rate=Fraction(25))
    with pytest.raises(VideoError, match="does not exist"):
        concat([clips["silent"]], tmp_path / "nope" / "out.mp4", index)


def test_a_stream_of_the_wrong_kind_is_refused_by_name(tmp_path: Path) -> None:
    import av

    from distdream.video import add_audio_stream, add_video_stream

    with av.open(str(tmp_path / "x.mkv"), mode="w") as out:
        with pytest.raises(VideoError, match="aac is not a video encoder"):
            add_video_stream(out, "aac", Fraction(25))
        with pytest.raises(VideoError, match="libx264 is not an audio encoder"):
            add_audio_stream(out, "libx264", 48000)
        with pytest.raises(VideoError, match="nosuch is not a video encoder"):
            add_video_stream(out, "nosuch", Fraction(25))
        assert add_video_stream(out, "libx264", Fraction(25)).codec_context.name == "libx264"
