"""The workspaces a server holds: ``/api/v1/workspaces`` (``services.workspaces``). The one it was
started on comes first in the list: a client that names no workspace gets that one."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smalt.errors import InvalidSpecError
from smalt.services.workspace import WorkspaceContext, caller
from smalt.services.workspaces import WorkspaceService

router = APIRouter()


def _service(request: Request) -> WorkspaceService:
    service: WorkspaceService = request.app.state.workspaces
    return service


#: What a caller may call itself (``Smalt-Caller``): a user or principal name, as Azure writes them.
_CALLER = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


async def held(request: Request, workspace: Annotated[str, Path(max_length=255)]) -> WorkspaceContext:
    """The workspace a route's ``{workspace}`` names, if this server holds it (opened on first use);
    the caller the request names acts in it (``services.workspace.caller``: its ``created_by``).
    Until the server authenticates callers, the name is what the client says."""
    said = request.headers.get("smalt-caller")
    if said is not None:
        if not _CALLER.match(said):
            raise InvalidSpecError.one("Smalt-Caller must be a user name (letters, digits, '.', '_', '@', '+', '-')",
                                       "Smalt-Caller")  # fmt: skip
        caller.set(said)  # this request's task; a sync route runs in a copy of its context
    return await run_in_threadpool(_service(request).open, workspace)


Workspace = Annotated[WorkspaceContext, Depends(held)]


class NewWorkspace(BaseModel):
    name: str = Field(min_length=1, max_length=255)


@router.get("/workspaces")
def list_workspaces(request: Request) -> list[dict[str, Any]]:
    return [w.to_dict() for w in _service(request).list()]


@router.post("/workspaces", status_code=201)
def create_workspace(request: Request, body: NewWorkspace) -> dict[str, Any]:
    return _service(request).create(body.name).to_dict()


@router.get("/workspaces/{workspace}")
async def get_workspace(context: Workspace) -> dict[str, Any]:
    return context.describe().to_dict()


@router.delete("/workspaces/{workspace}", status_code=204)
def delete_workspace(request: Request, workspace: Annotated[str, Path(max_length=255)]) -> Response:
    """Set the workspace aside (its folder moved under the server's home, ``.deleted/``)."""
    _service(request).delete(workspace)
    return Response(status_code=204)
