"""Start-up and small jobs: ``distdream render`` from the shell against a seed-style script.

Every figure is a command's wall time, run as a new process the way a user runs it (imports
included), side by side in one run on one machine, so the ratios hold where the seconds do not:

- the seed-style script's *start* (:mod:`.seed_script` ``--start-only``: import torch, build the
  model) against a one-frame render;
- the seed-style script over a pan against ``distdream render --workers 1`` and ``--workers 2``
  (both in this process: the workers are threads), at the same dream settings, plus the same two
  with ``--ray always`` to show what running without Ray saves (not in a quick run);
- when each phase line of the two-worker render appeared, and how long the first line took;
- how much of a second core this machine gives a second worker: the seed-style script as one
  CPU worker runs (one thread) over the pan's first frames, alone and two copies at once.
  ``pair_throughput`` is twice the time alone over the slower copy's time: a job ends with its
  slower worker, so no two-worker render can gain more than that here.

The pan renders run several times, interleaved, and each figure is the fastest run (a shared
machine's noise only ever adds time); every run's time is kept in ``runs``.

The settings are the issue's: ``_blocks.9``, 4 steps every frame, 2 octaves, no keyframe settling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..samples import pan_frames, write_clip
from .base import BenchRun, Echo, Figures, Panel, Parts, bars, recorded, row

__all__ = ["StartupBenchmark", "bench_startup"]

LIGHT = [
    "--dream-layers",
    "_blocks.9",
    "--num-iterations",
    "4",
    "--frame-iterations",
    "4",
    "--num-octaves",
    "2",
    "--keyframe-settle",
    "0",
]


@dataclass(frozen=True)
class StartupBenchmark:
    """Wall times (s) of commands run as new processes, and the two-worker render's phases."""

    frames: int
    width: int
    height: int
    seed_start_seconds: float  # python + import torch + build the model
    one_frame_seconds: float  # distdream render of a one-frame clip
    one_frame_over_seed_start: float
    seed_seconds: float  # the seed-style script over the pan
    one_worker_seconds: float  # distdream render --workers 1 (in process)
    one_worker_over_seed: float
    one_worker_ray_seconds: float | None  # --ray always --workers 1 (None: a quick run)
    two_workers_seconds: float  # --workers 2 (in process)
    two_workers_speedup: float  # one_worker_seconds / two_workers_seconds
    two_workers_ray_seconds: float | None  # --ray always --workers 2 (None: a quick run)
    first_line_seconds: float  # the two-worker render's first line of output
    pair_throughput: float  # 2 × the one-thread script's dream alone / the slower of two at once
    phases: list[tuple[float, str]]  # (seconds since the command started, phase line) of the two-worker render
    runs: dict[str, list[float]]  # every run's wall time (s), by figure

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _env() -> dict[str, str]:
    # children inherit no Ray address of ours: each render starts (or skips) its own
    return {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)} | {"PYTHONUNBUFFERED": "1"}


def _timed(cmd: list[str], timeout: float = 1800) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return time.perf_counter() - t0


def _watched(cmd: list[str], timeout: float = 1800) -> tuple[float, list[tuple[float, str]]]:
    """Wall time, and each phase line on stderr with when it appeared (progress bars' redraws
    reduced to their first appearance)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), bufsize=0)
    lines: list[tuple[float, str]] = []
    seen: set[str] = set()
    buffer = b""
    assert proc.stderr is not None
    while chunk := os.read(proc.stderr.fileno(), 4096):
        now = time.perf_counter() - t0
        buffer += chunk
        *parts, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
        for part in parts:
            text = part.decode(errors="replace").strip()
            key = text.split(":")[0] if ":" in text else text
            if text and key not in seen:
                seen.add(key)
                lines.append((round(now, 3), text[:100]))
        if now > timeout:
            proc.kill()
            raise RuntimeError(f"{' '.join(cmd[:4])} … ran past {timeout:.0f} s")
    code = proc.wait()
    if code:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({code}): {lines[-3:]}")
    return time.perf_counter() - t0, lines


def _seed_dreams(cmds: list[list[str]], timeout: float = 1800) -> list[float]:
    """Each command's own dream seconds (its ``end`` − ``start``), the commands run at once."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()) for cmd in cmds
    ]
    seconds = []
    for cmd, proc in zip(cmds, procs):
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({proc.returncode}): {err.strip()[-400:]}")
        said = json.loads(out.strip().splitlines()[-1])
        seconds.append(said["end"] - said["start"])
    return seconds


def bench_startup(*, quick: bool = False) -> StartupBenchmark:
    """The figures above, on a pan made on the fly (``quick``: 24 frames, no repeats and no Ray,
    else 240, at 96×64), in two chunks (two workers have a chunk each)."""
    frames, w, h = (24 if quick else 240), 96, 64
    starts, pans, seeds = (1, 1, 1) if quick else (2, 3, 2)  # runs of each figure
    render = [sys.executable, "-m", "distdream", "render", "--chunk-frames", str(frames // 2)]
    seed = [sys.executable, "-m", "distdream.bench.seed_script"]
    runs: dict[str, list[float]] = {}
    watched: list[tuple[float, list[tuple[float, str]]]] = []
    with tempfile.TemporaryDirectory(prefix="distdream-startup-") as tmp:
        d = Path(tmp)
        one = write_clip(d / "one.mp4", pan_frames(1, w, h), audio=None)
        pan = write_clip(d / "pan.mp4", pan_frames(frames, w, h), audio=None)

        def timed(name: str, cmd: list[str]) -> None:
            runs.setdefault(name, []).append(round(_timed(cmd), 3))

        for _ in range(starts):
            timed("seed_start", [*seed, str(one), str(d / "s0.mp4"), "--start-only"])
            timed("one_frame", [*render, str(one), "-o", str(d / "one-dream.mp4"), *LIGHT, "-q"])
        for _ in range(seeds):
            timed("seed", [*seed, str(pan), str(d / "seed.mp4")])
        for _ in range(pans):  # interleaved: a slow spell of the machine falls on both
            timed("one_worker", [*render, str(pan), "-o", str(d / "w1.mp4"), *LIGHT, "--workers", "1", "-q"])
            watched.append(_watched([*render, str(pan), "-o", str(d / "w2.mp4"), *LIGHT, "--workers", "2"]))
            runs.setdefault("two_workers", []).append(round(watched[-1][0], 3))

        def worker_like(out: str) -> list[str]:
            return [*seed, str(pan), str(d / out), "--threads", "1", "--frames", str(frames // 3)]

        for _ in range(seeds):  # alone, then two at once (each writes its own file)
            runs.setdefault("alone", []).append(round(_seed_dreams([worker_like("a.mp4")])[0], 3))
            pair = _seed_dreams([worker_like("p0.mp4"), worker_like("p1.mp4")])
            runs.setdefault("pair_slower", []).append(round(max(pair), 3))
        for workers in () if quick else ("1", "2"):
            timed(
                f"ray_{workers}",
                [*render, str(pan), "-o", str(d / "r.mp4"), *LIGHT, "--workers", workers, "--ray", "always", "-q"],
            )
    best = {name: min(times) for name, times in runs.items()}
    two, phases = min(watched)
    return StartupBenchmark(
        frames=frames,
        width=w,
        height=h,
        seed_start_seconds=best["seed_start"],
        one_frame_seconds=best["one_frame"],
        one_frame_over_seed_start=best["one_frame"] / best["seed_start"],
        seed_seconds=best["seed"],
        one_worker_seconds=best["one_worker"],
        one_worker_over_seed=best["one_worker"] / best["seed"],
        one_worker_ray_seconds=best.get("ray_1"),
        two_workers_seconds=two,
        two_workers_speedup=best["one_worker"] / two,
        two_workers_ray_seconds=best.get("ray_2"),
        first_line_seconds=phases[0][0] if phases else float("nan"),
        pair_throughput=2 * best["alone"] / best["pair_slower"],
        phases=phases,
        runs=runs,
    )


# -- the section: run, report, panels (distdream.bench.sections) --------------------


def _run_startup(run: BenchRun) -> Any:
    return bench_startup(quick=run.plan.quick)


def _show_startup(s: Mapping[str, Any], echo: Echo) -> None:
    echo(
        f"start-up and small jobs, commands from the shell, {s['frames']}-frame pan {s['width']}×{s['height']} "
        "(_blocks.9, 4 steps, 2 octaves):"
    )
    row(echo, "seed-style script's start (torch + model)", f"{s['seed_start_seconds']:8.1f} s")
    row(
        echo,
        "distdream render, one frame",
        f"{s['one_frame_seconds']:8.1f} s   ({s['one_frame_over_seed_start']:.2f}× the script's start; target ≤ 1.5×)",
    )
    row(echo, "seed-style script over the pan", f"{s['seed_seconds']:8.1f} s")
    row(
        echo,
        "distdream, 1 worker (in process)",
        f"{s['one_worker_seconds']:8.1f} s   ({s['one_worker_over_seed']:.2f}× the script; target ≤ 0.45×)",
    )
    row(
        echo,
        "distdream, 2 workers (in process)",
        f"{s['two_workers_seconds']:8.1f} s   ({s['two_workers_speedup']:.2f}× 1 worker; target ≥ 1.5×)",
    )
    row(
        echo,
        "the script, 1 thread, two at once",
        f"{s['pair_throughput']:8.2f}×   (a second worker's most on this machine: the slower of the pair)",
    )
    for workers, key in (("1 worker", "one_worker_ray_seconds"), ("2 workers", "two_workers_ray_seconds")):
        seconds = s.get(key)
        row(
            echo,
            f"distdream, {workers} on Ray (--ray always)",
            "not run (--quick)" if seconds is None else f"{seconds:8.1f} s",
        )
    runs = s.get("runs", {})
    if any(len(times) > 1 for times in runs.values()):
        row(
            echo,
            "each run (the figures are the fastest)",
            "; ".join(
                f"{name} {', '.join(f'{t:.1f}' for t in times)}" for name, times in runs.items() if len(times) > 1
            )[:200],
        )
    row(echo, "first line of output", f"{s['first_line_seconds']:8.2f} s")
    for at, line in s["phases"]:
        row(echo, f"  {at:6.1f} s", line[:60])


def _panels_startup(figures: Figures) -> list[Panel]:
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

    seconds = {
        "seed\nstart": s["seed_start_seconds"],
        "1\nframe": s["one_frame_seconds"],
        "seed": s["seed_seconds"],
        "1\nworker": s["one_worker_seconds"],
        "2\nworkers": s["two_workers_seconds"],
        "1 on\nRay": s.get("one_worker_ray_seconds"),
        "2 on\nRay": s.get("two_workers_ray_seconds"),
    }
    shown = {name: value for name, value in seconds.items() if value is not None}  # a quick run has no Ray rows
    return [
        lambda ax: bars(ax, list(shown), list(shown.values()), f"commands (s), {s['frames']} frames"),
        timeline,
    ]


PARTS = {
    "startup": Parts(recorded("startup", _run_startup), _show_startup, _panels_startup),
}


if __name__ == "__main__":  # a quick look without the rest of the bench
    print(json.dumps(bench_startup(quick="--quick" in sys.argv).to_dict(), indent=1))
