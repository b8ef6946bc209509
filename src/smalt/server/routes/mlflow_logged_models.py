"""MLflow 3 logged models: create, get, finalize, tags, params, delete, search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from smalt.server import mlflow_json
from smalt.server.access import requires
from smalt.server.deps import Expression, MaxResults, ObjectName, Tracking
from smalt.server.routes.mlflow_experiments import KeyValue

router = APIRouter(tags=["mlflow logged models"])


class CreateLoggedModel(BaseModel):
    experiment_id: str
    name: ObjectName | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class Finalize(BaseModel):
    model_id: str | None = None
    status: str


class Tags(BaseModel):
    model_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class Params(BaseModel):
    model_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)


class OrderBy(BaseModel):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModels(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: Expression | None = None
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    max_results: MaxResults = 100
    order_by: list[OrderBy] = Field(default_factory=list)
    page_token: Expression | None = None


def _kv(items: list[KeyValue]) -> dict[str, str]:
    return {i.key: i.value or "" for i in items}


@router.post("/logged-models", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def create(body: CreateLoggedModel, tracking: Tracking) -> dict[str, Any]:
    made = tracking.create_logged_model(
        body.experiment_id, name=body.name, source_run_id=body.source_run_id, tags=_kv(body.tags),
        params=_kv(body.params), model_type=body.model_type,
    )  # fmt: skip
    return {"model": mlflow_json.logged_model(made)}


@router.post("/logged-models/search", dependencies=[requires("workspaces/experiments/runs/read")])
def search(body: SearchLoggedModels, tracking: Tracking) -> dict[str, Any]:
    order = [f"{o.field_name} {'ASC' if o.ascending else 'DESC'}" for o in body.order_by]
    page = tracking.search_logged_models(body.experiment_ids, filter_string=body.filter, order_by=order,
                                         max_results=body.max_results, page_token=body.page_token)  # fmt: skip
    return mlflow_json.page("models", page, mlflow_json.logged_model)


@router.get("/logged-models/{model_id}", dependencies=[requires("workspaces/experiments/runs/read")])
def get(model_id: str, tracking: Tracking) -> dict[str, Any]:
    return {"model": mlflow_json.logged_model(tracking.get_logged_model(model_id))}


@router.patch("/logged-models/{model_id}", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def finalize(model_id: str, body: Finalize, tracking: Tracking) -> dict[str, Any]:
    return {"model": mlflow_json.logged_model(tracking.update_logged_model(model_id, status=body.status))}


@router.delete("/logged-models/{model_id}", dependencies=[requires("workspaces/experiments/runs/delete")])
def delete(model_id: str, tracking: Tracking) -> dict[str, Any]:
    tracking.update_logged_model(model_id, deleted=True)
    return {}


@router.patch(
    "/logged-models/{model_id}/tags", dependencies=[requires("workspaces/experiments/runs/write", audited=False)]
)
def set_tags(model_id: str, body: Tags, tracking: Tracking) -> dict[str, Any]:
    return {"model": mlflow_json.logged_model(tracking.update_logged_model(model_id, tags=_kv(body.tags)))}


@router.delete(
    "/logged-models/{model_id}/tags/{key:path}",
    dependencies=[requires("workspaces/experiments/runs/write", audited=False)],
)
def delete_tag(model_id: str, key: str, tracking: Tracking) -> dict[str, Any]:
    tracking.update_logged_model(model_id, delete_tag=key)
    return {}


@router.post(
    "/logged-models/{model_id}/params", dependencies=[requires("workspaces/experiments/runs/write", audited=False)]
)
def log_params(model_id: str, body: Params, tracking: Tracking) -> dict[str, Any]:
    tracking.update_logged_model(model_id, params=_kv(body.params))
    return {}
