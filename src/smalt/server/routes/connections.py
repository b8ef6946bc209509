"""Workspace connections over REST: ``/api/v1/workspaces/{workspace}/connections``. Secrets go in
and never come out of a show or list; ``POST .../{name}/listsecrets`` reads them, under its own
action (``connections/listsecrets/action``), and is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from smalt.entities.connection import WorkspaceConnection
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.connections import ConnectionService

router = APIRouter(prefix="/workspaces/{workspace}/connections")
ConnectionName = Annotated[str, Path(max_length=255)]


@router.get("", dependencies=[requires("workspaces/connections/read")])
def list_connections(context: Workspace) -> list[dict[str, Any]]:
    return [c.to_dict() for c in ConnectionService(context).list()]


@router.get("/{name}", dependencies=[requires("workspaces/connections/read")])
def get_connection(context: Workspace, name: ConnectionName) -> dict[str, Any]:
    return ConnectionService(context).get(name).to_dict()


@router.post("", status_code=201, dependencies=[requires("workspaces/connections/write")])
def create_connection(context: Workspace, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    from smalt import specs

    connection = specs.from_values("connection", body)
    assert isinstance(connection, WorkspaceConnection)
    return ConnectionService(context).create_or_update(connection).to_dict()


@router.post("/{name}/listsecrets", dependencies=[requires("workspaces/connections/listsecrets/action",
                                                            audited=False)])  # fmt: skip
def list_secrets(context: Workspace, name: ConnectionName) -> dict[str, str]:
    """The connection's secrets, by key (the service audits the read)."""
    return ConnectionService(context).list_secrets(name)


@router.delete("/{name}", status_code=204, dependencies=[requires("workspaces/connections/delete")])
def delete_connection(context: Workspace, name: ConnectionName) -> None:
    ConnectionService(context).delete(name)
