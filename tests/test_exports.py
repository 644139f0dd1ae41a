"""The public names: each package's ``__all__`` is sorted, complete and importable, and the lazy
names of ``distdream`` resolve to what the type checker is told they are (as httpx tests its own)."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import distdream

PACKAGES = ["distdream", "distdream.engine", "distdream.video", "distdream.errors", "distdream.config"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_every_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    names = module.__all__
    assert names == sorted(set(names)), f"{name}.__all__ is not sorted, or repeats a name"
    for member in names:
        value = getattr(module, member)  # the lazy ones load their module here
        if inspect.isclass(value) or inspect.isfunction(value):  # ours, not a re-exported dependency's
            assert value.__module__.startswith("distdream"), (name, member, value.__module__)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_class_and_function_defined_in_a_package_init_is_exported(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", "") == module.__name__
    }
    assert defined <= set(module.__all__), defined - set(module.__all__)


def test_the_lazy_names_match_the_type_checking_imports() -> None:
    tree = ast.parse(Path(distdream.__file__).read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    told = {
        alias.name: node.module.lstrip(".")
        for node in guarded.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert told == distdream._LAZY
    eager = {n for n in distdream.__all__ if n not in distdream._LAZY}
    assert all(n in vars(distdream) for n in eager)  # the rest are imported at the top


def test_import_star_gives_all_and_loads_no_torch() -> None:
    script = (
        "import sys; ns = {}; exec('from distdream import *', ns); import distdream;"
        "print(sorted(k for k in ns if not k.startswith('__')) == sorted(distdream.__all__), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # `import *` resolves every lazy name, so it loads torch; a plain import does not
    assert done.stdout.split() == ["True", "True"]
    plain = subprocess.run(
        [sys.executable, "-c", "import sys, distdream; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.stdout.strip() == "False", plain.stderr
