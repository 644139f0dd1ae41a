"""Preparing a job's work directory before its loop runs: the leases, the saved plan, the resume check.

:func:`prepare` takes the work directory's lease and the output's first (a second job must not
even read the plan), then either keeps a saved plan's chunks (a resume re-plans nothing: another
worker count could plan other chains) or plans anew (:class:`~.plan.Planner`), sizes the workers
where they will run, refuses a work directory of another render (naming what differs), and writes
``plan.json``. What it settles is a :class:`Prepared`. No Ray imported unless the job is on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..errors import JobError
from ..models import LoadedModel
from ..options import JobOptions
from ..video.naming import family
from .lease import Lease
from .planning import Planner, sizing_now
from .preflight import Checked, plan_record
from .records import JobPlan
from .sizing import check_fits, local_totals, workers_here
from .workdir import Ledger, differences, settings_hash, workdir_lease

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """What a job settled before its loop runs: plan, checks, ledger, lock and resources."""

    plan: JobPlan
    checked: Checked
    ledger: Ledger
    leases: tuple[Lease, ...]  # the work directory's, and the output's
    device: str
    workers: int
    cpus: float
    gpus: float
    threads: int
    lanes: int
    in_process: bool = False  # no Ray: the workers are threads of this process
    model: LoadedModel | None = None  # preflight's network, reused by an in-process worker


def take_leases(checked: Checked, options: JobOptions, on_lost: Callable[[str], None]) -> tuple[Lease, ...]:
    """Take the work directory's lease and the output's: one lock for every output that can
    name the same files (``.d.#.png.lock`` for ``d.%04d.png`` and ``d.%d.png``, which share
    ``d.1000.png`` onward; ``.out.mp4.lock`` for ``out.mp4``). ``on_lost`` hears if one is lost."""
    taken: list[Lease] = []
    shared = family(str(checked.output))
    wanted = [
        workdir_lease(str(checked.workdir), unsafe_ok=options.unsafe_lock, on_lost=on_lost),
        Lease(
            storage.join(storage.parent(shared), f".{storage.name_of(shared)}.lock"),
            f"output {checked.output}",
            unsafe_ok=options.unsafe_lock,
            on_lost=on_lost,
        ),
    ]
    try:
        for lease in wanted:
            lease.acquire()
            taken.append(lease)
    except BaseException:
        for lease in taken:
            lease.release()
        raise
    return tuple(taken)


def prepare(input: str, checked: Checked, planner: Planner, on_lost: Callable[[str], None]) -> Prepared:
    """Lock, plan (or keep the saved plan on a resume), size and record the job; see the module
    docstring. The leases are released again if anything here fails."""
    options = planner.options
    workdir = str(checked.workdir)
    plan_file = storage.join(workdir, "plan.json")
    storage.makedirs(workdir)
    leases = take_leases(checked, options, on_lost)  # before reading the plan: a second job must not even look
    try:
        sizing = sizing_now(options)
        saved = saved_plan(plan_file)
        if saved is not None and options.resume and isinstance(saved.get("chunks"), list):
            chunks = [Chunk(**c) for c in saved["chunks"]]
            in_process = planner.in_process(sizing, chunks)
        else:
            chunks, in_process = planner.chunks(checked.index, checked.config, sizing)
        if in_process:
            workers = 1 if len(chunks) == 1 or sizing.device != "cpu" else sizing.workers  # see chunk_slots
            sizing = workers_here(
                options, replace(sizing, workers=workers), local_totals()[0], checked.index.width * checked.index.height
            )
        else:
            planner.connect("")
            sizing = sizing_now(options)
            if options.address in (None, "", "local"):  # a Ray instance of this machine's: it gets no more
                from .cluster import totals  # Ray's side: imported only for a job on Ray

                check_fits(sizing, *totals())
        record = plan_record(input, checked.index, checked.config, checked.weights, sizing.device, chunks)
        record["settings_hash"] = settings_hash(record)
        if saved is not None:
            check_resume(workdir, saved, record, options.resume)
        for sub in ("chunks", "windows"):
            storage.makedirs(storage.join(workdir, sub))
        storage.write_text(plan_file, json.dumps(record | {"output": str(checked.output)}, indent=1, sort_keys=True))
        ledger = Ledger.load(storage.join(workdir, "ledger.json"))
    except BaseException:
        for lease in leases:
            lease.release()
        raise
    return Prepared(
        JobPlan(str(input), checked.index, tuple(chunks), record["settings_hash"]),
        checked,
        ledger,
        leases,
        sizing.device,
        sizing.workers,
        sizing.cpus,
        sizing.gpus,
        sizing.threads,
        sizing.lanes,
        in_process=in_process,
        model=checked.model,
    )


def saved_plan(plan_file: str) -> dict[str, Any] | None:
    """The work directory's ``plan.json``, or None where there is none."""
    if not storage.exists(plan_file):
        return None
    try:
        saved = json.loads(storage.read_text(plan_file))
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise JobError(f"{plan_file} is damaged; remove the work directory {storage.parent(plan_file)} to start over")
    return saved


def check_resume(workdir: str, saved: dict[str, Any], record: dict[str, Any], resume: bool) -> None:
    """Refuse a work directory of another render (naming what differs), or this one without --resume."""
    if saved.get("settings_hash") != record["settings_hash"]:
        diff = differences(saved, record) or ["the chunking or plan format"]
        raise JobError(
            f"work directory {workdir} holds another render; it differs in: {'; '.join(diff[:6])}"
            + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
            + ". Use another --workdir, or remove this one to start over"
        )
    if not resume:
        raise JobError(f"work directory {workdir} holds this render already; pass --resume to continue it")
