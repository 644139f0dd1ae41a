"""One dream over time: does the dream stay with the scene over many frames, not only from one
frame to the next?

Three small clips made from real photos, each rendered with the default (steady) dream and with
the breathing one (``steady`` 0, classic DeepDream's evolving dream), lossless:

- a **still shot** (one photo held): how far the dream at t+64 is from the dream at t, over its
  strength, with the carried frames' strength and detail over the keyframe's; and the same shot
  rendered in crossfaded chunks, against the one-chunk render of it;
- a slow **pan** rendered in one chain and in crossfaded chunks: the 16-frame *span error* (the output
  at t warped onto t+16 along the input's own flow between those two frames, mean |difference|
  on pixels where that flow is consistent both ways) over spans that straddle a crossfade window
  against spans inside a chain, and the 1-frame warping error;
- a **reveal**: an object passes over a still background; on the pixels it uncovered, the dream
  after it passed against the dream before it came, over their strength.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DreamConfig, FlowConfig, RenderConfig
from ..engine import plan, render
from ..frames.flow import MotionEstimator, warp
from ..metrics import dream_detail, warping_error
from ..options import JobOptions
from ..samples import pan_frames, sample_photo, write_clip
from ..video import read_frames
from .base import BenchRun, Echo, Parts, no_panels, recorded

__all__ = ["OneDreamBenchmark", "OneDreamRow", "bench_one_dream", "reveal_change", "reveal_frames", "still_frames"]

SPAN = 16  # frames between the two ends of a span
LATER = 64  # how far apart the still shot's two compared frames are


def _noisy(frame: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """``frame`` with Gaussian sensor noise of ``noise`` levels (none at 0), the same for a seed."""
    if noise <= 0:
        return frame
    grain = np.random.default_rng(seed).normal(0.0, noise, frame.shape)
    return np.clip(frame + grain, 0, 255).round().astype(np.uint8)


def still_frames(n: int, width: int, height: int, photo: str = "coffee", noise: float = 0.0) -> Iterator[np.ndarray]:
    """``n`` frames of one photo at ``width``×``height``: a locked-off shot of a still scene,
    with ``noise`` levels of sensor noise, different in every frame."""
    import cv2

    frame = cv2.resize(sample_photo(photo), (width, height), interpolation=cv2.INTER_AREA)
    for i in range(n):
        yield _noisy(frame, noise, i)


def reveal_frames(n: int, width: int, height: int, noise: float = 0.0) -> Iterator[np.ndarray]:
    """An object (a crop of another photo) crossing a still background from left to right: it
    enters after frame 0 and has left before the last frame; ``noise`` as :func:`still_frames`."""
    import cv2

    background = next(still_frames(1, width, height))
    side = max(4, round(height * 0.4))
    thing = cv2.resize(sample_photo("astronaut")[60:260, 160:360], (side, side), interpolation=cv2.INTER_AREA)
    top = (height - side) // 2
    for i in range(n):
        x = round(-side + (width + side) * i / (n - 1))
        frame = background.copy()
        a, b = max(x, 0), min(x + side, width)
        if b > a:
            frame[top : top + side, a:b] = thing[:, a - x : b - x]
        yield _noisy(frame, noise, i)


@dataclass(frozen=True)
class OneDreamRow:
    """One way of dreaming measured on the three clips (strength: mean |output − input|, /255)."""

    way: str
    steady: float
    still_strength: float  # median over the carried frames
    still_change: float  # mean |dream(t + later) − dream(t)| over the strength (dream: out − in; later: 64)
    still_change_per_frame: float  # mean |dream(t + 1) − dream(t)| over the strength
    still_strength_kept: float  # carried frames' median strength over the keyframe's
    still_detail_kept: float  # carried frames' median detail (mean |Laplacian| of out − in) over the keyframe's
    still_chunked_apart: float  # crossfaded chunks against one chunk: mean |difference| over the strength
    pan_strength: float
    pan_span_inside: float  # mean span error (16 frames) inside chains (one-chain render), /255
    pan_span_ratio: float  # chunked render: spans straddling a crossfade window over spans inside chains
    pan_span_ratio_one_chain: float  # the one-chain render at the same positions
    pan_warping_l1: float  # 1-frame warping error (mean |difference|, /255), one chain
    pan_detail_kept: float  # carried frames' median detail over the keyframe's
    reveal_change: float  # revealed pixels: mean |after − before| over their strength before
    reveal_strength_kept: float  # their strength after over before
    seconds_per_frame: float  # the one-chain pan's render time per frame (this process, no Ray)


@dataclass(frozen=True)
class OneDreamBenchmark:
    width: int
    height: int
    frames: dict[str, int]
    chunk_frames: int
    span: int  # frames between a span's ends (the pan's span error)
    noise: float  # sensor noise of the still shot and the reveal, levels of 255
    later: int  # frames between the still shot's compared frames
    rows: tuple[OneDreamRow, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _frames(path: Path | str) -> list[np.ndarray]:
    return [f.astype(np.float32) for f in read_frames(str(path))]


def _strength(frame_in: np.ndarray, frame_out: np.ndarray) -> float:
    return float(np.abs(frame_out - frame_in).mean())


def span_errors(inp: Sequence[np.ndarray], out: Sequence[np.ndarray], span: int = SPAN) -> list[float]:
    """Per start frame t: the output at t warped onto t + ``span`` by the input's flow between
    those frames, mean |difference| (levels of 255) where that flow is consistent both ways."""
    estimator = MotionEstimator(FlowConfig())
    errors = []
    for t in range(len(inp) - span):
        motion = estimator.motion(inp[t].astype(np.uint8), inp[t + span].astype(np.uint8))
        mask = motion.reliable.astype(np.float32) if motion.reliable is not None else motion.mask
        moved = warp(out[t], motion.backward)
        diff = np.abs(out[t + span] - moved).mean(-1)
        errors.append(float((diff * mask).sum() / max(float(mask.sum()), 1.0)))
    return errors


def _span_ratio(errors: Sequence[float], windows: Sequence[tuple[int, int]], span: int) -> float:
    """Spans touching a window over spans clear of every window (a frame's margin)."""
    across = [e for t, e in enumerate(errors) if any(t < b and t + span > a for a, b in windows)]
    inside = [e for t, e in enumerate(errors) if not any(t <= b and t + span >= a for a, b in windows)]
    return float(np.mean(across) / np.mean(inside)) if across and inside else math.nan


def reveal_change(inp: Sequence[np.ndarray], out: Sequence[np.ndarray], margin: int = 3) -> tuple[float, float]:
    """On pixels the object covered and uncovered: |dream after − dream before| over the strength
    before, and the strength after over before (``margin`` frames clear of the object). The
    dream is output − input: sensor noise in the input is not counted as a change of dream."""
    background = inp[0]
    covered = np.stack([np.abs(f - background).mean(-1) > 24 for f in inp])  # (T, H, W)
    count = len(inp)
    first = np.argmax(covered, 0)
    last = count - 1 - np.argmax(covered[::-1], 0)
    before, after = first - margin, last + margin
    ok = covered.any(0) & (before >= 1) & (after < count)
    ys, xs = np.nonzero(ok)
    dream = np.stack(out) - np.stack(inp)  # (T, H, W, 3)
    was, now = dream[before[ys, xs], ys, xs], dream[after[ys, xs], ys, xs]
    strength_before = float(np.abs(was).mean())
    return float(np.abs(now - was).mean()) / strength_before, float(np.abs(now).mean()) / strength_before


def _measure(
    way: str, config: RenderConfig, clips: dict[str, Path], d: Path, chunk_frames: int, span: int
) -> OneDreamRow:
    def one(clip: str, chunked: bool = False) -> list[np.ndarray]:
        options = JobOptions(workers=1, ray="never", overwrite=True)
        if chunked:
            options = replace(options, workers=2, seams="crossfade", chunk_frames=chunk_frames)
        name = f"{clip}-{'chunked' if chunked else 'one'}.mp4"
        return _frames(render(clips[clip], d / name, config, options).output)

    still_in = _frames(clips["still"])
    still = one("still")
    dream = [o - i for i, o in zip(still_in, still)]
    strengths = [_strength(i, o) for i, o in zip(still_in, still)]
    details = [dream_detail(i, o) for i, o in zip(still_in, still)]
    level = float(np.median(strengths[1:]))
    later = min(LATER, len(still) - 1)
    chunked_still = one("still", chunked=True)

    pan_in = _frames(clips["pan"])
    t0 = time.perf_counter()
    pan = one("pan")
    seconds = (time.perf_counter() - t0) / len(pan_in)
    chunks = plan(clips["pan"], config, workers=2, ray="never", seams="crossfade", chunk_frames=chunk_frames).chunks
    windows = [(c.first, c.start) for c in chunks if c.lead_in]
    one_chain, chunked = span_errors(pan_in, pan, span), span_errors(pan_in, one("pan", chunked=True), span)
    inside = [e for t, e in enumerate(one_chain) if not _near(t, windows, span)]
    pan_error = warping_error(clips["pan"], d / "pan-one.mp4")
    reveal_change_, reveal_kept = reveal_change(_frames(clips["reveal"]), one("reveal"))
    return OneDreamRow(
        way=way,
        steady=config.steady,
        still_strength=level,
        still_change=float(np.mean([np.abs(dream[t + later] - dream[t]).mean() for t in range(len(dream) - later)]))
        / level,
        still_change_per_frame=float(np.mean([np.abs(b - a).mean() for a, b in zip(dream, dream[1:])])) / level,
        still_strength_kept=level / strengths[0],
        still_detail_kept=float(np.median(details[1:])) / details[0],
        still_chunked_apart=float(np.mean([np.abs(a - b).mean() for a, b in zip(still, chunked_still)])) / level,
        pan_strength=float(np.median(pan_error.strength)),
        pan_span_inside=float(np.mean(inside)) if inside else math.nan,
        pan_span_ratio=_span_ratio(chunked, windows, span),
        pan_span_ratio_one_chain=_span_ratio(one_chain, windows, span),
        pan_warping_l1=pan_error.l1,
        pan_detail_kept=float(np.median(pan_error.detail[1:])) / pan_error.detail[0],
        reveal_change=reveal_change_,
        reveal_strength_kept=reveal_kept,
        seconds_per_frame=seconds,
    )


def _near(t: int, windows: Sequence[tuple[int, int]], span: int) -> bool:
    return any(t <= b and t + span >= a for a, b in windows)


def bench_one_dream(
    *,
    width: int = 128,
    height: int = 72,
    still: int = 96,
    pan: int = 144,
    reveal: int = 72,
    chunk_frames: int = 48,
    span: int = SPAN,
    noise: float = 2.0,
    config: RenderConfig | None = None,
) -> OneDreamBenchmark:
    """Render the three clips with the default (steady) dream and the breathing one; lossless,
    the still shot and the reveal with ``noise`` levels of sensor noise (as a camera has)."""
    config = config or RenderConfig()
    base = replace(config, encoding=replace(config.encoding, crf=0)).validate()
    ways = {"steady (default)": base, "breathing (steady 0)": replace(base, steady=0.0)}
    with tempfile.TemporaryDirectory(prefix="distdream-onedream-") as tmp:
        d = Path(tmp)
        clips = {
            "still": write_clip(d / "still.mp4", still_frames(still, width, height, noise=noise), audio=None, crf=0),
            # the first third of a pan three times as long: a slow pan (about 0.3 pixels a frame at
            # 128×72), where a dream lasts long enough for a crossfade between two dreams to show
            "pan": write_clip(d / "pan.mp4", islice(pan_frames(3 * pan, width, height), pan), audio=None, crf=0),
            "reveal": write_clip(
                d / "reveal.mp4", reveal_frames(reveal, width, height, noise=noise), audio=None, crf=0
            ),
        }
        rows = tuple(_measure(way, config, clips, d, chunk_frames, span) for way, config in ways.items())
    return OneDreamBenchmark(
        width=width,
        height=height,
        frames={"still": still, "pan": pan, "reveal": reveal},
        chunk_frames=chunk_frames,
        span=span,
        noise=noise,
        later=min(LATER, still - 1),
        rows=rows,
    )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_one_dream(run: BenchRun) -> Any:
    if run.plan.quick:  # a light dream on short clips: the table's shape, in a minute
        light = RenderConfig(dream=DreamConfig(num_iterations=2, num_octaves=2))
        return bench_one_dream(width=64, height=48, still=24, pan=48, reveal=24, chunk_frames=16, span=4, config=light)
    return bench_one_dream()


def _show_one_dream(c: Mapping[str, Any], echo: Echo) -> None:
    f = c["frames"]
    echo(
        f"one dream over time, {c['width']}×{c['height']}, lossless (still shot {f['still']} frames, pan {f['pan']} "
        f"in chunks of {c['chunk_frames']}, reveal {f['reveal']}; figures over the dream's strength unless said):"
    )
    rows = [
        (f"still shot: change over {c['later']} frames", "still_change", ".2f"),
        ("still shot: change frame to frame", "still_change_per_frame", ".3f"),
        ("still shot: strength kept (× keyframe)", "still_strength_kept", ".2f"),
        ("still shot: detail kept (× keyframe)", "still_detail_kept", ".2f"),
        ("still shot in crossfaded chunks: apart from one chunk", "still_chunked_apart", ".2f"),
        ("pan: strength (/255)", "pan_strength", ".1f"),
        (f"pan: {c['span']}-frame span error inside chains (/255)", "pan_span_inside", ".1f"),
        ("pan: span error across crossfades (× inside)", "pan_span_ratio", ".2f"),
        ("pan, one chain: same positions (× inside)", "pan_span_ratio_one_chain", ".2f"),
        ("pan: 1-frame warping error (/255)", "pan_warping_l1", ".2f"),
        ("pan: detail kept (× keyframe)", "pan_detail_kept", ".2f"),
        ("reveal: uncovered dream apart from before", "reveal_change", ".2f"),
        ("reveal: its strength kept (× before)", "reveal_strength_kept", ".2f"),
        ("seconds per frame (pan, one chain)", "seconds_per_frame", ".3f"),
    ]
    ways = c["rows"]
    echo(f"  {'':<54}" + "".join(f"{w['way']:>22}" for w in ways))
    for label, key, fmt in rows:
        echo(f"  {label:<54}" + "".join(f"{format(w[key], fmt):>22}" for w in ways))


PARTS = {
    "onedream": Parts(recorded("onedream", _run_one_dream), _show_one_dream, no_panels),
}
