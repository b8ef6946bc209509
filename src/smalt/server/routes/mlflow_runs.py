"""MLflow runs: create, get, update, delete, restore, search, logging, tags, inputs, outputs, history."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from smalt.server import mlflow_json
from smalt.server.access import requires
from smalt.server.deps import (
    Expression,
    Int64,
    MaxResults,
    MaxResultsQuery,
    ObjectName,
    Tracking,
    body_schema,
    json_body,
)
from smalt.server.routes.mlflow_experiments import KeyValue
from smalt.services.tracking import now_ms
from smalt.store.tracking import MetricRecord

router = APIRouter(tags=["mlflow runs"])


class RunRef(BaseModel):
    run_id: str | None = None
    run_uuid: str | None = None

    @property
    def id(self) -> str:
        from smalt.errors import InvalidSpecError

        value = self.run_id or self.run_uuid
        if not value:
            raise InvalidSpecError.one("Missing value for run_id.", "run_id")
        return value


class CreateRun(BaseModel):
    experiment_id: str | None = None
    user_id: str | None = None
    run_name: ObjectName | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: str | None = None
    end_time: Int64 | None = None
    run_name: ObjectName | None = None


class Metric(BaseModel):
    key: str
    value: float | None = None
    timestamp: Int64 | None = None
    step: Int64 | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(RunRef, Metric):
    pass


class LogParam(RunRef):
    key: str
    value: str


class SetTag(RunRef):
    key: str
    value: str | None = None


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[Metric] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class DatasetInput(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: dict[str, Any]


class ModelRef(BaseModel):
    model_id: str
    step: Int64 | None = None


class LogInputs(RunRef):
    datasets: list[DatasetInput] = Field(default_factory=list)
    models: list[ModelRef] = Field(default_factory=list)


class LogOutputs(RunRef):
    models: list[ModelRef] = Field(default_factory=list)


class SearchRuns(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: Expression | None = None
    run_view_type: str | int | None = None
    max_results: MaxResults = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: Expression | None = None


def _metric(m: Metric, now: int) -> MetricRecord:
    """A metric as MLflow sends it: a missing value is NaN, a missing timestamp ``now``, a missing
    step 0. Built positionally from typed fields: a batch makes 1,000 of these."""
    return MetricRecord(m.key, math.nan if m.value is None else m.value, now if m.timestamp is None else m.timestamp,
                        m.step or 0, m.model_id, m.dataset_name, m.dataset_digest)  # fmt: skip


@router.post("/runs/create", dependencies=[requires("workspaces/experiments/runs/write")])
def create(body: CreateRun, tracking: Tracking) -> dict[str, Any]:
    made = tracking.create_run(body.experiment_id, run_name=body.run_name, start_time=body.start_time,
                               tags={t.key: t.value or "" for t in body.tags}, user_id=body.user_id)  # fmt: skip
    return {"run": mlflow_json.run(made)}


@router.get("/runs/get", dependencies=[requires("workspaces/experiments/runs/read")])
def get(tracking: Tracking, run_id: str | None = None, run_uuid: str | None = None) -> dict[str, Any]:
    return {"run": mlflow_json.run(tracking.get_run(RunRef(run_id=run_id, run_uuid=run_uuid).id))}


@router.post("/runs/update", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def update(body: UpdateRun, tracking: Tracking) -> dict[str, Any]:
    info = tracking.update_run(body.id, status=body.status, end_time=body.end_time, run_name=body.run_name)
    return {"run_info": mlflow_json.run_info(info)}


@router.post("/runs/delete", dependencies=[requires("workspaces/experiments/runs/delete")])
def delete(body: RunRef, tracking: Tracking) -> dict[str, Any]:
    tracking.set_run_lifecycle(body.id, "deleted")
    return {}


@router.post("/runs/restore", dependencies=[requires("workspaces/experiments/runs/write")])
def restore(body: RunRef, tracking: Tracking) -> dict[str, Any]:
    tracking.set_run_lifecycle(body.id, "active")
    return {}


@router.post("/runs/log-metric", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def log_metric(body: LogMetric, tracking: Tracking) -> dict[str, Any]:
    tracking.log_batch(body.id, metrics=[_metric(body, now_ms())])
    return {}


@router.post("/runs/log-parameter", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def log_parameter(body: LogParam, tracking: Tracking) -> dict[str, Any]:
    tracking.log_batch(body.id, params=[(body.key, body.value)])
    return {}


@router.post("/runs/set-tag", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def set_tag(body: SetTag, tracking: Tracking) -> dict[str, Any]:
    tracking.log_batch(body.id, tags=[(body.key, body.value or "")])
    return {}


@router.post("/runs/delete-tag", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def delete_tag(body: DeleteTag, tracking: Tracking) -> dict[str, Any]:
    tracking.delete_tag(body.id, body.key)
    return {}


# The body is read by json_body: a batch carries up to 1,000 metrics (see json_body).
@router.post(
    "/runs/log-batch",
    openapi_extra=body_schema(LogBatch),
    dependencies=[requires("workspaces/experiments/runs/write", audited=False)],
)
def log_batch(body: Annotated[LogBatch, json_body(LogBatch)], tracking: Tracking) -> dict[str, Any]:
    now = now_ms()
    tracking.log_batch(
        body.id, metrics=[_metric(m, now) for m in body.metrics], params=[(p.key, p.value or "") for p in body.params],
        tags=[(t.key, t.value or "") for t in body.tags],
    )  # fmt: skip
    return {}


@router.post("/runs/log-inputs", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def log_inputs(body: LogInputs, tracking: Tracking) -> dict[str, Any]:
    items: list[tuple[str, str, dict[str, Any]]] = []
    for d in body.datasets:
        payload = {"tags": [t.model_dump() for t in d.tags], "dataset": d.dataset}
        context = next((t.value for t in d.tags if t.key == "mlflow.data.context"), "")
        items.append(("dataset", f"{d.dataset.get('name')}:{d.dataset.get('digest')}:{context}", payload))
    items.extend(("model", m.model_id, {"model_id": m.model_id}) for m in body.models)
    tracking.log_io(body.id, "input", items)
    return {}


@router.post("/runs/outputs", dependencies=[requires("workspaces/experiments/runs/write", audited=False)])
def log_outputs(body: LogOutputs, tracking: Tracking) -> dict[str, Any]:
    tracking.log_io(body.id, "output", [("model", f"{m.model_id}:{m.step or 0}", m.model_dump(exclude_none=True))
                                        for m in body.models])  # fmt: skip
    return {}


def _search(tracking: Tracking, body: SearchRuns) -> dict[str, Any]:
    page = tracking.search_runs(
        body.experiment_ids, filter_string=body.filter, run_view=body.run_view_type,
        max_results=body.max_results, order_by=body.order_by, page_token=body.page_token,
    )  # fmt: skip
    return mlflow_json.page("runs", page, mlflow_json.run)


@router.post("/runs/search", dependencies=[requires("workspaces/experiments/runs/read")])
def search(body: SearchRuns, tracking: Tracking) -> dict[str, Any]:
    return _search(tracking, body)


@router.get("/metrics/get-history", dependencies=[requires("workspaces/experiments/runs/read")])
def get_history(
    tracking: Tracking, metric_key: str, run_id: str | None = None, run_uuid: str | None = None,
    max_results: MaxResultsQuery | None = None, page_token: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    page = tracking.metric_history(RunRef(run_id=run_id, run_uuid=run_uuid).id, metric_key,
                                   max_results=max_results, page_token=page_token)  # fmt: skip
    return mlflow_json.page("metrics", page, mlflow_json.metric)
