"""MLflow's searches as SQL: parsed filters and sort keys (``smalt.specs.filters``) over the tracking tables.

Each search returns identifiers in order, one page of them (``limit``/``offset``); the caller loads
the records. The semantics are MLflow's SQL stores': a comparison on a metric, param or tag that a
run lacks does not match (not even ``!=``); sorting on a key puts the rows that lack it last in
both directions (NaN metrics just before them); ties fall back to each search's natural order.

Runs are jobs. Their MLflow attributes map onto job columns: ``run_id`` is the job name,
``run_name`` its display name (the name when it has none, and ``tags.mlflow.runName`` reads the
same), ``user_id`` its creator, ``start_time`` its start (its creation before it starts) and
``end_time`` its end, as whole epoch milliseconds; ``status`` goes through ``RUN_STATUS``.

``LIKE`` is case-sensitive and ``ILIKE`` is not, on SQLite as on PostgreSQL; in both a backslash
escapes ``%`` and ``_``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Text, and_, case, cast, false, func, or_, select, true
from sqlalchemy.engine import Connection

from smalt.entities import RUN_STATUS
from smalt.specs.filters import ATTRIBUTE, DATASET, METRIC, PARAM, TAG, Comparison, OrderKey
from smalt.store.tables import (
    asset_containers,
    asset_versions,
    experiment_tags,
    experiments,
    jobs,
    latest_metrics,
    logged_models,
    metrics,
    run_io,
    run_params,
    run_tags,
)
from smalt.store.tracking import DEFAULT_ARTIFACT_PREFIX

RUN_NAME_TAG = "mlflow.runName"
DATASET_CONTEXT_TAG = "mlflow.data.context"
PROMPT_TAG = "mlflow.prompt.is_prompt"
#: How many tags of one dataset input ``datasets.context`` looks through (MLflow clients send one).
DATASET_TAGS_SEARCHED = 10
#: Where runs keep their artifacts unless their experiment says otherwise (TrackingService's layout).
ARTIFACT_SCHEME = "mlflow-artifacts:"

_MLFLOW_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_VIEWS = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_MS = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)

Condition = ColumnElement[bool]


# -- shared pieces -----------------------------------------------------------------------------
def _compare(column: Any, op: str, value: Any) -> Condition:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value, escape="\\")  # type: ignore[no-any-return]
    if op == "ILIKE":
        return column.ilike(value, escape="\\")  # type: ignore[no-any-return]
    if op == "IN":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(list(value))  # type: ignore[no-any-return]
    raise ValueError(f"no SQL for operator {op!r}")


def _matches(text: str, op: str, value: Any) -> bool:
    """``op`` on a Python string, as SQL would do it (for values that are not in a column)."""
    if op == "=":
        return text == str(value)
    if op == "!=":
        return text != str(value)
    if op in ("LIKE", "ILIKE"):
        return _like_regex(str(value), re.IGNORECASE if op == "ILIKE" else 0).fullmatch(text) is not None
    if op == "IN":
        return text in value
    if op == "NOT IN":
        return text not in value
    raise ValueError(f"operator {op!r} does not apply to a string")


def _like_regex(pattern: str, flags: int) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(parts), flags | re.DOTALL)


def _missing_last(*missing: Condition) -> Any:
    """A sort key that puts present values (0) before each kind of missing one (1, 2, ...)."""
    return case(*((condition, rank) for rank, condition in enumerate(missing, start=1)), else_=0).asc()


def _direction(expression: Any, ascending: bool) -> Any:
    return expression.asc() if ascending else expression.desc()


def _page(query: Any, limit: int | None, offset: int) -> Any:
    query = query.offset(offset) if offset else query
    return query.limit(limit) if limit is not None else query


def _check_view(view: str) -> str:
    if view not in _VIEWS:
        raise ValueError(f"unknown view {view!r}; one of {', '.join(_VIEWS)}")
    return view


# -- runs --------------------------------------------------------------------------------------
def _instant(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=min(max(ms, _MIN_MS), _MAX_MS))


def _time_condition(column: Any, op: str, value: float) -> Condition:
    """``column`` (a timestamp) compared with ``value`` as MLflow sees it: whole epoch milliseconds,
    the stored microseconds rounded down. Every bound is exact, so both databases agree."""
    value = min(max(value, _MIN_MS), _MAX_MS)
    low, high = math.floor(value), math.ceil(value)
    if op == "=":
        return and_(column >= _instant(low), column < _instant(low + 1)) if low == high else false()
    if op == "!=":
        return or_(column < _instant(low), column >= _instant(low + 1)) if low == high else column.is_not(None)
    if op == ">":
        return column >= _instant(low + 1)  # type: ignore[no-any-return]
    if op == ">=":
        return column >= _instant(high)  # type: ignore[no-any-return]
    if op == "<":
        return column < _instant(high)  # type: ignore[no-any-return]
    if op == "<=":
        return column < _instant(low + 1)  # type: ignore[no-any-return]
    raise ValueError(f"operator {op!r} does not apply to a time")


def _status_condition(op: str, value: Any) -> Condition:
    """MLflow statuses that pass the comparison, as the job statuses behind them."""
    passing = {status for status in _MLFLOW_STATUSES if _matches(status, op, value)}
    if "RUNNING" in passing:
        # A job status RUN_STATUS does not know reads as RUNNING, so keep every status but the failing ones.
        failing = [job for job, status in RUN_STATUS.items() if status not in passing]
        return jobs.c.status.not_in(failing) if failing else true()
    statuses = [job for job, status in RUN_STATUS.items() if status in passing]
    return jobs.c.status.in_(statuses) if statuses else false()


def _run_name() -> Any:
    return func.coalesce(jobs.c.display_name, jobs.c.name)


def _start_time() -> Any:
    return func.coalesce(jobs.c.start_time, jobs.c.created_at)


def _artifact_uri() -> Any:
    # Mirrors TrackingService._artifact_uri: the location the experiment was created with, if any,
    # else the proxy's path under the default datastore.
    location = select(experiments.c.artifact_location).where(experiments.c.id == jobs.c.experiment_id).scalar_subquery()
    default = DEFAULT_ARTIFACT_PREFIX + cast(jobs.c.experiment_id, Text)
    own = func.rtrim(location, "/", type_=Text) + "/" + jobs.c.name + "/artifacts"
    proxied = f"{ARTIFACT_SCHEME}/azureml/" + jobs.c.name + "/artifacts"
    return case((and_(location != "", location != default), own), else_=proxied)


def _run_attribute(key: str) -> Any:
    if key == "run_id":
        return jobs.c.name
    if key == "run_name":
        return _run_name()
    if key == "user_id":
        return jobs.c.created_by
    if key == "status":
        return jobs.c.status
    if key == "start_time":
        return _start_time()
    if key == "end_time":
        return jobs.c.end_time
    if key == "artifact_uri":
        return _artifact_uri()
    raise ValueError(f"runs have no attribute {key!r}")


def _metric_value_test(table: Any, op: str, value: Any) -> Condition:
    # NaN is stored as NULL with is_nan set: it fails every comparison but "!=", as in MLflow.
    test = _compare(table.c.value, op, value)
    if op == "!=":
        return or_(test, table.c.is_nan == true())
    return and_(test, table.c.is_nan == false())


def _run_condition(comparison: Comparison) -> Condition:
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    if entity == ATTRIBUTE:
        if key in ("start_time", "end_time"):
            assert isinstance(value, int | float)
            return _time_condition(_run_attribute(key), op, value)
        if key == "status":
            return _status_condition(op, value)
        return _compare(_run_attribute(key), op, value)
    if entity == METRIC:
        return (
            select(latest_metrics.c.run)
            .where(latest_metrics.c.run == jobs.c.name, latest_metrics.c.key == key,
                   _metric_value_test(latest_metrics, op, value))
            .exists()
        )  # fmt: skip
    if entity in (PARAM, TAG):
        if entity == TAG and key == RUN_NAME_TAG:
            return _nullable_compare(_run_name(), op, value)
        table = run_params if entity == PARAM else run_tags
        found = select(table.c.run).where(table.c.run == jobs.c.name, table.c.key == key)
        if op == "IS NULL":
            return ~found.exists()
        if op == "IS NOT NULL":
            return found.exists()
        return found.where(_compare(table.c.value, op, value)).exists()
    if entity == DATASET:
        return (
            select(run_io.c.run)
            .where(run_io.c.run == jobs.c.name, run_io.c.direction == "input", run_io.c.kind == "dataset",
                   _dataset_test(key, op, value))
            .exists()
        )  # fmt: skip
    raise ValueError(f"runs have no entity {entity!r}")


def _nullable_compare(column: Any, op: str, value: Any) -> Condition:
    if op == "IS NULL":
        return column.is_(None)  # type: ignore[no-any-return]
    if op == "IS NOT NULL":
        return column.is_not(None)  # type: ignore[no-any-return]
    return _compare(column, op, value)


def _dataset_test(key: str, op: str, value: Any) -> Condition:
    payload = run_io.c.payload
    if key in ("name", "digest"):
        return _compare(payload[("dataset", key)].as_string(), op, value)
    if key == "context":
        # Fixed paths rather than a JSON array function, which SQLite and PostgreSQL spell differently.
        return or_(
            *(
                and_(
                    payload[("tags", i, "key")].as_string() == DATASET_CONTEXT_TAG,
                    _compare(payload[("tags", i, "value")].as_string(), op, value),
                )  # fmt: skip
                for i in range(DATASET_TAGS_SEARCHED)
            )
        )
    raise ValueError(f"datasets have no key {key!r}")


def _run_sort(key: OrderKey, source: FromClause, index: int) -> tuple[list[Any], FromClause]:
    """The ORDER BY terms of one sort key, and the FROM clause with what they need joined."""
    if key.entity == ATTRIBUTE or (key.entity == TAG and key.key == RUN_NAME_TAG):
        if key.entity == TAG:
            expression = _run_name()
        elif key.key == "status":
            # Sort by the status MLflow shows, not by the job status behind it.
            expression = case(dict(RUN_STATUS), value=jobs.c.status, else_="RUNNING")
        else:
            expression = _run_attribute(key.key)
        return [_missing_last(expression.is_(None)), _direction(expression, key.ascending)], source
    if key.entity == METRIC:
        joined = latest_metrics.alias(f"sort_{index}")
        source = source.outerjoin(joined, and_(joined.c.run == jobs.c.name, joined.c.key == key.key))
        missing = _missing_last(joined.c.is_nan == true(), joined.c.value.is_(None))
        return [missing, _direction(joined.c.value, key.ascending)], source
    if key.entity in (PARAM, TAG):
        joined = (run_params if key.entity == PARAM else run_tags).alias(f"sort_{index}")
        source = source.outerjoin(joined, and_(joined.c.run == jobs.c.name, joined.c.key == key.key))
        return [_missing_last(joined.c.value.is_(None)), _direction(joined.c.value, key.ascending)], source
    raise ValueError(f"runs cannot be sorted by {key.entity!r}")


def search_runs(connection: Connection, experiment_ids: Sequence[int], comparisons: Sequence[Comparison],
                order_by: Sequence[OrderKey], run_view: str, limit: int | None,
                offset: int = 0) -> list[str]:  # fmt: skip
    """Names of the runs (jobs) of ``experiment_ids`` that pass every comparison, in order.

    ``run_view`` is ACTIVE_ONLY, DELETED_ONLY (archived jobs) or ALL. The order is ``order_by``,
    then start time (newest first) unless ``order_by`` sorts by it, then name.
    """
    if not experiment_ids:
        return []
    query = select(jobs.c.name).where(jobs.c.experiment_id.in_(list(experiment_ids)))
    view = _check_view(run_view)
    if view != "ALL":
        query = query.where(jobs.c.archived.is_(view == "DELETED_ONLY"))
    for comparison in comparisons:
        query = query.where(_run_condition(comparison))
    source: FromClause = jobs
    ordering: list[Any] = []
    for index, key in enumerate(order_by):
        terms, source = _run_sort(key, source, index)
        ordering.extend(terms)
    if not any(k.entity == ATTRIBUTE and k.key == "start_time" for k in order_by):
        ordering.append(_start_time().desc())
    ordering.append(jobs.c.name.asc())
    query = query.select_from(source).order_by(*ordering)
    return list(connection.execute(_page(query, limit, offset)).scalars())


# -- experiments -------------------------------------------------------------------------------
_EXPERIMENT_COLUMNS = {
    "name": experiments.c.name,
    "experiment_id": experiments.c.id,
    "creation_time": experiments.c.creation_time,
    "last_update_time": experiments.c.last_update_time,
}


def _experiment_condition(comparison: Comparison) -> Condition:
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    if entity == ATTRIBUTE and key in _EXPERIMENT_COLUMNS:
        return _compare(_EXPERIMENT_COLUMNS[key], op, value)
    if entity == TAG:
        found = select(experiment_tags.c.experiment_id).where(
            experiment_tags.c.experiment_id == experiments.c.id, experiment_tags.c.key == key
        )
        if op == "IS NULL":
            return ~found.exists()
        if op == "IS NOT NULL":
            return found.exists()
        return found.where(_compare(experiment_tags.c.value, op, value)).exists()
    raise ValueError(f"experiments cannot be searched by {entity}.{key}")


def search_experiments(connection: Connection, comparisons: Sequence[Comparison], order_by: Sequence[OrderKey],
                       view: str, limit: int | None, offset: int = 0) -> list[int]:  # fmt: skip
    """Ids of the experiments that pass every comparison, in order.

    The default order is MLflow's: newest first, then id ascending; a given ``order_by`` ends with
    id descending unless it sorts by id itself.
    """
    query = select(experiments.c.id)
    stage = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": None}[_check_view(view)]
    if stage is not None:
        query = query.where(experiments.c.lifecycle_stage == stage)
    for comparison in comparisons:
        query = query.where(_experiment_condition(comparison))
    keys = list(order_by) or [OrderKey(ATTRIBUTE, "creation_time", False), OrderKey(ATTRIBUTE, "experiment_id")]
    for key in keys:
        if key.entity != ATTRIBUTE or key.key not in _EXPERIMENT_COLUMNS:
            raise ValueError(f"experiments cannot be sorted by {key.entity}.{key.key}")
    ordering = [_direction(_EXPERIMENT_COLUMNS[k.key], k.ascending) for k in keys]
    if not any(k.key == "experiment_id" for k in keys):
        ordering.append(experiments.c.id.desc())
    return [int(i) for i in connection.execute(_page(query.order_by(*ordering), limit, offset)).scalars()]


# -- the model registry ------------------------------------------------------------------------
def _querying_prompts(comparisons: Sequence[Comparison]) -> bool:
    # MLflow's registry hides prompts (models tagged mlflow.prompt.is_prompt = 'true') unless the
    # filter asks for them with that very tag.
    for c in comparisons:
        if c.entity == TAG and c.key == PROMPT_TAG and isinstance(c.value, str):
            return (c.op == "=" and c.value.lower() == "true") or (c.op == "!=" and c.value.lower() == "false")
    return False


def _is_prompt(tags: Any) -> Condition:
    return tags[PROMPT_TAG].as_string() == "true"  # type: ignore[no-any-return]


def _not_prompt(tags: Any) -> Condition:
    return func.coalesce(tags[PROMPT_TAG].as_string(), "") != "true"


def _container_modified() -> Any:
    return func.coalesce(asset_containers.c.last_modified_at, asset_containers.c.created_at)


def search_registered_models(connection: Connection, comparisons: Sequence[Comparison],
                             order_by: Sequence[OrderKey], limit: int | None,
                             offset: int = 0) -> list[str]:  # fmt: skip
    """Names of the registered models (model assets that are not archived) that pass every comparison.

    Tags are the container's ``tags``. The order is ``order_by``, then name.
    """
    table = asset_containers
    query = select(table.c.name).where(table.c.kind == "model", table.c.archived.is_(False))
    prompts = _querying_prompts(comparisons)
    for c in comparisons:
        if c.entity == ATTRIBUTE and c.key == "name":
            query = query.where(_compare(table.c.name, c.op, c.value))
        elif c.entity == TAG:
            if c.key == PROMPT_TAG and not prompts:
                continue  # MLflow drops it: models that are not prompts lack the tag
            query = query.where(_compare(table.c.tags[c.key].as_string(), c.op, c.value))
        else:
            raise ValueError(f"registered models cannot be searched by {c.entity}.{c.key}")
    if not prompts:
        query = query.where(_not_prompt(table.c.tags))
    columns = {"name": table.c.name, "creation_timestamp": table.c.created_at,
               "last_updated_timestamp": _container_modified()}  # fmt: skip
    ordering: list[Any] = []
    for key in order_by:
        if key.entity != ATTRIBUTE or key.key not in columns:
            raise ValueError(f"registered models cannot be sorted by {key.entity}.{key.key}")
        ordering.append(_direction(columns[key.key], key.ascending))
    if not any(k.key == "name" for k in order_by):
        ordering.append(table.c.name.asc())
    return list(connection.execute(_page(query.order_by(*ordering), limit, offset)).scalars())


def _version_column(key: str) -> Any:
    spec = asset_versions.c.spec
    if key == "name":
        return asset_versions.c.name
    if key == "version_number":
        return asset_versions.c.version_num
    if key == "run_id":
        return spec["job_name"].as_string()
    if key == "source_path":
        # What an MLflow client registered from (kept in the properties), else the stored path.
        return func.coalesce(spec["properties"]["mlflow.source"].as_string(), spec["path"].as_string())
    if key == "creation_timestamp":
        return asset_versions.c.created_at
    if key == "last_updated_timestamp":
        return asset_versions.c.last_modified_at
    raise ValueError(f"model versions have no attribute {key!r}")


def search_model_versions(connection: Connection, comparisons: Sequence[Comparison], order_by: Sequence[OrderKey],
                          limit: int | None, offset: int = 0) -> list[tuple[str, str]]:  # fmt: skip
    """``(name, version)`` of the model versions that pass every comparison; archived ones are
    MLflow's deleted versions and never match.

    ``run_id`` is the spec's ``job_name``, ``source_path`` its ``path``, tags its ``tags``. The
    default order is MLflow's: last updated first, then name, then version (newest first).
    """
    table = asset_versions
    query = select(table.c.name, table.c.version).where(table.c.kind == "model", table.c.archived.is_(False))
    # A model archived as a whole hides all its versions.
    archived_models = select(asset_containers.c.name).where(
        asset_containers.c.kind == "model",
        asset_containers.c.name == table.c.name,
        asset_containers.c.archived.is_(True),
    )
    query = query.where(~archived_models.exists())
    prompts = _querying_prompts(comparisons)
    for c in comparisons:
        if c.entity == ATTRIBUTE:
            query = query.where(_compare(_version_column(c.key), c.op, c.value))
        elif c.entity == TAG:
            if c.key == PROMPT_TAG and not prompts:
                continue
            query = query.where(_compare(table.c.spec["tags"][c.key].as_string(), c.op, c.value))
        else:
            raise ValueError(f"model versions cannot be searched by {c.entity}.{c.key}")
    if not prompts:
        prompt_models = select(asset_containers.c.name).where(
            asset_containers.c.kind == "model", asset_containers.c.name == table.c.name,
            _is_prompt(asset_containers.c.tags),
        )  # fmt: skip
        query = query.where(~prompt_models.exists(), _not_prompt(table.c.spec["tags"]))
    keys = list(order_by) or [
        OrderKey(ATTRIBUTE, "last_updated_timestamp", False), OrderKey(ATTRIBUTE, "name"),
        OrderKey(ATTRIBUTE, "version_number", False),
    ]  # fmt: skip
    if not any(k.key == "name" for k in keys):
        keys.append(OrderKey(ATTRIBUTE, "name"))
    if not any(k.key == "version_number" for k in keys):
        keys.append(OrderKey(ATTRIBUTE, "version_number", False))
    ordering: list[Any] = []
    for key in keys:
        if key.entity != ATTRIBUTE:
            raise ValueError(f"model versions cannot be sorted by {key.entity}.{key.key}")
        column = _version_column(key.key)
        ordering += [_missing_last(column.is_(None)), _direction(column, key.ascending)]
    ordering.append(table.c.id.desc())  # versions without a number still come in a fixed order
    return [(n, v) for n, v in connection.execute(_page(query.order_by(*ordering), limit, offset))]


# -- logged models -----------------------------------------------------------------------------
_LOGGED_MODEL_COLUMNS = {
    "name": logged_models.c.name,
    "model_id": logged_models.c.model_id,
    "model_type": logged_models.c.model_type,
    "status": logged_models.c.status,
    "source_run_id": logged_models.c.source_run_id,
    "creation_timestamp": logged_models.c.creation_timestamp,
    "last_updated_timestamp": logged_models.c.last_updated_timestamp,
}


def _on_datasets(datasets: Sequence[tuple[str, str | None]]) -> list[Condition]:
    if not datasets:
        return []
    return [
        or_(*(and_(metrics.c.dataset_name == name, *([metrics.c.dataset_digest == digest] if digest else []))
              for name, digest in datasets))
    ]  # fmt: skip


def _latest_model_metric(key: OrderKey) -> Any:
    narrow = []
    if key.dataset_name:
        narrow.append(metrics.c.dataset_name == key.dataset_name)
    if key.dataset_digest:
        narrow.append(metrics.c.dataset_digest == key.dataset_digest)
    return (
        select(metrics.c.value)
        .where(metrics.c.model_id == logged_models.c.model_id, metrics.c.key == key.key, *narrow)
        .order_by(metrics.c.timestamp.desc(), metrics.c.step.desc(), metrics.c.run.asc(), metrics.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def search_logged_models(connection: Connection, experiment_ids: Sequence[int], comparisons: Sequence[Comparison],
                         order_by: Sequence[OrderKey], limit: int | None, offset: int = 0, *,
                         datasets: Sequence[tuple[str, str | None]] = ()) -> list[str]:  # fmt: skip
    """Ids of the logged models of ``experiment_ids`` (not deleted) that pass every comparison.

    A metric comparison matches when any value the model logged for that key does (on one of
    ``datasets``, ``(name, digest or None)``, when given; with no metric comparison, ``datasets``
    keeps the models with a metric on one of them). Params and tags are the model's JSON maps. The
    order is ``order_by`` (a metric sorts by its latest value), then newest first, then id.
    """
    if not experiment_ids:
        return []
    table = logged_models
    query = select(table.c.model_id).where(
        table.c.experiment_id.in_(list(experiment_ids)), table.c.lifecycle_stage != "deleted"
    )
    on_datasets = _on_datasets(datasets)
    for c in comparisons:
        if c.entity == ATTRIBUTE and c.key in _LOGGED_MODEL_COLUMNS:
            query = query.where(_compare(_LOGGED_MODEL_COLUMNS[c.key], c.op, c.value))
        elif c.entity == METRIC:
            logged = select(metrics.c.id).where(
                metrics.c.model_id == table.c.model_id, metrics.c.key == c.key,
                _metric_value_test(metrics, c.op, c.value), *on_datasets,
            )  # fmt: skip
            query = query.where(logged.exists())
        elif c.entity in (PARAM, TAG):
            values = table.c.params if c.entity == PARAM else table.c.tags
            query = query.where(_compare(values[c.key].as_string(), c.op, c.value))
        else:
            raise ValueError(f"logged models cannot be searched by {c.entity}.{c.key}")
    if on_datasets and not any(c.entity == METRIC for c in comparisons):
        query = query.where(select(metrics.c.id).where(metrics.c.model_id == table.c.model_id, *on_datasets).exists())
    ordering: list[Any] = []
    for key in order_by:
        if key.entity == METRIC:
            expression = _latest_model_metric(key)
        elif key.entity == ATTRIBUTE and key.key in _LOGGED_MODEL_COLUMNS:
            expression = _LOGGED_MODEL_COLUMNS[key.key]
        else:
            raise ValueError(f"logged models cannot be sorted by {key.entity}.{key.key}")
        ordering += [_missing_last(expression.is_(None)), _direction(expression, key.ascending)]
    if not any(k.entity == ATTRIBUTE and k.key == "creation_timestamp" for k in order_by):
        ordering.append(table.c.creation_timestamp.desc())
    if not any(k.entity == ATTRIBUTE and k.key == "model_id" for k in order_by):
        ordering.append(table.c.model_id.asc())
    return list(connection.execute(_page(query.order_by(*ordering), limit, offset)).scalars())


__all__ = [
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
]
