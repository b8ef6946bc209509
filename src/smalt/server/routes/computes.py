"""Compute targets over REST: ``/api/v1/workspaces/{workspace}/computes``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from smalt.entities import Compute
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.computes import ComputeService

router = APIRouter(prefix="/workspaces/{workspace}/computes")
ComputeName = Annotated[str, Path(max_length=255)]


@router.get("", dependencies=[requires("workspaces/computes/read")])
def list_computes(context: Workspace) -> list[dict[str, Any]]:
    return [c.to_dict() for c in ComputeService(context).list()]


@router.get("/{name}", dependencies=[requires("workspaces/computes/read")])
def get_compute(context: Workspace, name: ComputeName) -> dict[str, Any]:
    return ComputeService(context).get(name).to_dict()


@router.post("", status_code=201, dependencies=[requires("workspaces/computes/write")])
def create_compute(context: Workspace, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    from smalt import specs

    compute = specs.from_values("compute", body)
    assert isinstance(compute, Compute)
    return ComputeService(context).create_or_update(compute).to_dict()


@router.delete("/{name}", status_code=204, dependencies=[requires("workspaces/computes/delete")])
def delete_compute(context: Workspace, name: ComputeName) -> None:
    ComputeService(context).delete(name)
