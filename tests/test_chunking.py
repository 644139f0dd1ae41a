"""Chunk planning: exact partitions, lead-ins inside the video, cuts respected (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distdream.chunking import Chunk, chains, parallelism, plan_chunks
from distdream.errors import ConfigError


def test_simple_plan() -> None:
    chunks = plan_chunks(100, 30, 5, seams="crossfade")
    # boundaries every 30 frames, the remainder joining the last chunk; then each boundary moves
    # so that the chunks dream 33, 33 and 44 frames (30 : 30 : 40 with the 10 lead-in frames shared)
    assert [(c.start, c.end, c.lead_in, c.tail, c.begins) for c in chunks] == [
        (0, 33, 0, 5, "start"),
        (33, 61, 5, 5, "crossfade"),
        (61, 100, 5, 0, "crossfade"),
    ]
    assert [c.name for c in chunks] == ["00000", "00001", "00002"]
    assert chunks[1].first == 28 and chunks[1].dreamed == 33
    assert Chunk(**chunks[1].to_dict()) == chunks[1]


def test_default_overlap_is_sixteen_frames_and_at_most_half_a_chunk() -> None:
    # the default crossfade window; small chunks get a shorter one instead of an error
    assert [c.lead_in for c in plan_chunks(360, 120, None, seams="crossfade")] == [0, 16, 16]
    assert [c.lead_in for c in plan_chunks(30, 10, None, seams="crossfade")] == [0, 5, 5]
    assert [c.lead_in for c in plan_chunks(30, 10, 2, seams="crossfade")] == [0, 2, 2]  # an explicit one stands
    with pytest.raises(ConfigError, match="overlap"):
        plan_chunks(30, 10, 6, seams="crossfade")


def test_handoffs_chain_a_shot_and_cuts_start_new_chains() -> None:
    chunks = plan_chunks(100, 30, 5, cuts=[42], seams="handoff")
    assert [(c.start, c.end, c.lead_in, c.begins, c.hands_off) for c in chunks] == [
        (0, 42, 0, "start", False),  # a 42-frame shot: one chunk (the 12-frame remainder joins it)
        (42, 72, 0, "cut", True),
        (72, 100, 0, "handoff", False),
    ]
    assert [[c.index for c in chain] for chain in chains(chunks)] == [[0], [1, 2]]
    assert parallelism(chunks) == pytest.approx(100 / 58)


def test_auto_seams_chain_until_a_chain_holds_its_share_then_crossfade() -> None:
    # one 240-frame shot, chunks of 60: one slot takes it as one chain; more slots split it
    one = plan_chunks(240, 60, 8, seams="auto", slots=1)
    assert [c.begins for c in one] == ["start", "handoff", "handoff", "handoff"] and parallelism(one) == 1.0
    two = plan_chunks(240, 60, 8, seams="auto", slots=2)
    assert [c.begins for c in two] == ["start", "handoff", "crossfade", "handoff"]
    assert [len(chain) for chain in chains(two)] == [2, 2] and parallelism(two) == 2.0  # 124 dreamed frames each
    four = plan_chunks(240, 60, 8, seams="auto", slots=4)
    assert [c.begins for c in four] == ["start", "crossfade", "crossfade", "crossfade"]
    # seams on cuts cost nothing: four shots of 60 stay four independent chains at any slot count
    shots = plan_chunks(240, 60, 8, cuts=[60, 120, 180], seams="auto", slots=1)
    assert [c.begins for c in shots] == ["start", "cut", "cut", "cut"] and parallelism(shots) == 4.0


def test_a_boundary_sits_on_every_cut_and_no_lead_in_reaches_across_one() -> None:
    chunks = plan_chunks(200, 50, 10, cuts=[92, 97], seams="crossfade")
    assert [(c.start, c.lead_in, c.begins) for c in chunks] == [
        (0, 0, "start"),
        (55, 10, "crossfade"),  # 50, moved 5 frames so that both sides dream 46 + 1 frames
        (92, 0, "cut"),
        (97, 0, "cut"),
        (152, 10, "crossfade"),
    ]


def test_chains_side_by_side_dream_the_same_frames_lead_in_included() -> None:
    # a 240-frame shot for two workers: the crossfading chunk's 16 lead-in frames are shared, so
    # neither waits for the other (without it: 120 against 136 frames)
    assert [(c.start, c.end, c.dreamed) for c in plan_chunks(240, 120, None, slots=2)] == [
        (0, 128, 128),
        (128, 240, 128),
    ]
    # the share follows what each chain owns: three chains of 253, 253 and 126 dreamed frames
    chunks = plan_chunks(600, 120, None, slots=2)
    assert [sum(c.dreamed for c in chain) for chain in chains(chunks)] == [253, 253, 126]
    # the boundaries move at most one lead-in, and never where a chunk would get shorter than it
    # was and than two lead-ins
    for frames, overlap in [(900, 20), (900, 10), (1000, 16), (333, 5)]:
        moved = plan_chunks(frames, 40, overlap, seams="crossfade")
        fixed = plan_chunks(frames, 40, 0, seams="crossfade")
        assert len(moved) == len(fixed) and any(c0.start != c1.start for c0, c1 in zip(moved, fixed)) == (overlap < 20)
        for c0, c1 in zip(moved, fixed):
            assert abs(c0.start - c1.start) <= overlap and c0.owned >= min(c1.owned, 2 * overlap)


def test_seeds_follow_the_frame_a_dream_starts_at() -> None:
    a, b = plan_chunks(100, 30, 5, seed=3), plan_chunks(100, 30, 5, seed=3)
    assert [c.seed for c in a] == [c.seed for c in b] and len({c.seed for c in a}) == len(a)
    assert [c.seed for c in plan_chunks(100, 30, 5, seed=4)] != [c.seed for c in a]
    whole = plan_chunks(100, 30, 5, cuts=[40], seams="handoff")
    alone = plan_chunks(100, 30, 5, frame_range=(40, 100), seams="handoff")
    assert whole[1].seed == alone[0].seed  # a shot rendered alone starts with the same jitter


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
        ((100, 30, 5), {"seams": "zipper"}, "seams"),
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
    seams=st.sampled_from(["auto", "handoff", "crossfade"]),
    slots=st.integers(1, 16),
)
def test_plan_properties(n, chunk, overlap_share, cut_frames, window, seams, slots) -> None:
    overlap = int(chunk * overlap_share)
    lo, hi = sorted(window)
    a = min(int(lo * n), n - 1)
    b = max(a + 1, int(hi * n))
    cuts = [c for c in cut_frames if c < n]
    chunks = plan_chunks(n, chunk, overlap, cuts, frame_range=(a, b), seams=seams, slots=slots)
    # owned ranges partition [a, b) exactly, in order
    assert chunks[0].start == a and chunks[-1].end == b
    assert all(x.end == y.start for x, y in zip(chunks, chunks[1:]))
    assert all(c.owned >= 1 for c in chunks)
    inside = {c for c in cuts if a < c < b}
    assert inside <= {c.start for c in chunks}  # a boundary on every cut
    for k, c in enumerate(chunks):
        assert c.index == k
        assert a <= c.first <= c.start and c.lead_in <= overlap  # lead-ins inside the range
        assert c.begins == ("start" if k == 0 else "cut" if c.start in inside else c.begins)
        assert (c.lead_in > 0) == (c.begins == "crossfade")  # only crossfades dream a lead-in
        assert c.hands_off == (k + 1 < len(chunks) and chunks[k + 1].begins == "handoff")
        if k:
            assert c.lead_in < chunks[k - 1].owned and chunks[k - 1].tail == c.lead_in
        assert not any(c.first < cut < c.start for cut in cuts)  # a lead-in never reaches across a cut
        if seams == "handoff":
            assert c.begins != "crossfade"
    assert chunks[-1].tail == 0 and not chunks[-1].hands_off


def test_the_public_plan_is_the_function_even_after_the_engine_loads() -> None:
    # a submodule named like a public function would replace it on the package once imported
    import distdream
    import distdream.engine

    assert distdream.plan is distdream.engine.plan and callable(distdream.plan)
