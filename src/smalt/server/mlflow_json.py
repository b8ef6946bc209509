"""Records shaped as MLflow's JSON messages (proto3 JSON field names, epoch milliseconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smalt.server.app import finite
from smalt.services.tracking import LoggedModel, Page, Run, RunInfo
from smalt.store.tracking import ExperimentRecord, MetricRecord


def key_values(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def compact(message: dict[str, Any]) -> dict[str, Any]:
    """Leave out empty lists and unset fields, as proto3 JSON (and so MLflow's server) does."""
    return {k: v for k, v in message.items() if v is not None and v != []}


def page(key: str, found: Page[Any], shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """One page of a search or history: the shaped items under ``key`` and the next page's token,
    each left out when empty, as MLflow's server answers."""
    return compact({key: [shape(item) for item in found.items], "next_page_token": found.next_page_token or None})


def experiment(e: ExperimentRecord) -> dict[str, Any]:
    return compact({
        "experiment_id": str(e.id), "name": e.name, "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage, "last_update_time": e.last_update_time,
        "creation_time": e.creation_time, "tags": key_values(e.tags),
    })  # fmt: skip


def metric(m: MetricRecord) -> dict[str, Any]:
    shaped: dict[str, Any] = {"key": m.key, "value": finite(m.value), "timestamp": m.timestamp, "step": m.step}
    if m.model_id:
        shaped["model_id"] = m.model_id
    if m.run_id:
        shaped["run_id"] = m.run_id
    if m.dataset_name:
        shaped["dataset_name"] = m.dataset_name
        shaped["dataset_digest"] = m.dataset_digest
    return shaped


def run_info(i: RunInfo) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "run_uuid": i.run_id, "run_id": i.run_id, "run_name": i.run_name, "experiment_id": str(i.experiment_id),
        "user_id": i.user_id, "status": i.status, "start_time": i.start_time, "artifact_uri": i.artifact_uri,
        "lifecycle_stage": i.lifecycle_stage,
    }  # fmt: skip
    if i.end_time is not None:
        shaped["end_time"] = i.end_time
    return shaped


def run(r: Run) -> dict[str, Any]:
    inputs = compact(
        {
            "dataset_inputs": [p for p in r.data.inputs if "dataset" in p],
            "model_inputs": [p for p in r.data.inputs if "model_id" in p],
        }
    )
    return {
        "info": run_info(r.info),
        "data": compact(
            {
                "metrics": [metric(m) for m in r.data.latest],
                "params": key_values(r.data.params),
                "tags": key_values(r.data.tags),
            }
        ),
        "inputs": inputs,
        "outputs": compact({"model_outputs": r.data.outputs}),
    }


def logged_model(m: LoggedModel) -> dict[str, Any]:
    r = m.record
    info: dict[str, Any] = {
        "model_id": r.model_id, "experiment_id": str(r.experiment_id), "name": r.name,
        "creation_timestamp_ms": r.creation_timestamp, "last_updated_timestamp_ms": r.last_updated_timestamp,
        "artifact_uri": r.artifact_location, "status": r.status, "lifecycle_stage": r.lifecycle_stage,
        "tags": key_values(dict(sorted(r.tags.items()))),
    }  # fmt: skip
    if r.source_run_id:
        info["source_run_id"] = r.source_run_id
    if r.model_type:
        info["model_type"] = r.model_type
    if r.status_message:
        info["status_message"] = r.status_message
    return {"info": compact(info), "data": compact({"params": key_values(r.params),
                                                   "metrics": [metric(x) for x in m.metrics]})}  # fmt: skip
