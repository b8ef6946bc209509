"""The workspaces a server holds: ``/api/v1/workspaces`` (today one, the server's own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from smalt.errors import NotFoundError
from smalt.services.workspace import WorkspaceContext

router = APIRouter()


async def held(request: Request, workspace: Annotated[str, Path(max_length=255)]) -> WorkspaceContext:
    """The workspace a route's ``{workspace}`` names, if this server holds it."""
    context: WorkspaceContext = request.app.state.workspace
    if workspace != context.name:
        raise NotFoundError(f"Workspace '{workspace}' not found.", hint=f"this server holds '{context.name}'")
    return context


Workspace = Annotated[WorkspaceContext, Depends(held)]


@router.get("/workspaces")
async def list_workspaces(request: Request) -> list[dict[str, Any]]:
    context: WorkspaceContext = request.app.state.workspace
    return [context.describe().to_dict()]


@router.get("/workspaces/{workspace}")
async def get_workspace(context: Workspace) -> dict[str, Any]:
    return context.describe().to_dict()
