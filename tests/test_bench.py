"""The benchmark measures the same computation both ways and reports it whole."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import ray
from PIL import Image

from distdream.bench import bench_io, bench_step
from distdream.cli import main
from distdream.config import DreamConfig


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """The engine figures need Ray: one local instance for this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_bench_compares_equal_gradients() -> None:
    r = bench_step(DreamConfig(dream_layers=("_blocks.5",)), size=64, repeats=2, device="cpu")
    assert r.layers == ("_blocks.5",) and r.size == 64 and r.device == "cpu"
    assert r.distdream_ms > 0 and r.naive_ms > 0
    assert r.speedup == pytest.approx(r.naive_ms / r.distdream_ms)
    assert r.grad_rel_error < 1e-3  # both loops compute the same image gradient


def test_quick_bench_json_has_every_figure_as_a_finite_number(tmp_path: Path, capsys) -> None:
    out, picture = tmp_path / "bench.json", tmp_path / "bench.png"
    assert main(["bench", "--quick", "--device", "cpu", "--json", str(out), "--plot", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "seam ratio" in printed and "driver peak RSS" in printed
    figures = json.loads(out.read_text())
    expected = {
        "step": {"distdream_ms", "naive_ms", "speedup", "grad_rel_error"},
        "io": {"range_read_fps", "from_start_fps", "join_seconds", "reencode_seconds", "probe_seconds"},
        "engine": {"pure_dream_seconds", "one_worker_seconds", "pipeline_efficiency", "n_workers_seconds", "speedup",
                   "lead_in_overhead", "driver_rss_mib", "driver_rss_mib_10x", "warping_error_default",
                   "warping_error_independent", "seam_ratio"},
    }
    for section, names in expected.items():
        assert names <= set(figures[section]), (section, names - set(figures[section]))
        for name in names:
            value = figures[section][name]
            assert isinstance(value, (int, float)) and math.isfinite(value), (section, name, value)
    lanes = figures["lanes"]
    assert lanes["device"].startswith("cpu") and lanes["other_seed_diff"] > 1.0
    settings = list(dict.fromkeys(r["setting"] for r in lanes["rows"]))
    assert settings == ["fp32, channels-last", "fp32, NCHW"]  # CPU: no reduced precision, both layouts
    for setting in settings:
        rows = [r for r in lanes["rows"] if r["setting"] == setting]
        assert [r["lanes"] for r in rows] == [1, 2, 4, 8]
        for r in rows:
            assert r["frames_per_s"] > 0 and math.isfinite(r["speedup"]) and math.isfinite(r["mean_diff"])
            assert r["strength_ratio"] == pytest.approx(1.0, abs=0.05)  # batching never weakens the dream
            assert r["grad_cosine"] > 0.999  # same arithmetic on CPU, only the layout differs
    first = lanes["rows"][0]
    assert first["speedup"] == 1.0 and first["mean_diff"] == 0.0
    assert "CUDA only" in lanes["notes"][0]
    assert "frames/s" in printed and "another seed gives" in printed
    assert Image.open(picture).size[0] > 600  # a real picture
    assert main(["bench", "--size", "8"]) == 2


@pytest.mark.parametrize("size", ["10x10", "wide", "64"])
def test_bench_refuses_a_bad_frame_size(size: str, capsys) -> None:
    assert main(["bench", "--only", "lanes", "--frame-size", size]) == 2
    assert "--frame-size" in capsys.readouterr().err


def test_bench_io_measures_both_ways_on_a_real_clip() -> None:
    r = bench_io(frames=60, width=64, height=48, gop=20, segments=3, range_frames=5)
    assert r.range_start == 40  # mid-clip, half a GOP after a keyframe
    assert r.range_read_fps > 0 and r.from_start_fps > 0
    assert r.join_seconds > 0 and r.reencode_seconds > 0 and r.probe_seconds > 0
