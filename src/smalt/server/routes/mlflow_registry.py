"""MLflow's model registry: registered models, model versions, aliases and stages (smalt models)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, Field

from smalt.server import mlflow_json
from smalt.server.access import requires
from smalt.server.deps import Description, MaxResultsQuery, ObjectName, Workspace
from smalt.server.routes.mlflow_experiments import KeyValue
from smalt.services.registry import ModelVersion, RegisteredModel, RegistryService

router = APIRouter(tags=["mlflow model registry"])


async def _registry(workspace: Workspace) -> RegistryService:
    return RegistryService(workspace, local_sources=False)


Registry = Annotated[RegistryService, Depends(_registry)]
#: Versions are strings in MLflow's protocol; a client that sends a number means the same version.
Version = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)]


# -- shapes ------------------------------------------------------------------------------------
def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def model_version(v: ModelVersion, *, aliases: bool = True) -> dict[str, Any]:
    """A model version as the reference server writes it: empty tags and aliases left out."""
    shaped: dict[str, Any] = {
        "name": v.name, "version": v.version, "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp, "current_stage": v.current_stage,
        "description": v.description, "source": v.source, "run_id": v.run_id, "status": "READY",
    }  # fmt: skip
    if v.tags:
        shaped["tags"] = _tags(v.tags)
    shaped["run_link"] = ""
    if aliases and v.aliases:
        shaped["aliases"] = list(v.aliases)
    return shaped


def registered_model(m: RegisteredModel) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "name": m.name, "creation_timestamp": m.creation_timestamp, "last_updated_timestamp": m.last_updated_timestamp,
    }  # fmt: skip
    if m.description:
        shaped["description"] = m.description
    if m.latest_versions:
        shaped["latest_versions"] = [model_version(v, aliases=False) for v in m.latest_versions]
    if m.tags:
        shaped["tags"] = _tags(m.tags)
    if m.aliases:
        shaped["aliases"] = [{"alias": a, "version": v} for a, v in m.aliases.items()]
    return shaped


# -- request bodies ----------------------------------------------------------------------------
def _kv(items: list[KeyValue]) -> dict[str, str]:
    return {i.key: i.value or "" for i in items}


class ModelRef(BaseModel):
    name: ObjectName


class CreateRegisteredModel(ModelRef):
    tags: list[KeyValue] = Field(default_factory=list)
    description: Description | None = None


class UpdateRegisteredModel(ModelRef):
    description: Description | None = None


class Rename(ModelRef):
    new_name: ObjectName


class ModelTag(ModelRef):
    key: str
    value: str | None = None


class AliasRef(ModelRef):
    alias: ObjectName


class SetAlias(AliasRef):
    version: Version


class LatestVersions(ModelRef):
    stages: list[str] = Field(default_factory=list)


class CreateModelVersion(ModelRef):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: Description | None = None
    model_id: str | None = None


class VersionRef(ModelRef):
    version: Version


class UpdateModelVersion(VersionRef):
    description: Description | None = None


class VersionTag(VersionRef):
    key: str
    value: str | None = None


class Transition(VersionRef):
    stage: str
    archive_existing_versions: bool = False


# -- registered models -------------------------------------------------------------------------
@router.post("/registered-models/create", dependencies=[requires("workspaces/models/write")])
def create_registered_model(body: CreateRegisteredModel, registry: Registry) -> dict[str, Any]:
    made = registry.create_registered_model(body.name, description=body.description, tags=_kv(body.tags))
    return {"registered_model": registered_model(made)}


@router.get("/registered-models/get", dependencies=[requires("workspaces/models/read")])
def get_registered_model(registry: Registry, name: str) -> dict[str, Any]:
    return {"registered_model": registered_model(registry.get_registered_model(name))}


@router.patch("/registered-models/update", dependencies=[requires("workspaces/models/write")])
def update_registered_model(body: UpdateRegisteredModel, registry: Registry) -> dict[str, Any]:
    return {"registered_model": registered_model(registry.update_registered_model(body.name, body.description))}


@router.post("/registered-models/rename", dependencies=[requires("workspaces/models/write")])
def rename_registered_model(body: Rename, registry: Registry) -> dict[str, Any]:
    return {"registered_model": registered_model(registry.rename_registered_model(body.name, body.new_name))}


@router.delete("/registered-models/delete", dependencies=[requires("workspaces/models/delete")])
def delete_registered_model(body: ModelRef, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model(body.name)
    return {}


@router.post("/registered-models/set-tag", dependencies=[requires("workspaces/models/write")])
def set_registered_model_tag(body: ModelTag, registry: Registry) -> dict[str, Any]:
    registry.set_registered_model_tag(body.name, body.key, body.value)
    return {}


@router.delete("/registered-models/delete-tag", dependencies=[requires("workspaces/models/write")])
def delete_registered_model_tag(body: ModelTag, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model_tag(body.name, body.key)
    return {}


@router.get("/registered-models/search", dependencies=[requires("workspaces/models/read")])
def search_registered_models(registry: Registry, filter: str | None = None, max_results: MaxResultsQuery = 100,
                             order_by: list[str] = Query(default_factory=list),  # noqa: B008
                             page_token: str | None = None) -> dict[str, Any]:  # fmt: skip
    page = registry.search_registered_models(filter_string=filter, max_results=max_results, order_by=order_by,
                                             page_token=page_token)  # fmt: skip
    return mlflow_json.page("registered_models", page, registered_model)


def _latest(registry: RegistryService, name: str, stages: list[str]) -> dict[str, Any]:
    found = registry.get_latest_versions(name, stages)
    return {"model_versions": [model_version(v) for v in found]} if found else {}


@router.post("/registered-models/get-latest-versions", dependencies=[requires("workspaces/models/read")])
def get_latest_versions(body: LatestVersions, registry: Registry) -> dict[str, Any]:
    return _latest(registry, body.name, body.stages)


@router.get("/registered-models/get-latest-versions", dependencies=[requires("workspaces/models/read")])
def get_latest_versions_get(registry: Registry, name: str,
                            stages: list[str] = Query(default_factory=list)) -> dict[str, Any]:  # noqa: B008  # fmt: skip
    return _latest(registry, name, stages)


# -- aliases -----------------------------------------------------------------------------------
@router.post("/registered-models/alias", dependencies=[requires("workspaces/models/write")])
def set_alias(body: SetAlias, registry: Registry) -> dict[str, Any]:
    registry.set_registered_model_alias(body.name, body.alias, body.version)
    return {}


@router.delete("/registered-models/alias", dependencies=[requires("workspaces/models/write")])
def delete_alias(body: AliasRef, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model_alias(body.name, body.alias)
    return {}


@router.get("/registered-models/alias", dependencies=[requires("workspaces/models/read")])
def get_by_alias(registry: Registry, name: str, alias: str) -> dict[str, Any]:
    return {"model_version": model_version(registry.get_model_version_by_alias(name, alias))}


# -- model versions ----------------------------------------------------------------------------
@router.post("/model-versions/create", dependencies=[requires("workspaces/models/write")])
def create_model_version(body: CreateModelVersion, registry: Registry) -> dict[str, Any]:
    made = registry.create_model_version(
        body.name, body.source, run_id=body.run_id, tags=_kv(body.tags), description=body.description,
        model_id=body.model_id,
    )  # fmt: skip
    return {"model_version": model_version(made)}


@router.get("/model-versions/get", dependencies=[requires("workspaces/models/read")])
def get_model_version(registry: Registry, name: str, version: str) -> dict[str, Any]:
    return {"model_version": model_version(registry.get_model_version(name, version))}


@router.patch("/model-versions/update", dependencies=[requires("workspaces/models/write")])
def update_model_version(body: UpdateModelVersion, registry: Registry) -> dict[str, Any]:
    return {"model_version": model_version(registry.update_model_version(body.name, body.version, body.description))}


@router.delete("/model-versions/delete", dependencies=[requires("workspaces/models/delete")])
def delete_model_version(body: VersionRef, registry: Registry) -> dict[str, Any]:
    registry.delete_model_version(body.name, body.version)
    return {}


@router.post("/model-versions/transition-stage", dependencies=[requires("workspaces/models/write")])
def transition_stage(body: Transition, registry: Registry) -> dict[str, Any]:
    moved = registry.transition_model_version_stage(body.name, body.version, body.stage,
                                                    body.archive_existing_versions)  # fmt: skip
    return {"model_version": model_version(moved)}


@router.get("/model-versions/get-download-uri", dependencies=[requires("workspaces/models/read")])
def get_download_uri(registry: Registry, name: str, version: str) -> dict[str, Any]:
    return {"artifact_uri": registry.get_model_version_download_uri(name, version)}


@router.get("/model-versions/search", dependencies=[requires("workspaces/models/read")])
def search_model_versions(registry: Registry, filter: str | None = None, max_results: MaxResultsQuery = 10000,
                          order_by: list[str] = Query(default_factory=list),  # noqa: B008
                          page_token: str | None = None) -> dict[str, Any]:  # fmt: skip
    page = registry.search_model_versions(filter_string=filter, max_results=max_results, order_by=order_by,
                                          page_token=page_token)  # fmt: skip
    return mlflow_json.page("model_versions", page, lambda v: model_version(v, aliases=False))


@router.post("/model-versions/set-tag", dependencies=[requires("workspaces/models/write")])
def set_model_version_tag(body: VersionTag, registry: Registry) -> dict[str, Any]:
    registry.set_model_version_tag(body.name, body.version, body.key, body.value)
    return {}


@router.delete("/model-versions/delete-tag", dependencies=[requires("workspaces/models/write")])
def delete_model_version_tag(body: VersionTag, registry: Registry) -> dict[str, Any]:
    registry.delete_model_version_tag(body.name, body.version, body.key)
    return {}
