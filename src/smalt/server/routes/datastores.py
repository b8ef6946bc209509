"""Datastores over REST: ``/api/v1/workspaces/{workspace}/datastores``. Credentials go in and
never come out (the service answers without them); a ``local`` datastore, which names a folder of
the server's own disk, is not created over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from smalt.entities import Datastore
from smalt.errors import InvalidSpecError
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.datastores import DatastoreService

router = APIRouter(prefix="/workspaces/{workspace}/datastores")
DatastoreName = Annotated[str, Path(max_length=255)]


@router.get("", dependencies=[requires("workspaces/datastores/read")])
def list_datastores(context: Workspace) -> list[dict[str, Any]]:
    return [d.to_dict() for d in DatastoreService(context).list()]


@router.get("/{name}", dependencies=[requires("workspaces/datastores/read")])
def get_datastore(context: Workspace, name: DatastoreName) -> dict[str, Any]:
    return DatastoreService(context).get(name).to_dict()


@router.post("", status_code=201, dependencies=[requires("workspaces/datastores/write")])
def create_datastore(context: Workspace, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    from smalt import specs

    if body.get("type") == "local":
        raise InvalidSpecError.one(
            "a local datastore names a folder on the server's disk, which a client may not name; "
            "create it on the server's machine, on the workspace folder itself (smalt datastore create "
            "--workspace <folder>, without SMALT_URL), or use object storage", "type",
        )  # fmt: skip
    datastore = specs.from_values("datastore", body)
    assert isinstance(datastore, Datastore)
    return DatastoreService(context).create_or_update(datastore).to_dict()


@router.delete("/{name}", status_code=204, dependencies=[requires("workspaces/datastores/delete")])
def delete_datastore(context: Workspace, name: DatastoreName) -> None:
    DatastoreService(context).delete(name)
