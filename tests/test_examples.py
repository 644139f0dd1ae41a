"""Every example runs as a user would run it, so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, tmp: Path) -> str:
    # The examples leave their clip and dream in a fresh temp folder for the user to look at;
    # TMPDIR puts that folder under pytest's, so the suite leaves nothing behind. Ray keeps its
    # sockets where it always does: under pytest's long path they would pass the 107-byte limit
    env = {**os.environ, "TMPDIR": str(tmp), "RAY_TMPDIR": os.environ.get("RAY_TMPDIR", tempfile.gettempdir())}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_render_api_example(tmp_path: Path) -> None:
    out = run_example("render_api.py", tmp_path)
    assert "wrote" in out and "24 frames" in out and "chunks" in out
    assert "lane(s), network in fp32, channels-last" in out  # CPU: fp32, channels-last (measured fastest)


def test_chunked_submission_example(tmp_path: Path) -> None:
    out = run_example("chunked_submission.py", tmp_path)
    assert "3 chunks" in out and "stopped:" in out and "the ledger keeps" in out
    resumed = [line for line in out.splitlines() if line.startswith("resumed:")][0]
    rendered = int(resumed.split("rendered ")[1].split(" of")[0])
    kept = len(out.split("the ledger keeps [")[1].split("]")[0].split(","))
    assert 1 <= kept < 3 and rendered == 3 - kept  # the resume rendered only what the cancel left undone


def test_the_notebook_runs_top_to_bottom_and_is_kept_without_outputs(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "distdream.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and not any(cell.outputs or cell.execution_count for cell in code)  # stored cleared
    os.environ.setdefault("RAY_TMPDIR", tempfile.gettempdir())
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(o.get("text", "") for cell in code for o in cell.outputs if o.get("name") == "stdout")
    shown = [o for cell in code for o in cell.outputs if o.output_type == "display_data"]
    assert "24 frames in" in printed and "2 workers" in printed and "warping error" in printed
    assert "workers: threads of this process" in printed  # on a CPU, as the notebook's text says
    kinds = {kind for o in shown for kind in o.data}
    assert {"image/png", "text/html"} <= kinds  # the pictures (atlas, plots) and the video player
