"""The watchdog's limit: the job's own measured time per frame, not a fixed guess (pure, no Ray)."""

from __future__ import annotations

import pytest

from distdream.engine.watchdog import Watchdog


def test_before_any_frame_the_first_limit_holds_then_the_measured_one() -> None:
    dog = Watchdog(first_limit=3600.0)
    assert dog.seconds_per_frame is None and dog.limit(120) == 3600.0
    assert dog.why(120) == "no frame of the job was done yet"
    dog.start(0, now=100.0)
    dog.progress(0, 4, now=108.0)  # 4 frames in 8 s
    assert dog.seconds_per_frame == pytest.approx(2.0)
    assert dog.limit(120) == pytest.approx(10 * 2.0 * 120)  # ten times the chunk's expected time
    assert dog.limit(3) == 300.0  # but at least the floor
    assert "10× its 120 frames at the 2.00 s per frame measured" in dog.why(120)


def test_a_hung_chunk_is_late_in_minutes_once_others_have_measured_the_pace() -> None:
    dog = Watchdog(first_limit=64800.0)  # 18 h: the old fixed guess for 8 lanes of 120 frames
    dog.start(0, now=0.0)
    dog.start(1, now=0.0)  # hangs at its first frame
    for t in range(1, 31):
        dog.progress(0, 1, now=float(t))  # a frame a second
    assert dog.late({0: 120, 1: 120}, now=1000.0) == []
    assert dog.late({0: 120, 1: 120}, now=1201.0) == [0, 1]  # 10 × 120 × 1 s: both are past it …
    dog.stop(0)
    assert dog.late({1: 120}, now=1201.0) == [1]  # … and a finished chunk is not watched any more
    assert dog.seconds_per_frame == pytest.approx(1.0)  # its samples stay


def test_a_fixed_chunk_timeout_replaces_the_measure() -> None:
    dog = Watchdog(fixed=42.0)
    dog.start(0, now=0.0)
    dog.progress(0, 10, now=1.0)
    assert dog.limit(1000) == 42.0 and dog.why(1000) == "--chunk-timeout"
    assert dog.late({0: 1000}, now=43.0) == [0]


def test_progress_of_an_attempt_that_is_not_watched_is_ignored() -> None:
    dog = Watchdog()
    dog.progress(7, 3, now=5.0)  # a report that arrives after its attempt was given up
    assert dog.seconds_per_frame is None
