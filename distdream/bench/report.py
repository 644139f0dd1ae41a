"""The benchmark's figures as text and as one picture, both drawn from the JSON-ready dicts.

Each section's figures are plain dicts (what ``--json`` writes), so a report can be redrawn from
a saved file as well as from a run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..images import save_figure

__all__ = ["plot", "report"]

Echo = Callable[[str], None]
Figures = Mapping[str, Any]


def _row(echo: Echo, label: str, value: str) -> None:
    echo(f"  {label:<46}{value}")


def _step(figures: list[Mapping[str, Any]], echo: Echo) -> None:
    for r in figures:
        echo(
            f"dream iteration, {r['model']} [{','.join(r['layers'])}], {r['size']}×{r['size']}, {r['device']}, "
            f"median of {r['repeats']}:"
        )
        for precision, ms in r["precision_ms"].items():
            _row(echo, f"distdream, {precision} network", f"{ms:8.2f} ms")
        _row(echo, "naive (full forward, hooks, grads; fp32)", f"{r['naive_ms']:8.2f} ms")
        _row(
            echo,
            f"speedup at the default ({r['setting']})",
            f"{r['speedup']:8.2f}×   (image gradients differ by {r['grad_rel_error']:.1e}, relative L2)",
        )
        fp32 = r["precision_ms"].get("fp32")
        for precision in ("bf16", "fp16"):
            if fp32 and precision in r["precision_ms"]:
                _row(echo, f"{precision} over fp32", f"{fp32 / r['precision_ms'][precision]:8.2f}×")


def _io(io: Mapping[str, Any], echo: Echo) -> None:
    span = f"{io['range_start']}–{io['range_start'] + io['range_frames']}"
    echo(f"video I/O, {io['frames']} frames {io['width']}×{io['height']}, GOP {io['gop']}, H.264:")
    _row(echo, "probe (demux-only index)", f"{io['probe_seconds']:8.2f} s")
    _row(echo, f"read frames {span}: seek to keyframe", f"{io['range_read_fps']:8.0f} frames/s")
    _row(echo, f"read frames {span}: decode from start", f"{io['from_start_fps']:8.0f} frames/s")
    _row(echo, f"join {io['segments']} segments by remuxing (+ audio)", f"{io['join_seconds']:8.2f} s")
    _row(echo, f"re-encode {io['segments']} segments into one file", f"{io['reencode_seconds']:8.2f} s")


def _codecs(c: Mapping[str, Any], echo: Echo) -> None:
    echo(f"codecs, {c['frames']} frames {c['width']}×{c['height']} from {c['source']}:")
    echo(f"  {'codec':8} {'pixel format':14} {'frames/s':>9} {'MB':>8} {'bits/px':>8} {'mean err':>9} {'max err':>8}")
    for r in c["rows"]:
        echo(
            f"  {r['codec']:8} {r['pix_fmt']:14} {r['fps']:9.1f} {r['bytes'] / 1e6:8.2f} {r['bits_per_pixel']:8.2f} "
            f"{r['mean_error']:9.3f} {r['max_error']:8.2f}"
        )


def _engine(e: Mapping[str, Any], echo: Echo) -> None:
    kinds = ", ".join(f"{v} {k}s" for k, v in e["seams"].items() if v)
    echo(
        f"engine, {e['frames']} frames {e['width']}×{e['height']} in {e['shots']} shots, {e['chunks']} chunks "
        f"({kinds}), local Ray:"
    )
    _row(echo, "pure dream compute (same frames, no I/O)", f"{e['pure_dream_seconds']:8.1f} s")
    _row(
        echo,
        "render with 1 worker, end to end",
        f"{e['one_worker_seconds']:8.1f} s   (efficiency {e['pipeline_efficiency']:.2f})",
    )
    _row(
        echo, f"render with {e['workers']} workers", f"{e['n_workers_seconds']:8.1f} s   (speedup {e['speedup']:.2f}×)"
    )
    if "steady_speedup" in e:
        _row(
            echo,
            "  start-up to the first frame, 1 vs N workers",
            f"{e['one_worker_startup_seconds']:8.1f} vs {e['n_workers_startup_seconds']:.1f} s",
        )
        _row(
            echo,
            "  steady rate after it, 1 vs N workers",
            f"{e['one_worker_steady_fps']:8.2f} vs {e['n_workers_steady_fps']:.2f} frames/s "
            f"(speedup {e['steady_speedup']:.2f}×)",
        )
    _row(echo, "lead-in overhead", f"{100 * e['lead_in_overhead']:8.1f} %")
    _row(
        echo,
        f"driver peak RSS, {e['rss_frames']} vs {10 * e['rss_frames']} frames",
        f"{e['driver_rss_mib']:8.0f} vs {e['driver_rss_mib_10x']:.0f} MiB",
    )
    _row(echo, "one shot, crossfade seams: warping error", f"{e['warping_error_crossfaded']:8.5f}")
    _row(echo, "  in the seam windows / elsewhere", f"{e['seam_ratio']:8.2f}×")
    if "seam_ratio_one_chunk" in e:
        _row(echo, "  … / the same frames as one chunk", f"{e['seam_ratio_one_chunk']:8.2f}×")
    _row(echo, "  strength in the seam windows / elsewhere", f"{e['seam_strength_ratio']:8.2f}×")


def _startup(s: Mapping[str, Any], echo: Echo) -> None:
    echo(
        f"start-up and small jobs, commands from the shell, {s['frames']}-frame pan {s['width']}×{s['height']} "
        "(_blocks.9, 4 steps, 2 octaves):"
    )
    _row(echo, "seed-style script's start (torch + model)", f"{s['seed_start_seconds']:8.1f} s")
    _row(
        echo,
        "distdream render, one frame",
        f"{s['one_frame_seconds']:8.1f} s   ({s['one_frame_over_seed_start']:.2f}× the script's start; target ≤ 1.5×)",
    )
    _row(echo, "seed-style script over the pan", f"{s['seed_seconds']:8.1f} s")
    _row(
        echo,
        "distdream, 1 worker (in process)",
        f"{s['one_worker_seconds']:8.1f} s   ({s['one_worker_over_seed']:.2f}× the script; target ≤ 0.45×)",
    )
    _row(
        echo,
        "distdream, 2 workers (in process)",
        f"{s['two_workers_seconds']:8.1f} s   ({s['two_workers_speedup']:.2f}× 1 worker; target ≥ 1.5×)",
    )
    _row(
        echo,
        "the script, 1 thread, two at once",
        f"{s['pair_throughput']:8.2f}×   (a second worker's most on this machine: the slower of the pair)",
    )
    for workers, key in (("1 worker", "one_worker_ray_seconds"), ("2 workers", "two_workers_ray_seconds")):
        seconds = s.get(key)
        _row(
            echo,
            f"distdream, {workers} on Ray (--ray always)",
            "not run (--quick)" if seconds is None else f"{seconds:8.1f} s",
        )
    runs = s.get("runs", {})
    if any(len(times) > 1 for times in runs.values()):
        _row(
            echo,
            "each run (the figures are the fastest)",
            "; ".join(
                f"{name} {', '.join(f'{t:.1f}' for t in times)}" for name, times in runs.items() if len(times) > 1
            )[:200],
        )
    _row(echo, "first line of output", f"{s['first_line_seconds']:8.2f} s")
    for at, line in s["phases"]:
        _row(echo, f"  {at:6.1f} s", line[:60])


def _coherence(c: Mapping[str, Any], echo: Echo) -> None:
    echo(
        f"temporal coherence at equal strength, {c['frames']} frames {c['width']}×{c['height']} (strength matched "
        f"to the default's {c['target_strength']:.1f} within {100 * c['tolerance']:.0f} %; the input's own E_warp "
        f"{c['input_warping_error']:.5f}):"
    )
    width = max(24, *(len(r["way"]) + 2 for r in c["rows"]))
    echo(
        f"  {'rendering':<{width}}{'rate':>8}{'strength':>10}{'E_warp':>10}{'× input':>9}{'× indep.':>9}"
        f"{'detail':>8}{'× steady':>10}{'steps/frame':>12}{'windows':>12}"
    )
    independent = next((r["warping_error"] for r in c["rows"] if r["way"] == "independent"), math.nan)
    for r in c["rows"]:
        flag = "" if r["matched"] else "  (strength not matched)"
        echo(
            f"  {r['way']:<{width}}{r['learning_rate']:>8.4f}{r['strength']:>10.1f}{r['warping_error']:>10.5f}"
            f"{r['warping_error'] / c['input_warping_error']:>9.1f}{r['warping_error'] / independent:>9.2f}"
            f"{r.get('detail', math.nan):>8.1f}{_times(r.get('over_steady')):>10}"
            f"{r['steps_per_frame']:>12.3g}{r['windows'][0]:>7.2f}–{r['windows'][1]:.2f}{flag}"
        )
    echo(
        "  detail: median mean |Laplacian| of the dream residual (what smoothing costs); × steady: E_warp over a "
        "perfectly steady (painted) dream's of the same detail, the flicker detail does not explain; windows: the "
        "lowest and highest 10-frame strength over the median"
    )


def _one_dream(c: Mapping[str, Any], echo: Echo) -> None:
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


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _lanes(lb: Mapping[str, Any], echo: Echo) -> None:
    cpu = lb["device"].startswith("cpu")
    echo(
        f"lanes × precision, {lb['width']}×{lb['height']}, {lb['frames_per_lane']} frames per lane, {lb['device']}"
        + (", 1 torch thread (as a CPU worker)" if cpu else "")
        + ":"
    )
    echo(
        f"  {'network':<28}{'lanes':>5}{'frames/s':>10}{'speedup':>9}{'Δ levels':>10}{'strength':>10}"
        f"{'grad cos':>10}{'MiB/lane':>10}"
    )
    for r in lb["rows"]:
        peak = "" if r["peak_mib_per_lane"] is None else f"{r['peak_mib_per_lane']:>10.0f}"
        warm = "" if r.get("warmup_seconds") is None else f"   (first run {r['warmup_seconds']:.1f} s)"
        echo(
            f"  {r['setting']:<28}{r['lanes']:>5}{r['frames_per_s']:>10.2f}{r['speedup']:>8.2f}×"
            f"{r['mean_diff']:>10.2f}{r['strength_ratio']:>10.3f}{r['grad_cosine']:>10.4f}{peak}{warm}"
        )
    echo(
        f"  Δ levels: mean |Δ| of lane 0's frames from the first row's; another seed gives "
        f"{lb['other_seed_diff']:.2f}. grad cos: one frame's image gradient against the first row's"
    )
    for note in lb["notes"]:
        echo(f"  note: {note}")


def _render(rows: list[Mapping[str, Any]], echo: Echo) -> None:
    for r in rows:
        echo(
            f"render in process (no Ray), {r['frames']} frames {r['width']}×{r['height']}, {r['lanes']} lane(s), "
            f"{r['device']}, {r['setting']}, carry on the {r.get('carry', 'host')}:"
        )
        _row(echo, "end to end", f"{r['seconds']:8.1f} s   ({r['frames_per_s']:.2f} frames/s)")
        for stage in ("decode", "flow", "dream", "encode"):
            overlap = "" if stage == "dream" else " (own thread, overlaps the dream)"
            _row(echo, f"  {stage}{overlap}", f"{r[stage + '_seconds']:8.2f} s")
        _row(echo, "network idle, waiting on the other stages", f"{100 * r['wait_share']:8.1f} %")
        if r["peak_mib"] is not None:
            _row(echo, "peak device memory", f"{r['peak_mib']:8.0f} MiB")


def _halving(h: Mapping[str, Any], echo: Echo) -> None:
    echo(f"out of memory at {h['lanes']} lanes, {h['device']}, memory capped at {h['memory_cap_mib']:.0f} MiB:")
    _row(echo, "batches run / largest batch", f"{h['batches']:8d} / {h['largest_batch']}")
    _row(echo, "lane 0 against uncapped, mean |Δ|", f"{h['mean_diff']:8.2f} levels")
    for note in h["notes"]:
        echo(f"  note: {note}")


def _parity(rows: list[Mapping[str, Any]], echo: Echo) -> None:
    echo("one worker, in this process against through Ray (frames/s while dreaming; target: Ray ≥ 0.9×):")
    for r in rows:
        _row(
            echo,
            f"{r['clip']}, {r['frames']} frames {r['width']}×{r['height']}",
            f"{r['in_process_fps']:8.2f} vs {r['ray_fps']:.2f} frames/s   ({r['ratio']:.2f}×; start-up "
            f"{r['in_process_startup_seconds']:.1f} vs {r['ray_startup_seconds']:.1f} s, end to end "
            f"{r['in_process_seconds']:.1f} vs {r['ray_seconds']:.1f} s; "
            f"frames differ by {r['frames_differ']:.2f} levels)",
        )


_REPORTS: dict[str, Callable[[Any, Echo], None]] = {
    "step": _step,
    "io": _io,
    "codecs": _codecs,
    "engine": _engine,
    "parity": _parity,
    "startup": _startup,
    "lanes": _lanes,
    "render": _render,
    "halving": _halving,
    "compile": _lanes,
    "coherence": _coherence,
    "onedream": _one_dream,
}


def report(section: str, figures: Any, echo: Echo) -> None:
    """Print one section's figures (as :func:`~distdream.bench.run_sections` stores them)."""
    _REPORTS[section](figures, echo)


def _bars(ax: Any, names: list[str], values: list[float], title: str) -> None:
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    ax.bar(names, values, color=[colours[i % len(colours)] for i in range(len(values))])
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    for x, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)


def plot(figures: Figures, path: str | os.PathLike[str]) -> Path:
    """A small figure of the benchmark: one panel per question, readable at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    panels = [
        panel
        for make in (
            _step_panels,
            _io_panels,
            _engine_panels,
            _parity_panels,
            _startup_panels,
            _coherence_panels,
            _lanes_panels,
            _render_panels,
        )
        for panel in make(figures)
    ]
    if not panels:
        raise ValueError("no figures to plot")
    title = "distdream bench"
    env = figures.get("env")
    if env:
        title += f" — {env.get('device', '')}, {env.get('date', '')}"
    fig, axes = plt.subplots(1, len(panels), figsize=(max(3.8 * len(panels), 7.6), 3.6), squeeze=False)
    for ax, draw in zip(axes[0], panels):
        draw(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


Panel = Callable[[Any], None]  # draws one panel into a matplotlib axis


def _step_panels(figures: Figures) -> list[Panel]:
    panels: list[Panel] = []
    for step in figures.get("step", []):
        names = [*step["precision_ms"], "naive"]
        values = [*step["precision_ms"].values(), step["naive_ms"]]
        panels.append(lambda ax, n=names, v=values, s=step["size"]: _bars(ax, n, v, f"dream iteration (ms), {s}²"))
    return panels


def _io_panels(figures: Figures) -> list[Panel]:
    if "io" not in figures:
        return []
    io = figures["io"]
    return [
        lambda ax: _bars(
            ax, ["seek", "from start"], [io["range_read_fps"], io["from_start_fps"]], "range read (frames/s)"
        )
    ]


def _engine_panels(figures: Figures) -> list[Panel]:
    if "engine" not in figures:
        return []
    e = figures["engine"]
    return [
        lambda ax: _bars(
            ax,
            ["pure dream", "1 worker", f"{e['workers']} workers"],
            [e["pure_dream_seconds"], e["one_worker_seconds"], e["n_workers_seconds"]],
            f"render (s), {e['frames']} frames",
        )
    ]


def _parity_panels(figures: Figures) -> list[Panel]:
    if "parity" not in figures:
        return []
    rows = figures["parity"]

    def rates(ax: Any) -> None:
        names = [f"{r['clip']}\n{r['width']}×{r['height']}" for r in rows]
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r["in_process_fps"] for r in rows], 0.4, label="in process", color="#4c72b0")
        ax.bar([i + 0.2 for i in x], [r["ray_fps"] for r in rows], 0.4, label="through Ray", color="#dd8452")
        ax.set_xticks(list(x), names, fontsize=7)
        ax.set_title("one worker: frames/s while dreaming", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)

    return [rates]


def _startup_panels(figures: Figures) -> list[Panel]:
    if "startup" not in figures:
        return []
    s = figures["startup"]

    def timeline(ax: Any) -> None:
        names = [line.split(":")[0][:18] for _, line in s["phases"]]
        starts = [at for at, _ in s["phases"]]
        ends = [*starts[1:], s["two_workers_seconds"]]
        ax.barh(range(len(names)), [b - a for a, b in zip(starts, ends)], left=starts, color="#4c72b0")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title("2-worker render: phases (s)", fontsize=10)
        ax.tick_params(labelsize=8)

    bars = {
        "seed\nstart": s["seed_start_seconds"],
        "1\nframe": s["one_frame_seconds"],
        "seed": s["seed_seconds"],
        "1\nworker": s["one_worker_seconds"],
        "2\nworkers": s["two_workers_seconds"],
        "1 on\nRay": s.get("one_worker_ray_seconds"),
        "2 on\nRay": s.get("two_workers_ray_seconds"),
    }
    shown = {name: value for name, value in bars.items() if value is not None}  # a quick run has no Ray rows
    return [
        lambda ax: _bars(ax, list(shown), list(shown.values()), f"commands (s), {s['frames']} frames"),
        timeline,
    ]


def _coherence_panels(figures: Figures) -> list[Panel]:
    if "coherence" not in figures:
        return []
    rows = figures["coherence"]["rows"]

    def strength_panel(ax: Any) -> None:
        for r in rows:
            ax.plot(r["strength_over_time"], lw=1.2, label=f"{r['way']} (E_warp {r['warping_error']:.4f})")
        ax.set_xlabel("frame", fontsize=8)
        ax.set_title("strength over time, equal strength", fontsize=10)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=8)

    def error_panel(ax: Any) -> None:  # horizontal: ten ways' names do not fit under bars
        names = [r["way"] for r in rows][::-1]
        values = [r["warping_error"] for r in rows][::-1]
        ax.barh(names, values, color=["#8172b3" if n.startswith("painted") else "#4c72b0" for n in names])
        for y, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (v, y), va="center", ha="left", fontsize=7)
        ax.set_title("E_warp at equal strength", fontsize=10)
        ax.tick_params(labelsize=7)

    return [error_panel, strength_panel]


def _lanes_panels(figures: Figures) -> list[Panel]:
    lanes_rows = list(figures.get("lanes", {}).get("rows", []))
    if not lanes_rows:
        return []

    def lanes_panel(ax: Any) -> None:
        for setting in dict.fromkeys(r["setting"] for r in lanes_rows):
            rows = [r for r in lanes_rows if r["setting"] == setting]
            ax.plot([r["lanes"] for r in rows], [r["frames_per_s"] for r in rows], marker="o", label=setting)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lanes", fontsize=8)
        ax.set_title(f"frames/s, {figures['lanes']['width']}×{figures['lanes']['height']}", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)

    return [lanes_panel]


def _render_panels(figures: Figures) -> list[Panel]:
    render_rows = list(figures.get("render", []))
    if not render_rows:
        return []

    def render_panel(ax: Any) -> None:
        labels = [f"{r['width']}×{r['height']}\n{r['lanes']} lane(s)\n{r['frames_per_s']:.1f} f/s" for r in render_rows]
        left = [0.0] * len(render_rows)
        for stage, colour in (("dream", "#4c72b0"), ("decode", "#dd8452"), ("flow", "#55a868"), ("encode", "#c44e52")):
            per_frame = [1000 * r[f"{stage}_seconds"] / r["frames"] for r in render_rows]
            ax.barh(labels, per_frame, left=left, color=colour, label=stage)
            left = [a + b for a, b in zip(left, per_frame)]
        ax.set_xlabel("ms per frame (stages other than dream overlap it)", fontsize=8)
        ax.set_title("render stages", fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)

    return [render_panel]
