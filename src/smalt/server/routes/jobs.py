"""smalt's REST API for jobs: what ``smalt job`` does when ``SMALT_URL`` points at this server.

A job is submitted as content, never as a path on the server: a tar archive of its YAML file and
every local file it names (what ``smalt.client.bundle`` packs). The archive is unpacked into a
scratch folder of the workspace and the spec is read confined to it: a path in the spec that
leads outside it is refused, and nothing on the server is read or run on a client's say-so.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smalt.errors import InvalidSpecError, SpecProblem
from smalt.server.access import requires
from smalt.server.deps import Jobs, MaxResultsQuery
from smalt.server.routes.workspaces import Workspace
from smalt.services.workspace import WorkspaceContext

#: What a job is once submitted: served at ``/api/v1/jobs`` (the server's workspace) and at
#: ``/api/v1/workspaces/{workspace}/jobs``.
router = APIRouter(tags=["jobs"])
#: Submitting a job file with its files (a tar archive): how the CLI submits a YAML file.
submissions = APIRouter(tags=["jobs"])
#: Submitting a job entity, its local files uploaded first (``routes/uploads.py``): how the SDK does.
entities = APIRouter(prefix="/workspaces/{workspace}/jobs", tags=["jobs"])

#: The largest submission archive taken (its code folders and local inputs together).
MAX_SUBMISSION_BYTES = 1 << 30
#: The most files one submission may hold.
MAX_SUBMISSION_FILES = 100_000
_ARCHIVE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
        "description": "A tar archive of the job's YAML file and every local file it names.",
    }
}
FileParam = Annotated[str, Query(max_length=1024, description="The job file's path inside the archive.")]
OriginParam = Annotated[str, Query(max_length=4096, description="The archive's root on the client: "
                                   "absolute paths in the spec are read against it.")]  # fmt: skip
SetParam = Annotated[list[str], Query(max_length=1000, description="Overrides, `key=value`, as `--set` takes them.")]
NameParam = Annotated[str | None, Query(max_length=255, description="The job's name (default: generated).")]


async def _receive(request: Request) -> IO[bytes]:
    """The request's archive as it arrives: kept in memory while small, spooled to disk past
    8 MiB, refused past the size bound."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - the caller closes it
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SUBMISSION_BYTES:
            spool.close()
            raise InvalidSpecError(
                [SpecProblem(f"the submission is larger than {MAX_SUBMISSION_BYTES >> 20} MiB", "body")],
                summary="The job's files are too large to send with it",
                hint="put large data in a datastore (smalt data create) and name it azureml:<name>:<version>",
            )
        spool.write(chunk)
    spool.seek(0)
    return spool


def _unpack(archive: IO[bytes], root: Path) -> None:
    """Unpack with the standard library's ``data`` filter: no absolute paths, no ``..``, no links
    leading out, no devices; refused whole if anything is."""
    try:
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            members = tar.getmembers()
            if len(members) > MAX_SUBMISSION_FILES:
                raise InvalidSpecError.one(f"The submission holds more than {MAX_SUBMISSION_FILES} files.", "body")
            for member in members:  # a client packs relative names; anything else is refused, not fixed
                if member.name.startswith("/") or ".." in member.name.split("/") or "\x00" in member.name:
                    raise InvalidSpecError.one(f"The submission's entry {member.name!r} leads outside it.", "body")
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidSpecError.one(f"The submission is not a valid tar archive: {exc}", "body") from None


def _load(root: Path, file: str, origin: str, overrides: list[str], params: dict[str, Any]) -> Any:
    from smalt import specs
    from smalt.specs.references import Submission, confined_to, resolve_local

    with confined_to(Submission(root, origin)):
        path = Path(resolve_local(file, root))
        if not path.is_file():
            raise InvalidSpecError.one(f"The submission holds no job file {file!r}.", "file")
        return specs.load("job", path, overrides=overrides, params=params)


def _as_sent(exc: InvalidSpecError, root: Path, origin: str) -> InvalidSpecError:
    """The error with the client's paths in it, not the scratch folder's."""
    here = str(root.resolve())

    def client(text: str | None) -> str | None:
        return text.replace(here, origin.rstrip("/") or "/") if text else text

    problems = [SpecProblem(str(client(p.message)), p.field, client(p.file), p.line) for p in exc.problems]
    return InvalidSpecError(problems, summary=client(exc.summary), hint=exc.hint)


#: The response header that carries what reading a submitted file warned of (JSON, a list of lines).
WARNINGS_HEADER = "Smalt-Warnings"


async def _submitted(
    request: Request, origin: str, then: Callable[[Path], dict[str, Any]], status_code: int = 200
) -> JSONResponse:
    """Receive the archive, unpack it into a scratch folder of the workspace, and give ``then``
    the folder; the folder is gone afterwards, whatever happened. What reading the files warned
    of (a key ignored) goes back in the ``Smalt-Warnings`` header, with the client's paths."""
    from smalt.specs.loader import collected_warnings

    archive = await _receive(request)
    ws: WorkspaceContext = request.app.state.workspace
    folder = ws.path / "submissions" / uuid.uuid4().hex
    # Named as on the client: a job whose code is that folder takes its name for the experiment.
    root = folder / (Path(origin).name or "files")

    def unpack_and_read() -> JSONResponse:
        with archive, collected_warnings() as warned:
            try:
                root.mkdir(parents=True)
                _unpack(archive, root)
                answer = then(root)
            except InvalidSpecError as exc:
                raise _as_sent(exc, root, origin) from None
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        here, there = str(root.resolve()), origin.rstrip("/") or "/"
        said = [line.replace(here, there) for line in warned]
        headers = {WARNINGS_HEADER: json.dumps(said)} if said else None
        return JSONResponse(answer, status_code=status_code, headers=headers)

    return await run_in_threadpool(unpack_and_read)


@submissions.post(
    "/jobs", status_code=201, openapi_extra=_ARCHIVE_BODY, dependencies=[requires("workspaces/jobs/write")]
)
async def create_job(
    request: Request, jobs: Jobs, file: FileParam, origin: OriginParam = "", name: NameParam = None,
    set: SetParam = [],  # noqa: A002, B006 - the CLI's --set; FastAPI copies the default
) -> JSONResponse:  # fmt: skip
    """Submit a job (command or pipeline) with its files; every problem is reported at once and
    nothing is queued."""

    def submit(root: Path) -> dict[str, Any]:
        job = _load(root, file, origin, set, {"name": name})
        return jobs.create_or_update(job).to_dict()

    return await _submitted(request, origin, submit, status_code=201)


@submissions.post("/jobs/validate", openapi_extra=_ARCHIVE_BODY, dependencies=[requires("workspaces/jobs/read")])
async def validate_job(
    request: Request, jobs: Jobs, file: FileParam, origin: OriginParam = "",
    set: SetParam = [],  # noqa: A002, B006
) -> JSONResponse:  # fmt: skip
    """Check a job as submitting would, running nothing: a pipeline's step names."""

    def check(root: Path) -> dict[str, Any]:
        return {"steps": jobs.validate(_load(root, file, origin, set, {}))}

    return await _submitted(request, origin, check)


@router.get("/jobs", dependencies=[requires("workspaces/jobs/read")])
def list_jobs(
    jobs: Jobs, status: Annotated[str | None, Query(max_length=64)] = None,
    experiment_name: Annotated[str | None, Query(max_length=256)] = None, include_archived: bool = False,
    max_results: MaxResultsQuery | None = None, order_by: Annotated[str | None, Query(max_length=256)] = None,
    parent_job_name: Annotated[str | None, Query(max_length=255)] = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Jobs, newest first or by ``order_by``; with ``parent_job_name``, a pipeline's steps."""
    found = jobs.list(status=status, experiment_name=experiment_name, include_archived=include_archived,
                      max_results=max_results, order_by=order_by, parent_job_name=parent_job_name)  # fmt: skip
    return [job.to_dict() for job in found]


@router.get("/jobs/{name}", dependencies=[requires("workspaces/jobs/read")])
def get_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.get(name).to_dict()


@router.get("/jobs/{name}/stream", response_class=StreamingResponse, dependencies=[requires("workspaces/jobs/read")])
def stream_job(name: str, jobs: Jobs) -> StreamingResponse:
    """Follow a job until it has finished, as JSON lines: ``{"log": "..."}`` for each piece of its
    log as it is written (a pipeline: every step's), then ``{"job": {...}}``, the finished job."""
    jobs.get(name)  # a missing job is a 404 before the stream starts

    def events() -> Iterator[bytes]:
        for chunk in jobs.stream(name):
            yield json.dumps({"log": chunk}).encode() + b"\n"
        yield json.dumps({"job": jobs.get(name).to_dict()}).encode() + b"\n"

    return StreamingResponse(events(), media_type="application/x-ndjson")


@router.get("/jobs/{name}/metrics", dependencies=[requires("workspaces/jobs/read")])
def job_metrics(name: str, jobs: Jobs, key: str | None = None) -> dict[str, list[dict[str, Any]]]:
    history = jobs.metric_history(name, key)
    return {k: [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in values]
            for k, values in history.items()}  # fmt: skip


@router.post("/jobs/{name}/cancel", dependencies=[requires("workspaces/jobs/cancel/action")])
def cancel_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.cancel(name).to_dict()


@router.post("/jobs/{name}/archive", status_code=204, dependencies=[requires("workspaces/jobs/write")])
def archive_job(name: str, jobs: Jobs) -> None:
    jobs.archive(name)


@router.post("/jobs/{name}/rerun", status_code=201, dependencies=[requires("workspaces/jobs/write")])
def rerun_job(name: str, jobs: Jobs) -> dict[str, Any]:
    return jobs.rerun(name).to_dict()


def _entity(body: dict[str, Any]) -> Any:
    from smalt import specs
    from smalt.specs.loader import refuse_local_paths

    refuse_local_paths("job", body)
    return specs.from_values("job", body)


@entities.post("", status_code=201, dependencies=[requires("workspaces/jobs/write")])
def create_job_entity(context: Workspace, jobs: Jobs, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Submit a job as its entity's JSON (``job.to_dict()``), naming no local path."""
    return jobs.create_or_update(_entity(body)).to_dict()


@entities.post("/validate", dependencies=[requires("workspaces/jobs/read")])
def validate_job_entity(context: Workspace, jobs: Jobs, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Check a job entity as submitting would, running nothing: a pipeline's step names."""
    return {"steps": jobs.validate(_entity(body))}
