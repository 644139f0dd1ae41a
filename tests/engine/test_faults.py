"""The fault-injection aid is not a setting, and a fault it does not know is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from distdream.config import JobOptions
from distdream.engine import submit
from distdream.engine.faults import FAULT_KINDS, Fault, checked_faults
from distdream.errors import ConfigError


def test_an_unknown_fault_kind_is_refused_before_the_job_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown fault kind 'explode'"):
        submit(tmp_path / "in.mp4", tmp_path / "out.mp4", faults=(Fault(kind="explode"),))
    with pytest.raises(ConfigError, match="ray='never' cannot take them"):
        submit(tmp_path / "in.mp4", tmp_path / "out.mp4", ray="never", faults=(Fault(),))
    assert list(tmp_path.iterdir()) == []
    assert checked_faults([Fault(kind=kind) for kind in FAULT_KINDS]) == tuple(Fault(kind=k) for k in FAULT_KINDS)


def test_faults_are_not_a_job_option() -> None:
    with pytest.raises(TypeError):
        JobOptions(inject_faults=(Fault(),))  # type: ignore[call-arg]
