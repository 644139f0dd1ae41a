"""Chunk planning: exact partitions, lead-ins inside the video, cuts respected (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distdream.errors import ConfigError
from distdream.plan import Chunk, plan_chunks


def test_simple_plan() -> None:
    chunks = plan_chunks(100, 30, 5)
    assert [(c.start, c.end, c.lead_in, c.tail) for c in chunks] == [
        (0, 30, 0, 5), (30, 60, 5, 5), (60, 100, 5, 0)  # the 10-frame remainder joins the last chunk
    ]
    assert [c.name for c in chunks] == ["00000", "00001", "00002"]
    assert chunks[1].first == 25 and chunks[1].dreamed == 35
    assert Chunk(**chunks[1].to_dict()) == chunks[1]


def test_boundary_snaps_to_a_nearby_cut_and_needs_no_lead_in() -> None:
    chunks = plan_chunks(100, 30, 5, cuts=[33])
    assert chunks[1].start == 33 and chunks[1].lead_in == 0 and chunks[0].tail == 0


def test_a_cut_in_the_lead_in_window_becomes_the_seam_and_one_beyond_it_is_left_alone() -> None:
    # planned boundary at 100 with a 10-frame lead-in window [90, 100); snapping reaches 10 frames
    inside = plan_chunks(200, 50, 10, cuts=[92])
    assert [(c.start, c.lead_in) for c in inside] == [(0, 0), (50, 10), (92, 0), (142, 10)]  # on the cut
    beyond = plan_chunks(200, 50, 10, cuts=[89])  # 11 frames away: not snapped …
    assert [(c.start, c.lead_in) for c in beyond] == [(0, 0), (50, 10), (100, 10), (150, 10)]
    assert beyond[2].first == 90 > 89  # … and the lead-in stops short of it


def test_seeds_depend_on_job_seed_and_index_only() -> None:
    a, b = plan_chunks(100, 30, 5, seed=3), plan_chunks(100, 30, 5, seed=3)
    assert [c.seed for c in a] == [c.seed for c in b] and len({c.seed for c in a}) == len(a)
    assert [c.seed for c in plan_chunks(100, 30, 5, seed=4)] != [c.seed for c in a]


def test_frame_range() -> None:
    chunks = plan_chunks(1000, 40, 8, frame_range=(100, 190))
    assert chunks[0].start == 100 and chunks[-1].end == 190 and chunks[0].lead_in == 0
    assert all(c.first >= 100 for c in chunks)


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((100, 30, 20), {}, "overlap"),
        ((100, 0, 0), {}, "chunk_frames"),
        ((100, 30, 5), {"frame_range": (50, 40)}, "frame range"),
        ((100, 30, 5), {"frame_range": (0, 101)}, "frame range"),
    ],
)
def test_bad_plans(args, kwargs, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        plan_chunks(*args, **kwargs)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 3000),
    chunk=st.integers(1, 400),
    overlap_share=st.floats(0, 0.5),
    cut_frames=st.lists(st.integers(0, 3000), max_size=12),
    window=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_plan_properties(n, chunk, overlap_share, cut_frames, window) -> None:
    overlap = int(chunk * overlap_share)
    lo, hi = sorted(window)
    a = min(int(lo * n), n - 1)
    b = max(a + 1, int(hi * n))
    cuts = [c for c in cut_frames if c < n]
    chunks = plan_chunks(n, chunk, overlap, cuts, frame_range=(a, b))
    # owned ranges partition [a, b) exactly, in order
    assert chunks[0].start == a and chunks[-1].end == b
    assert all(x.end == y.start for x, y in zip(chunks, chunks[1:]))
    assert all(c.owned >= 1 for c in chunks)
    for k, c in enumerate(chunks):
        assert c.index == k
        assert a <= c.first <= c.start and c.lead_in <= overlap  # lead-ins inside the range
        if k:
            assert c.lead_in < chunks[k - 1].owned and chunks[k - 1].tail == c.lead_in
        # a lead-in never contains a cut after its keyframe; a seam on a cut has no lead-in
        assert not any(c.first < cut <= c.start and c.lead_in for cut in cuts if cut != c.first)
    assert chunks[-1].tail == 0
