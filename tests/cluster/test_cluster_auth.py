"""The cluster page's commands (docs/cluster.md) against a head as `ray start --head` makes it where a token
exists: Ray's token authentication on. The token is found where Ray keeps it once the cluster
asks; without one the error says what to do. A module of its own: one head at a time."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distdream.samples import pan_frames, write_clip
from distdream.video import probe
from tests.engine.test_submit import LIGHT, RAY, ray_head, run

# a Ray head started with `ray start`, token auth on (the shared instance goes first)
pytestmark = [pytest.mark.ray, pytest.mark.own_ray]


@pytest.fixture(scope="module")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`ray start --head` as Ray 2.60 starts it where a token exists: token authentication on (a
    HOME of the test's own holds ~/.ray/auth_token). Yields the dashboard and HOME."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {"HOME": str(home)}
    # the cluster page's first step (and what any local `ray.init` leaves behind): with a token in
    # ~/.ray/auth_token, `ray start --head` turns token authentication on
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, env=env, capture_output=True, timeout=60)
    with ray_head(env) as address:
        assert (home / ".ray" / "auth_token").read_text().strip()  # token auth is on, by default
        yield address, home


def test_the_cluster_readme_commands_against_a_head_with_default_token_auth(
    token_head, capsys, monkeypatch, tmp_path: Path
) -> None:
    address, home = token_head
    for key in [k for k in os.environ if k.startswith("RAY_AUTH")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no token anywhere: a clear error, not a traceback
    deadline = time.monotonic() + 120
    while True:
        code, _, err = run(capsys, "status", "distdream-x", "--address", address)
        if "asks for its Ray auth token" in err or time.monotonic() > deadline:
            break
        time.sleep(1)  # the dashboard is still starting
    assert code == 2 and "pass --token-file, or set RAY_AUTH_TOKEN" in err, err
    monkeypatch.setenv("HOME", str(home))  # where `ray start` put it: found when the cluster asks
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(40, 64, 48))[:8], audio=None)
    out = tmp_path / "out.mp4"
    code, stdout, err = run(capsys, "submit", str(clip), "-o", str(out), "--address", address, *LIGHT)
    assert code == 0 and stdout.startswith("submitted distdream-"), err
    sid = stdout.split()[-1]
    code, stdout, err = run(capsys, "logs", sid, "--follow", "--address", address)
    assert code == 0 and stdout.strip().endswith(f"{sid}: SUCCEEDED"), stdout + err
    code, stdout, _ = run(capsys, "status", sid, "--address", address)
    assert code == 0 and stdout.strip() == "SUCCEEDED" and probe(out).frame_count == 8
