"""Versioned assets over REST: ``/api/v1/workspaces/{workspace}/{data|environments|components|models}``.

Thin, as every route: check what the client sent, call ``AssetService``, shape the answer as the
entity's JSON. A local path in a body is refused: the server reads no file a client names (the SDK
uploads local files first, ``routes/uploads.py``, and sends their URIs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from smalt.entities import Asset, CommandComponent, Data, Entity, Environment, Model
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.assets import AssetService
from smalt.services.workspace import WorkspaceContext

#: The URL segment of each asset kind, and the entity it holds (components dispatch on `type`).
NOUNS: dict[str, tuple[str, type[Asset]]] = {
    "data": ("data", Data),
    "environments": ("environment", Environment),
    "components": ("component", CommandComponent),
    "models": ("model", Model),
}

router = APIRouter(prefix="/workspaces/{workspace}")

Noun = Annotated[str, Path(pattern="^(data|environments|components|models)$")]
AssetName = Annotated[str, Path(max_length=255)]
VersionQuery = Annotated[str | None, Query(max_length=100)]


def _service(context: WorkspaceContext, noun: str) -> AssetService[Any]:
    return AssetService(context, NOUNS[noun][1])


@router.get("/{noun}", dependencies=[requires("workspaces/{noun}/read")])
def list_assets(
    context: Workspace, noun: Noun, name: Annotated[str | None, Query(max_length=255)] = None,
    include_archived: bool = False, max_results: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The latest version of each asset, or every version of ``name``, newest first (the first
    ``max_results``)."""
    found = _service(context, noun).list(name, include_archived=include_archived, max_results=max_results)
    return [a.to_dict() for a in found]


@router.get("/{noun}/{name}", dependencies=[requires("workspaces/{noun}/read")])
def get_asset(
    context: Workspace, noun: Noun, name: AssetName, version: VersionQuery = None, label: VersionQuery = None
) -> dict[str, Any]:
    """One version, by ``version`` or by ``label`` (``latest``)."""
    asset: Entity = _service(context, noun).get(name, version, label)
    return asset.to_dict()


@router.post("/{noun}", status_code=201, dependencies=[requires("workspaces/{noun}/write")])
def create_asset(context: Workspace, noun: Noun, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Register a version: the entity as ``to_dict`` writes it, with no local path in it."""
    from smalt import specs
    from smalt.specs.loader import refuse_local_paths

    kind, _ = NOUNS[noun]
    refuse_local_paths(kind, body)
    asset: Entity = _service(context, noun).create_or_update(specs.from_values(kind, body))
    return asset.to_dict()


@router.post("/{noun}/{name}/archive", status_code=204, dependencies=[requires("workspaces/{noun}/write")])
def archive_asset(
    context: Workspace, noun: Noun, name: AssetName, version: VersionQuery = None, label: VersionQuery = None
) -> None:
    """Archive one version, or with neither version nor label the whole asset."""
    _service(context, noun).archive(name, version, label)


@router.post("/{noun}/{name}/restore", status_code=204, dependencies=[requires("workspaces/{noun}/write")])
def restore_asset(
    context: Workspace, noun: Noun, name: AssetName, version: VersionQuery = None, label: VersionQuery = None
) -> None:
    _service(context, noun).restore(name, version, label)
