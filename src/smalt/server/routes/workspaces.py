"""The workspaces a server holds: ``/api/v1/workspaces`` (``services.workspaces``). The one it was
started on comes first in the list: a client that names no workspace gets that one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smalt.server.access import may_see, requires
from smalt.services.workspace import WorkspaceContext
from smalt.services.workspaces import WorkspaceService

router = APIRouter()


def _service(request: Request) -> WorkspaceService:
    service: WorkspaceService = request.app.state.workspaces
    return service


async def held(request: Request, workspace: Annotated[str, Path(max_length=255)]) -> WorkspaceContext:
    """The workspace a route's ``{workspace}`` names, if this server holds it (opened on first use)."""
    return await run_in_threadpool(_service(request).open, workspace)


Workspace = Annotated[WorkspaceContext, Depends(held)]


class NewWorkspace(BaseModel):
    name: str = Field(min_length=1, max_length=255)


@router.get("/workspaces", dependencies=[requires("workspaces/read", scope="any")])
def list_workspaces(request: Request) -> list[dict[str, Any]]:
    """The workspaces the caller may read."""
    return [w.to_dict() for w in _service(request).list() if may_see(request, w.name)]


@router.post("/workspaces", status_code=201, dependencies=[requires("workspaces/write", scope="server")])
def create_workspace(request: Request, body: NewWorkspace) -> dict[str, Any]:
    return _service(request).create(body.name).to_dict()


@router.get("/workspaces/{workspace}", dependencies=[requires("workspaces/read")])
async def get_workspace(context: Workspace) -> dict[str, Any]:
    return context.describe().to_dict()


@router.post("/workspaces/{workspace}/sync-keys",
             dependencies=[requires("workspaces/resynckeys/action", audited=False)])  # fmt: skip
def sync_keys(request: Request, context: Workspace) -> dict[str, int]:
    """Seal every secret of the workspace with a new key (the rotation audits itself)."""
    return _service(request).sync_keys(context.name)


@router.delete("/workspaces/{workspace}", status_code=204, dependencies=[requires("workspaces/delete")])
def delete_workspace(request: Request, workspace: Annotated[str, Path(max_length=255)]) -> Response:
    """Set the workspace aside (its folder moved under the server's home, ``.deleted/``)."""
    _service(request).delete(workspace)
    return Response(status_code=204)
