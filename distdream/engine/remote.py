"""Renders submitted to a Ray cluster as batch jobs, through its dashboard's Jobs API.

``distdream submit`` sends ``distdream render … --resume --address auto`` as a Ray job whose id
is derived from the render itself, so a resubmission finds the running (or finished) job instead
of starting a duplicate.

Every request ends: Ray's client has no timeout of its own, so each call runs on a daemon thread
and is given up after ``timeout`` seconds (a dashboard that accepts and never answers costs that,
and the process can still exit). A cluster with Ray's token authentication (``ray start --head``
turns it on by default) gets the token given, else the first of ``RAY_AUTH_TOKEN``, the file
``RAY_AUTH_TOKEN_PATH`` names, and ``~/.ray/auth_token``, once the server asks for one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import JobError

__all__ = ["RemoteJobs", "find_token", "submission_id"]

T = TypeVar("T")


def submission_id(input: str, output: str, entrypoint_args: Sequence[str]) -> str:
    """A job's submission id, derived from what it renders: a resubmit finds the same job."""
    digest = hashlib.sha256(json.dumps([input, output, list(entrypoint_args)]).encode()).hexdigest()[:12]
    return f"distdream-{digest}"


def find_token() -> str | None:
    """The Ray auth token where Ray's own tools look for it: ``RAY_AUTH_TOKEN``, the file named by
    ``RAY_AUTH_TOKEN_PATH``, then ``~/.ray/auth_token``."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), Path.home() / ".ray" / "auth_token"):
        try:
            token = Path(path).read_text().strip() if path else ""
        except OSError:
            continue
        if token:
            return token
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else exc.__class__.__name__)[:300]


def _asks_for_token(exc: BaseException) -> bool:
    text = f"{exc.__class__.__name__} {exc}"
    return "uthentication" in text or "401" in text or "Unauthorized" in text


class RemoteJobs:
    """Submit, watch and stop renders on a Ray cluster through its dashboard (Ray Jobs API)."""

    TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
    AGENT_WAIT = 60.0  # seconds a just-started head may take to accept jobs
    # the job's environment; Ray's job supervisor reads its own stop grace from it: after a stop's
    # SIGTERM it kills the render after 3 s by default, mid-stop (its lock left, its chunk torn);
    # a render stops within its own 25 s grace, so the supervisor waits longer than that
    JOB_ENV = {"PYTHONUNBUFFERED": "1", "RAY_JOB_STOP_WAIT_TIME_S": "35"}

    def __init__(self, address: str, timeout: float = 15.0, token: str | None = None) -> None:
        """Connect to the dashboard at ``address``; ``token`` is the cluster's Ray auth token, sent as a
        bearer header (without it, one is looked up when the server asks; see the module docstring)."""
        self.address, self.timeout, self.token = address, timeout, token
        try:
            self.client = self._connect(token)
        except JobError as exc:  # a dashboard that asks for a token even to say its version
            if not _asks_for_token(exc) or token is not None or (found := find_token()) is None:
                raise
            self.token, self.client = found, self._connect(found)

    def _bounded(self, call: Callable[[], T], doing: str) -> T:
        """``call()``'s result, or :class:`JobError` after ``timeout`` seconds (the thread is a
        daemon: a request that never returns does not keep the process alive)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=run, name="distdream-jobs-api", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            raise JobError(
                f"no answer from the Ray dashboard at {self.address} within {self.timeout:.0f} s while "
                f"{doing}; is the head running and the port (default 8265) reachable?"
            )
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _connect(self, token: str | None) -> Any:
        from ray.job_submission import JobSubmissionClient

        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            return self._bounded(lambda: JobSubmissionClient(self.address, headers=headers), "connecting")
        except JobError:
            raise
        except Exception as exc:  # requests/ConnectionError/RuntimeError, depending on the failure
            raise self._error(exc, "cannot reach the Ray dashboard") from None

    def _error(self, exc: BaseException, what: str) -> JobError:
        hint = ""
        if _asks_for_token(exc):  # the cluster uses Ray's token authentication
            hint = (
                "; the cluster asks for its Ray auth token: pass --token-file, or set RAY_AUTH_TOKEN (none was "
                "found there or in ~/.ray/auth_token)"
                if self.token is None
                else "; the token given was refused"
            )
        return JobError(f"{what} at {self.address}: {_first_line(exc)}{hint}")

    def _call(self, doing: str, call: Callable[[Any], T]) -> T:
        """A bounded request; asked for a token it has not sent, it finds one and asks again."""
        try:
            return self._bounded(lambda: call(self.client), doing)
        except JobError:
            raise
        except Exception as exc:
            if not _asks_for_token(exc) or self.token is not None or (found := find_token()) is None:
                raise self._error(exc, f"the Ray dashboard failed while {doing}") from None
        self.token, self.client = found, self._connect(found)
        try:
            return self._bounded(lambda: call(self.client), doing)
        except JobError:
            raise
        except Exception as exc:
            raise self._error(exc, f"the Ray dashboard failed while {doing}") from None

    def _ids(self, base: str) -> list[Any]:
        jobs = self._call("listing jobs", lambda c: c.list_jobs())
        return [j for j in jobs if (j.submission_id or "").startswith(base)]

    def submit(self, entrypoint: str, base_id: str) -> tuple[str, str | None]:
        """Submit ``entrypoint`` unless a job with this id runs or succeeded.

        Returns ``(id, None)`` for a new submission, or ``(id, state)`` of the job found.

        A failed or stopped earlier run keeps its id; the new one gets ``-2``, ``-3`` … and, since
        the entrypoint resumes, continues from that run's work directory.
        """
        earlier = self._ids(base_id)
        for job in earlier:
            state = str(job.status).split(".")[-1]
            if state not in self.TERMINAL or state == "SUCCEEDED":  # running, or done: nothing to add
                return job.submission_id, state
        sid = base_id if not earlier else f"{base_id}-{len(earlier) + 1}"
        deadline = time.monotonic() + self.AGENT_WAIT
        while True:
            try:
                self._call(
                    "submitting",
                    lambda c: c.submit_job(
                        entrypoint=entrypoint,
                        submission_id=sid,
                        runtime_env={"env_vars": self.JOB_ENV},
                        metadata={"tool": "distdream"},
                    ),
                )
                return sid, None
            except JobError as exc:  # a head that has just started: its job agent is not up yet
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)

    def status(self, sid: str) -> str:
        try:
            return str(self._call("reading the job's status", lambda c: c.get_job_status(sid))).split(".")[-1]
        except JobError as exc:
            if "404" in str(exc) or "does not exist" in str(exc):
                raise JobError(f"no job {sid!r} on {self.address}") from None
            raise

    def logs(self, sid: str) -> str:
        self.status(sid)
        return self._call("reading the job's log", lambda c: c.get_job_logs(sid))

    def stop(self, sid: str) -> bool:
        self.status(sid)
        return bool(self._call("stopping the job", lambda c: c.stop_job(sid)))
