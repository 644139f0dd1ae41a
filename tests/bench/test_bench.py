"""The benchmark measures the same computation both ways and reports it whole."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from distdream.bench import bench_io, bench_step
from distdream.bench.coherence import PAINTED
from distdream.cli import main
from distdream.config import DreamConfig

pytestmark = pytest.mark.usefixtures("local_ray")


def test_bench_compares_equal_gradients() -> None:
    r = bench_step(DreamConfig(dream_layers=("_blocks.5",)), size=64, repeats=2, device="cpu")
    assert r.layers == ("_blocks.5",) and r.size == 64 and r.device.startswith("cpu (")
    assert r.distdream_ms > 0 and r.naive_ms > 0
    assert list(r.precision_ms) == ["fp32"] and r.precision_ms["fp32"] == r.distdream_ms  # CPU runs fp32 only
    assert r.speedup == pytest.approx(r.naive_ms / r.distdream_ms)
    assert r.grad_rel_error < 1e-3  # both loops compute the same image gradient


def test_quick_bench_json_has_every_figure_as_a_finite_number(tmp_path: Path, capsys) -> None:
    out, picture = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["--quick", "--device", "cpu", "--render-carry", "host,device", "--json", str(out), "--plot", str(picture)]
    assert main(["bench", *args]) == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "in the seam windows" in printed and "driver peak RSS" in printed
    assert "steady rate after it" in printed and "the same frames as one chunk" in printed
    assert "temporal coherence at equal strength" in printed and "one dream over time" in printed
    figures = json.loads(out.read_text())
    assert figures["env"]["device"].startswith("cpu") and figures["env"]["torch"] == torch.__version__
    expected = {
        "step": {"distdream_ms", "naive_ms", "speedup", "grad_rel_error"},
        "io": {"range_read_fps", "from_start_fps", "join_seconds", "reencode_seconds", "probe_seconds"},
        "engine": {
            "pure_dream_seconds",
            "one_worker_seconds",
            "pipeline_efficiency",
            "n_workers_seconds",
            "speedup",
            "lead_in_overhead",
            "driver_rss_mib",
            "driver_rss_mib_10x",
            "warping_error_crossfaded",
            "seam_ratio",
            "seam_strength_ratio",
            "one_worker_startup_seconds",
            "n_workers_startup_seconds",
            "one_worker_steady_fps",
            "n_workers_steady_fps",
            "steady_speedup",
            "seam_ratio_one_chunk",
        },
        "coherence": {"input_warping_error", "target_strength"},
        "startup": {
            "seed_start_seconds",
            "one_frame_seconds",
            "one_frame_over_seed_start",
            "seed_seconds",
            "one_worker_seconds",
            "one_worker_over_seed",
            "two_workers_seconds",
            "two_workers_speedup",
            "first_line_seconds",
            "pair_throughput",
        },
        "render": {
            "seconds",
            "frames_per_s",
            "decode_seconds",
            "flow_seconds",
            "dream_seconds",
            "encode_seconds",
            "wait_share",
        },
    }
    for section, names in expected.items():
        entry = figures[section][0] if isinstance(figures[section], list) else figures[section]
        assert names <= set(entry), (section, names - set(entry))
        for name in names:
            value = entry[name]
            assert isinstance(value, (int, float)) and math.isfinite(value), (section, name, value)
    # one dream over time: the steady dream holds a still shot and brings a hidden place back,
    # the breathing one keeps morphing; both at the keyframe's strength
    steady, breathing = figures["onedream"]["rows"]
    assert (steady["steady"], breathing["steady"]) == (1.0, 0.0)
    assert steady["still_change"] < 0.05 < 0.3 < breathing["still_change"]
    assert steady["still_chunked_apart"] < 0.05 < breathing["still_chunked_apart"]
    assert steady["reveal_change"] < 0.3 < 0.6 < breathing["reveal_change"]
    for row in (steady, breathing):
        assert abs(row["still_strength_kept"] - 1) < 0.1
        assert all(math.isfinite(row[k]) for k in ("pan_span_inside", "pan_span_ratio", "pan_warping_l1"))
    engine = figures["engine"]
    assert engine["shots"] == 4 and engine["seams"]["cut"] == 3 and engine["seams"]["handoff"] > 0  # shot-aware
    assert 0 < engine["one_worker_startup_seconds"] < engine["one_worker_seconds"]
    steady_one = engine["frames"] / engine["one_worker_seconds"]  # the end-to-end rate includes the start-up
    assert engine["one_worker_steady_fps"] > steady_one
    lines = [line for _, line in figures["startup"]["phases"]]
    phases = [re.match(r"[^\d:/(]*", line).group().strip() for line in lines]  # "probing /tmp/…" → "probing"
    assert phases[0] == "loading PyTorch …" and not any(line.startswith("starting Ray") for line in lines)
    assert any("2 worker(s) × 1 lane(s) in this process" in line for line in lines)  # two workers, no Ray
    assert (
        phases.index("probing")
        < phases.index("scanning cuts")
        < phases.index("starting workers")
        < phases.index("dreaming")
        < phases.index("joining")
    )
    assert "start-up and small jobs" in printed
    # a quick run leaves the Ray rows out (the Ray path's start-up is what test_signals runs)
    startup = figures["startup"]
    assert startup["one_worker_ray_seconds"] is None and startup["two_workers_ray_seconds"] is None
    assert re.search(r"2 workers on Ray \(--ray always\) +not run \(--quick\)", printed)
    # the machine's own ceiling for two workers: the one-thread script alone, then two at once
    assert len(startup["runs"]["alone"]) == len(startup["runs"]["pair_slower"]) == 1
    assert startup["pair_throughput"] > 0 and re.search(r"two at once +\d+\.\d\d×", printed)
    coherence = {r["way"]: r for r in figures["coherence"]["rows"]}
    assert list(coherence) == [
        "default",
        "independent",
        "seed tool's rule",
        "previous default",
        "held level, no temporal term",
        "default with the bilinear carry",
        "temporal term 0.2",
        PAINTED,
    ]
    assert coherence["default"]["learning_rate"] == DreamConfig().learning_rate and coherence["default"]["matched"]
    for row in coherence.values():
        assert math.isfinite(row["warping_error"]) and len(row["strength_over_time"]) == 12
        if row["matched"]:
            assert row["strength"] == pytest.approx(coherence["default"]["strength"], rel=0.05)
    # carrying the dream is steadier than dreaming every frame on its own, at equal strength
    assert coherence["default"]["warping_error"] < coherence["independent"]["warping_error"]
    # the painted dream does not change, yet the metric's resampling charges its detail: above the
    # input's own E_warp, below independent frames'; its own E_warp over the curve at its detail is 1
    painted = coherence[PAINTED]
    assert (
        figures["coherence"]["input_warping_error"]
        < painted["warping_error"]
        < coherence["independent"]["warping_error"]
    )
    assert painted["over_steady"] == pytest.approx(1.0, abs=0.1)
    curve = figures["coherence"]["steady_curve"]
    assert len(curve) == 7 and [e for _, e in curve] == sorted(e for _, e in curve)  # more detail, more E_warp
    render = figures["render"][0]
    assert render["frames"] == 8 and render["lanes"] == 1 and render["peak_mib"] is None  # no device memory on CPU
    # each render with the carry on the host and, forced, on the "device" (the CPU here)
    assert [r["carry"] for r in figures["render"]] == ["host", "device"] and "carry on the device:" in printed
    assert min(render[f"{stage}_seconds"] for stage in ("decode", "flow", "dream", "encode")) > 0
    assert 0 <= render["wait_share"] < 1 and render["dream_seconds"] <= render["seconds"]
    assert "halving" not in figures and "compile" not in figures  # CUDA only; on request only
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
            assert r["peak_mib_per_lane"] is None and r["warmup_seconds"] is None
    first = lanes["rows"][0]
    assert first["speedup"] == 1.0 and first["mean_diff"] == 0.0
    assert "CUDA only" in lanes["notes"][0]
    assert "frames/s" in printed and "another seed gives" in printed and "network idle" in printed
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


def test_a_cut_off_bench_keeps_what_it_measured(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ctrl-C (or timeout -s INT) during a part: the JSON and plot hold every part before it."""
    import distdream.bench.render

    def interrupted(**_kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(distdream.bench.render, "bench_render", interrupted)
    out, picture = tmp_path / "cut.json", tmp_path / "cut.png"
    args = [
        "bench",
        "--quick",
        "--only",
        "step,render",
        "--size",
        "48",
        "--device",
        "cpu",
        "--json",
        str(out),
        "--plot",
        str(picture),
    ]
    assert main(args) == 130
    figures = json.loads(out.read_text())
    assert [r["size"] for r in figures["step"]] == [48] and "render" not in figures
    assert Image.open(picture).size[0] > 200
    assert "interrupted; the figures measured so far are kept" in capsys.readouterr().err


def test_parts_past_the_time_limit_are_skipped_and_listed(tmp_path: Path) -> None:
    out = tmp_path / "late.json"
    assert main(["bench", "--only", "step,lanes", "--time-limit", "0", "--device", "cpu", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["skipped"] == ["step 256", "lanes"] and "step" not in figures


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "halving", "--device", "cpu"], "CUDA"),
        (["--only", "steps"], "unknown bench section 'steps'"),
        (["--only", "lanes", "--lanes", "0,2"], "--lanes"),
        (["--render-frames", "2", "--render-lanes", "4"], "--render-frames"),
        (["--only", "render", "--render-carry", "gpu"], "--render-carry 'gpu': choose from auto, device, host"),
    ],
)
def test_bench_refuses_what_it_cannot_run(args: list[str], says: str, capsys) -> None:
    assert main(["bench", *args]) == 2
    assert says in capsys.readouterr().err


def test_bench_and_in_process_renders_need_no_ray(tmp_path: Path) -> None:
    """A machine with torch, PyAV and the weights but no Ray (a lent GPU box) runs every part but
    the engine and startup sections, and one-worker renders (in process)."""
    clip, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    script = f"""
import json, sys
sys.modules["ray"] = None  # import ray now fails, as where it is not installed
from pathlib import Path
from distdream.cli import main
from distdream.samples import pan_frames, write_clip
code = main(["bench", "--quick", "--only", "step,render", "--size", "48", "--render-frames", "4", "--device", "cpu",
             "--json", {str(tmp_path / "b.json")!r}])
assert code == 0, code
assert main(["bench", "--quick", "--size", "48", "--lanes", "1", "--render-frames", "2", "--device", "cpu",
             "--only", "engine"]) == 2
write_clip(Path({str(clip)!r}), pan_frames(6, 64, 48), audio=None)
light = ["--num-iterations", "1", "--num-octaves", "1", "--keyframe-settle", "0", "-q"]
assert main(["render", {str(clip)!r}, "-o", {str(out)!r}, "--workers", "1", *light]) == 0  # in process
assert main(["render", {str(clip)!r}, "-o", {str(out)!r} + ".mkv", "--ray", "always", *light]) == 2
print(sorted(json.load(open({str(tmp_path / "b.json")!r}))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['env', 'render', 'step']" in done.stdout and out.exists()
    assert "the engine section runs on Ray, which is not installed" in done.stderr
    assert "this command runs on Ray, which is not installed here" in done.stderr


def test_bench_help_names_every_section_without_importing_torch() -> None:
    """The sections live in the bench package, whose heavy modules load on first use."""
    script = """
import sys
from distdream.cli import main
main(["bench", "--help"])
print("torch imported:", "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    from distdream.bench import SECTIONS

    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch imported: False" in done.stdout
    assert f"({', '.join(SECTIONS)})" in " ".join(done.stdout.split())


def test_parity_renders_each_clip_in_process_and_through_ray_to_the_same_frames(tmp_path: Path, capsys) -> None:
    out = tmp_path / "parity.json"
    assert main(["bench", "--only", "parity", "--quick", "--device", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["parity"]
    assert [(r["clip"], r["frames"]) for r in rows] == [("8 shots", 16)]
    for r in rows:
        assert r["in_process_fps"] > 0 and r["ray_fps"] > 0
        assert r["ratio"] == pytest.approx(r["ray_fps"] / r["in_process_fps"])
        assert 0 < r["in_process_startup_seconds"] < r["in_process_seconds"]
        assert 0 < r["ray_startup_seconds"] < r["ray_seconds"]
        assert r["frames_differ"] == 0  # on a CPU both paths give the same bytes
    assert re.search(r"8 shots, 16 frames 64×48 +[\d.]+ vs [\d.]+ frames/s", capsys.readouterr().out)


def test_parity_refuses_a_clip_it_does_not_know() -> None:
    from distdream.bench import bench_parity

    with pytest.raises(ValueError, match="unknown parity clip 'two shots'; choose from one shot, 8 shots"):
        bench_parity("two shots", width=64, height=48, frames=8)


def test_each_section_is_registered_once_and_its_module_holds_its_parts() -> None:
    from importlib import import_module

    from distdream.bench.sections import SECTIONS

    assert len({s.name for s in SECTIONS}) == len(SECTIONS)
    for s in SECTIONS:
        parts = s.parts()
        assert callable(parts.run) and callable(parts.report) and callable(parts.panels), s.name
    # no module holds the parts of a section the table does not register
    for module in {s.module for s in SECTIONS}:
        held = set(import_module(f"distdream.bench.{module}").PARTS)
        assert held == {s.name for s in SECTIONS if s.module == module}, module


def test_a_cuda_only_section_on_a_cpu_says_so(capsys) -> None:
    assert main(["bench", "--only", "halving", "--device", "cpu"]) != 0
    assert "the halving section needs a CUDA card" in capsys.readouterr().err
