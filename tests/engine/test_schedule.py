"""The chunk runners' bookkeeping (:class:`~distdream.engine.schedule.Schedule`) and the Ray
workers' pool (:class:`~distdream.engine.pool.WorkerPool`), on their own: fake actors, a clock the
test turns. No Ray instance is started."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import ray

from distdream.chunking import Chunk
from distdream.config import RenderConfig
from distdream.engine.board import Board
from distdream.engine.pool import WorkerPool
from distdream.engine.prepare import Prepared
from distdream.engine.records import ChunkStatus, JobPlan
from distdream.engine.schedule import Schedule
from distdream.engine.workdir import Ledger
from distdream.errors import ChunkFailed, JobError
from distdream.options import JobOptions


def chunk(index: int, start: int, begins: str = "cut", hands_off: bool = False) -> Chunk:
    return Chunk(index, start, start + 10, 0, 0, index, begins=begins, hands_off=hands_off)


def schedule(tmp_path: Path, chunks: list[Chunk], max_attempts: int = 2) -> Schedule:
    checked: Any = SimpleNamespace(layout=None, config=RenderConfig())
    index: Any = None
    prepared = Prepared(
        JobPlan("in.mp4", index, tuple(chunks), "h"),
        checked,
        Ledger(str(tmp_path / "ledger.json")),
        (),
        "cpu",
        1,
        1,
        0,
        1,
        1,
    )
    options = JobOptions(max_attempts=max_attempts)
    return Schedule(Board(), options, prepared, str(tmp_path), list(chunks), set(), set(), 1, 1)


def test_long_handoff_chains_start_first_and_a_handoff_waits_for_its_predecessor(tmp_path: Path) -> None:
    # chunk 0 alone; 1 → 2 → 3 a chain of handoffs; 4 alone
    chunks = [
        chunk(0, 0),
        chunk(1, 10, hands_off=True),
        chunk(2, 20, "handoff", hands_off=True),
        chunk(3, 30, "handoff"),
        chunk(4, 40),
    ]
    s = schedule(tmp_path, chunks)
    order = [s.next_chunk().index for _ in range(3)]  # type: ignore[union-attr]
    assert order == [1, 0, 4]  # the chain first, then single chunks in frame order
    assert s.next_chunk() is None  # 2 waits for 1's carried state
    s.finished(chunks[1], {"stats": {}, "host": "h", "node": "n"})
    assert s.next_chunk() == chunks[2]
    assert s.attempts == {0: 1, 1: 1, 2: 1, 4: 1}
    assert s.summary().rendered == 1


def test_a_failed_chunk_goes_back_first_until_its_attempts_run_out(tmp_path: Path) -> None:
    chunks = [chunk(0, 0), chunk(1, 10)]
    s = schedule(tmp_path, chunks, max_attempts=2)
    first = s.next_chunk()
    assert first == chunks[0]
    s.failed(first, "boom")
    assert s.queue[0] == chunks[0] and s.board.chunks()[0].state == ChunkStatus.PENDING
    assert s.next_chunk() == chunks[0]  # retried before the next chunk
    with pytest.raises(ChunkFailed, match="boom"):
        s.failed(chunks[0], "boom")
    assert s.board.chunks()[0].state == ChunkStatus.FAILED


class FakeActor:
    def __init__(self, pool: FakeRay, n: int) -> None:
        self.pool, self.n = pool, n
        self.ping = SimpleNamespace(remote=lambda: pool.ref(self))


class FakeRay:
    """Ray's part for the pool: actors made, pings as refs, answers the test sets, kills recorded."""

    def __init__(self) -> None:
        self.actors: list[FakeActor] = []
        self.answers: dict[int, Any] = {}  # actor number → token, or an exception
        self.killed: list[tuple[int, bool]] = []

    def make(self) -> FakeActor:
        self.actors.append(FakeActor(self, len(self.actors)))
        return self.actors[-1]

    def ref(self, actor: FakeActor) -> tuple[str, int]:
        return ("ping", actor.n)

    def get(self, ref: tuple[str, int]) -> Any:
        answer = self.answers[ref[1]]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def kill(self, actor: FakeActor, no_restart: bool) -> None:
        self.killed.append((actor.n, no_restart))


def pool(fake: FakeRay, clock: list[float], size: int = 2, lanes: int = 2, failures: int = 2) -> WorkerPool:
    return WorkerPool(
        fake.make, size, lanes, 60.0, failures, clock=lambda: clock[0], get=fake.get, kill_actor=fake.kill
    )


def test_a_worker_gets_chunks_only_once_it_answers(tmp_path: Path) -> None:
    fake, clock = FakeRay(), [0.0]
    p = pool(fake, clock)
    assert p.take() is None and p.answering() == 0 and len(p.pings()) == 2
    fake.answers[0] = "token-a"
    p.answered(p.pings()[0])
    assert p.answering() == 1
    assert [p.take(), p.take(), p.take()] == [0, 0, None]  # its two lanes, no more
    p.give_back(0)
    assert p.take() == 0


def test_a_worker_that_does_not_answer_in_time_is_replaced_and_repeated_failures_fail_the_job() -> None:
    fake, clock = FakeRay(), [0.0]
    p = pool(fake, clock, size=1, failures=2)
    clock[0] = 61.0
    p.check_starts()  # the first failure: replaced
    assert fake.killed == [(0, True)] and len(fake.actors) == 2 and p.slots[0].incarnation == 1
    clock[0] = 200.0
    with pytest.raises(JobError, match="2 workers failed to start; the last one: it did not answer within 60 s"):
        p.check_starts()


def test_a_worker_that_dies_while_starting_is_replaced() -> None:
    fake, clock = FakeRay(), [0.0]
    p = pool(fake, clock, size=1, failures=3)
    fake.answers[0] = ray.exceptions.RayActorError()
    p.answered(p.pings()[0])
    assert p.start_failures == 1 and len(fake.actors) == 2 and p.answering() == 0


def test_a_lost_worker_gets_chunks_again_only_as_a_new_incarnation() -> None:
    fake, clock = FakeRay(), [0.0]
    p = pool(fake, clock, size=1, lanes=1)
    fake.answers[0] = "old"
    p.answered(p.pings()[0])
    slot = p.take()
    assert slot == 0
    p.lost(0, born=0)  # its chunk's worker died: pinged again
    assert p.take() is None
    p.answered(p.pings()[0])  # the dying process answers as its old self: asked again
    assert p.take() is None and len(p.pings()) == 1
    clock[0] = WorkerPool.DYING + 1  # … and after DYING seconds it is made to restart
    p.answered(p.pings()[0])
    assert fake.killed == [(0, False)]
    fake.answers[0] = "new"
    p.answered(p.pings()[0])
    assert p.take() == 0  # the new incarnation gets the lane back


def test_idle_workers_retire_when_no_chunk_is_left_and_one_comes_back_for_a_retry() -> None:
    fake, clock = FakeRay(), [0.0]
    p = pool(fake, clock, size=2, lanes=1)
    for ref in p.pings():
        fake.answers[ref[1]] = f"t{ref[1]}"
        p.answered(ref)
    busy = p.take()
    p.retire_idle()
    assert [s.retired for s in p.slots] == [busy != 0, busy != 1]
    p.give_back(busy)  # type: ignore[arg-type]
    p.retire_idle()
    assert all(s.retired for s in p.slots) and p.answering() == 0
    p.revive()
    assert len(fake.actors) == 3 and len(p.pings()) == 1
