"""MLflow experiments: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from smalt.server import mlflow_json
from smalt.server.access import requires
from smalt.server.deps import Expression, MaxResults, MaxResultsQuery, ObjectName, Tracking

router = APIRouter(tags=["mlflow experiments"])


class KeyValue(BaseModel):
    key: str
    value: str | None = None


class CreateExperiment(BaseModel):
    name: ObjectName
    artifact_location: Expression | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentRef(BaseModel):
    experiment_id: str


class UpdateExperiment(ExperimentRef):
    new_name: ObjectName


class ExperimentTag(ExperimentRef):
    key: str
    value: str | None = None


class SearchExperiments(BaseModel):
    max_results: MaxResults = 1000
    page_token: Expression | None = None
    filter: Expression | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int | None = None


@router.post("/experiments/create", dependencies=[requires("workspaces/experiments/write")])
def create(body: CreateExperiment, tracking: Tracking) -> dict[str, Any]:
    tags = {t.key: t.value or "" for t in body.tags}
    return {"experiment_id": str(tracking.create_experiment(body.name, body.artifact_location, tags))}


@router.get("/experiments/get", dependencies=[requires("workspaces/experiments/read")])
def get(tracking: Tracking, experiment_id: str) -> dict[str, Any]:
    return {"experiment": mlflow_json.experiment(tracking.get_experiment(experiment_id))}


@router.get("/experiments/get-by-name", dependencies=[requires("workspaces/experiments/read")])
def get_by_name(tracking: Tracking, experiment_name: str) -> dict[str, Any]:
    return {"experiment": mlflow_json.experiment(tracking.get_experiment_by_name(experiment_name))}


def _search(tracking: Tracking, body: SearchExperiments) -> dict[str, Any]:
    page = tracking.search_experiments(
        filter_string=body.filter, order_by=body.order_by, view=body.view_type,
        max_results=body.max_results, page_token=body.page_token,
    )  # fmt: skip
    return mlflow_json.page("experiments", page, mlflow_json.experiment)


@router.post("/experiments/search", dependencies=[requires("workspaces/experiments/read")])
def search(body: SearchExperiments, tracking: Tracking) -> dict[str, Any]:
    return _search(tracking, body)


@router.get("/experiments/search", dependencies=[requires("workspaces/experiments/read")])
def search_get(tracking: Tracking, max_results: MaxResultsQuery = 1000, page_token: str | None = None,
               filter: str | None = None, order_by: list[str] = Query(default_factory=list),  # noqa: B008
               view_type: str | None = None) -> dict[str, Any]:  # fmt: skip
    body = SearchExperiments(max_results=max_results, page_token=page_token, filter=filter, order_by=order_by,
                             view_type=view_type)  # fmt: skip
    return _search(tracking, body)


@router.post("/experiments/update", dependencies=[requires("workspaces/experiments/write")])
def update(body: UpdateExperiment, tracking: Tracking) -> dict[str, Any]:
    tracking.rename_experiment(body.experiment_id, body.new_name)
    return {}


@router.post("/experiments/delete", dependencies=[requires("workspaces/experiments/delete")])
def delete(body: ExperimentRef, tracking: Tracking) -> dict[str, Any]:
    tracking.set_experiment_lifecycle(body.experiment_id, "deleted")
    return {}


@router.post("/experiments/restore", dependencies=[requires("workspaces/experiments/write")])
def restore(body: ExperimentRef, tracking: Tracking) -> dict[str, Any]:
    tracking.set_experiment_lifecycle(body.experiment_id, "active")
    return {}


@router.post("/experiments/set-experiment-tag", dependencies=[requires("workspaces/experiments/write")])
def set_tag(body: ExperimentTag, tracking: Tracking) -> dict[str, Any]:
    tracking.set_experiment_tag(body.experiment_id, body.key, body.value or "")
    return {}


@router.post("/experiments/delete-tag", dependencies=[requires("workspaces/experiments/write")])
def delete_tag(body: ExperimentTag, tracking: Tracking) -> dict[str, Any]:
    tracking.delete_experiment_tag(body.experiment_id, body.key)
    return {}
