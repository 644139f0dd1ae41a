"""Write cluster/requirements.lock: every package the image installs, pinned by version and sha256.

Run it on Linux x86_64 with CPython 3.11 (the image's platform), from the repository root, after
changing a dependency in pyproject.toml:

    python cluster/lock.py

pip resolves the project as it would install it (reading only the packages' metadata) and reports
each artifact's hash; distdream itself is left out (the image installs it from the tree) and
setuptools, its build backend, is put in (the image builds it without reaching the index).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if (sys.version_info[:2], platform.system(), platform.machine()) != ((3, 11), "Linux", "x86_64"):
        print("run this with CPython 3.11 on Linux x86_64, the image's platform", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                str(ROOT),
                "setuptools>=68",
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    lines = []
    for item in sorted(installs, key=lambda i: i["metadata"]["name"].lower()):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if name == "distdream":
            continue
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
    header = "# Made by `python cluster/lock.py` (Linux x86_64, CPython 3.11): the image's packages, pinned.\n"
    (ROOT / "cluster" / "requirements.lock").write_text(header + "\n".join(lines) + "\n")
    print(f"wrote cluster/requirements.lock ({len(lines)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
