"""Renders submitted to a Ray cluster as batch jobs, through its dashboard's Jobs API.

``distdream submit`` sends ``distdream render … --resume --address auto`` as a Ray job whose id
is derived from the render itself, so a resubmission finds the running (or finished) job instead
of starting a duplicate. Clusters with Ray's token authentication: the token in ``RAY_AUTH_TOKEN``
(with ``RAY_AUTH_MODE=token``) is what Ray's client sends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..errors import JobError

__all__ = ["RemoteJobs", "submission_id"]


def submission_id(input: str, output: str, entrypoint_args: Sequence[str]) -> str:
    """A job's submission id, derived from what it renders: a resubmit finds the same job."""
    digest = hashlib.sha256(json.dumps([input, output, list(entrypoint_args)]).encode()).hexdigest()[:12]
    return f"distdream-{digest}"


class RemoteJobs:
    """Submit, watch and stop renders on a Ray cluster through its dashboard (Ray Jobs API)."""

    TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

    def __init__(self, address: str, timeout: float = 15.0, token: str | None = None) -> None:
        """Connect to the dashboard at ``address``; ``token`` is the cluster's Ray auth token, sent as a
        bearer header (without it, Ray's client uses ``RAY_AUTH_TOKEN`` or its token file)."""
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as Timeout

        from ray.job_submission import JobSubmissionClient

        headers = {"Authorization": f"Bearer {token}"} if token else None
        # The client checks the connection when built; a silent address must not hang the CLI.
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(JobSubmissionClient, address, headers=headers)
        try:
            self.client = future.result(timeout=timeout)
        except Timeout:
            raise JobError(f"no answer from the Ray dashboard at {address} within {timeout:.0f} s; "
                           "is the head running and the port (default 8265) reachable?") from None
        except Exception as exc:  # requests/ConnectionError/RuntimeError, depending on the failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            hint = ""
            if "uthentication" in first or "401" in first:  # the cluster uses Ray's token authentication
                hint = "; pass --token-file with the cluster's token (or set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)"
            raise JobError(f"cannot reach the Ray dashboard at {address}: {first[:300]}{hint}") from None
        finally:
            pool.shutdown(wait=False)
        self.address = address

    def _ids(self, base: str) -> list[Any]:
        return [j for j in self.client.list_jobs() if (j.submission_id or "").startswith(base)]

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
        self.client.submit_job(entrypoint=entrypoint, submission_id=sid,
                               runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
                               metadata={"tool": "distdream"})
        return sid, None

    def status(self, sid: str) -> str:
        try:
            return str(self.client.get_job_status(sid)).split(".")[-1]
        except RuntimeError as exc:
            raise JobError(f"no job {sid!r} on {self.address}: {str(exc).splitlines()[0][:200]}") from None

    def logs(self, sid: str) -> str:
        self.status(sid)
        return self.client.get_job_logs(sid)

    def stop(self, sid: str) -> bool:
        self.status(sid)
        return bool(self.client.stop_job(sid))
