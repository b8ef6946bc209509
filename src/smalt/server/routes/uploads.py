"""Local files over HTTP: ``/api/v1/workspaces/{workspace}/uploads`` (``services.uploads``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smalt.errors import InvalidSpecError
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.uploads import MAX_FILE_BYTES, MAX_FILES, UploadService

router = APIRouter(prefix="/workspaces/{workspace}/uploads")

Digest = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
DigestPath = Annotated[str, Path(pattern="^[0-9a-f]{64}$")]


class Digests(BaseModel):
    digests: list[Digest] = Field(max_length=MAX_FILES)


class Upload(BaseModel):
    #: The file or folder's own name (one path segment).
    name: str = Field(min_length=1, max_length=255)
    #: Each file's path relative to the folder (for a single file: its name), and its sha256.
    files: dict[Annotated[str, Field(max_length=4096)], Digest] = Field(max_length=MAX_FILES)
    single: bool = False
    #: The datastore to put it in (``workspaceblobstore`` unless named).
    datastore: str | None = Field(default=None, max_length=255)


@router.post("/missing", dependencies=[requires("workspaces/codes/write", audited=False)])
def missing(context: Workspace, body: Digests) -> dict[str, Any]:
    """Which of these files the server lacks: send those, and only those."""
    return {"missing": UploadService(context).missing(body.digests)}


@router.put("/blobs/{digest}", status_code=204, dependencies=[requires("workspaces/codes/write", audited=False)])
async def put_blob(request: Request, context: Workspace, digest: DigestPath) -> Response:
    """One file's bytes, kept only if they have ``digest``."""
    writer = UploadService(context).writer(digest)
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise InvalidSpecError.one(f"one file may be at most {MAX_FILE_BYTES >> 30} GiB", "body")
            writer.write(chunk)
    except BaseException:
        writer.discard()
        raise
    await run_in_threadpool(writer.close)
    return Response(status_code=204)


@router.post("", status_code=201, dependencies=[requires("workspaces/codes/write")])
def commit(context: Workspace, body: Upload) -> dict[str, Any]:
    """The file or folder made of files sent before: its datastore URI."""
    return {"path": UploadService(context).commit(body.name, body.files, single=body.single, datastore=body.datastore)}
