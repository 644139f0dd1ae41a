"""The benchmark measures the same computation both ways and reports it whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distdream.bench import bench_io, bench_step
from distdream.cli import main
from distdream.config import DreamConfig


def test_bench_compares_equal_gradients() -> None:
    r = bench_step(DreamConfig(dream_layers=("_blocks.5",)), size=64, repeats=2, device="cpu")
    assert r.layers == ("_blocks.5",) and r.size == 64 and r.device == "cpu"
    assert r.distdream_ms > 0 and r.naive_ms > 0
    assert r.speedup == pytest.approx(r.naive_ms / r.distdream_ms)
    assert r.grad_rel_error < 1e-3  # both loops compute the same image gradient


def test_bench_cli_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--size", "64", "--device", "cpu", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "naive" in printed
    figures = json.loads(out.read_text())
    assert figures["step"]["size"] == 64 and figures["step"]["repeats"] == 5 and figures["step"]["speedup"] > 0
    assert figures["io"]["frames"] == 300 and figures["io"]["join_seconds"] > 0
    assert main(["bench", "--size", "8"]) == 2


def test_bench_io_measures_both_ways_on_a_real_clip() -> None:
    r = bench_io(frames=60, width=64, height=48, gop=20, segments=3, range_frames=5)
    assert r.range_start == 40  # mid-clip, half a GOP after a keyframe
    assert r.range_read_fps > 0 and r.from_start_fps > 0
    assert r.join_seconds > 0 and r.reencode_seconds > 0 and r.probe_seconds > 0
