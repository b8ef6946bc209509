"""smalt's REST API for jobs: what ``smalt job`` does when ``SMALT_URL`` points at this server.

A job is submitted by the path of its YAML file, which the server reads with every file it
names (code, local inputs, conda files, components): the CLI and the server share a filesystem
(the same machine, or a shared mount).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from smalt.errors import InvalidSpecError
from smalt.server.deps import Jobs

router = APIRouter(tags=["jobs"])


class JobSubmission(BaseModel):
    file: str = Field(description="Absolute path of the job's YAML file, as the server sees it.")
    name: str | None = Field(default=None, description="The job's name (default: generated).")
    set: list[str] = Field(default_factory=list, description="Overrides, `key=value`, as `--set` takes them.")


def _load(submission: JobSubmission, params: dict[str, Any]) -> Any:
    from smalt import specs

    file = Path(submission.file)
    if not file.is_absolute() or not file.is_file():
        raise InvalidSpecError.one(
            f"The server cannot read the job file {submission.file}: the CLI and the server must share "
            "a filesystem (the same machine or a shared mount).", "file",
        )  # fmt: skip
    return specs.load("job", file, overrides=submission.set, params=params)


@router.post("/jobs", status_code=201)
def create_job(submission: JobSubmission, jobs: Jobs) -> dict[str, Any]:
    """Submit a job (command or pipeline); every problem is reported at once and nothing is queued."""
    return jobs.create_or_update(_load(submission, {"name": submission.name})).to_dict()


@router.post("/jobs/validate")
def validate_job(submission: JobSubmission, jobs: Jobs) -> dict[str, Any]:
    """Check a job as submitting would, running nothing: a pipeline's step names."""
    return {"steps": jobs.validate(_load(submission, {}))}


@router.get("/jobs")
def list_jobs(
    jobs: Jobs, status: str | None = None, experiment_name: str | None = None, include_archived: bool = False,
    max_results: int | None = None, order_by: str | None = None, parent_job_name: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Jobs, newest first or by ``order_by``; with ``parent_job_name``, a pipeline's steps."""
    found = jobs.list(status=status, experiment_name=experiment_name, include_archived=include_archived,
                      max_results=max_results, order_by=order_by, parent_job_name=parent_job_name)  # fmt: skip
    return [job.to_dict() for job in found]


@router.get("/jobs/{name}")
def get_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.get(name).to_dict()


@router.get("/jobs/{name}/stream", response_class=StreamingResponse)
def stream_job(name: str, jobs: Jobs) -> StreamingResponse:
    """Follow a job until it has finished, as JSON lines: ``{"log": "..."}`` for each piece of its
    log as it is written (a pipeline: every step's), then ``{"job": {...}}``, the finished job."""
    jobs.get(name)  # a missing job is a 404 before the stream starts

    def events() -> Iterator[bytes]:
        for chunk in jobs.stream(name):
            yield json.dumps({"log": chunk}).encode() + b"\n"
        yield json.dumps({"job": jobs.get(name).to_dict()}).encode() + b"\n"

    return StreamingResponse(events(), media_type="application/x-ndjson")


@router.get("/jobs/{name}/metrics")
def job_metrics(name: str, jobs: Jobs, key: str | None = None) -> dict[str, list[dict[str, Any]]]:
    history = jobs.metric_history(name, key)
    return {k: [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in values]
            for k, values in history.items()}  # fmt: skip


@router.post("/jobs/{name}/cancel")
def cancel_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.cancel(name).to_dict()


@router.post("/jobs/{name}/archive", status_code=204)
def archive_job(name: str, jobs: Jobs) -> None:
    jobs.archive(name)


@router.post("/jobs/{name}/rerun", status_code=201)
def rerun_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.rerun(name).to_dict()
