"""Tracking rows: experiments, and the metrics, params, tags, inputs and outputs of runs (jobs).

A run is a job (``jobs.name`` is the MLflow run id); this module keeps what MLflow logs beside it.
Times are epoch milliseconds, as MLflow sends them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from smalt.store.dialects import insert_ignoring_conflicts, upsert
from smalt.store.tables import (
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


@dataclass(frozen=True)
class ExperimentRecord:
    id: int
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str]


@dataclass(frozen=True)
class MetricRecord:
    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class RunData:
    params: dict[str, str]
    tags: dict[str, str]
    latest: list[MetricRecord]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


@dataclass(frozen=True)
class LoggedModelRecord:
    model_id: str
    experiment_id: int
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    source_run_id: str | None
    status: str
    status_message: str | None
    model_type: str | None
    lifecycle_stage: str
    tags: dict[str, str]
    params: dict[str, str]


#: An experiment created without an artifact location gets this prefix and its id.
DEFAULT_ARTIFACT_PREFIX = "mlflow-artifacts:/experiments/"


def default_artifact_location(experiment_id: int) -> str:
    return f"{DEFAULT_ARTIFACT_PREFIX}{experiment_id}"


class ParamConflict(Exception):
    """A param logged again with another value (MLflow params are write-once)."""

    def __init__(self, key: str, old: str, new: str) -> None:
        super().__init__(key)
        self.key, self.old, self.new = key, old, new


def _value(value: float | None, is_nan: bool) -> float:
    return math.nan if is_nan or value is None else value


def _order(m: MetricRecord) -> tuple[int, int, float]:
    # MLflow's "latest": the highest step, then the newest timestamp, then the largest value.
    return (m.step, m.timestamp, -math.inf if math.isnan(m.value) else m.value)


class TrackingRepository:
    """Tracking rows inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, name: str, artifact_location: str | None, tags: dict[str, str], now: int) -> int:
        result = self._c.execute(
            experiments.insert().values(
                name=name,
                artifact_location=artifact_location or "",
                lifecycle_stage="active",
                creation_time=now,
                last_update_time=now,
            )  # fmt: skip
        )
        (experiment_id,) = result.inserted_primary_key or (None,)
        assert experiment_id is not None
        if not artifact_location:
            self._c.execute(
                update(experiments).where(experiments.c.id == experiment_id)
                .values(artifact_location=default_artifact_location(int(experiment_id)))
            )  # fmt: skip
        for key, value in tags.items():
            self.set_experiment_tag(int(experiment_id), key, value)
        return int(experiment_id)

    def ensure_experiment(self, name: str, now: int) -> int:
        """The id of the experiment with this name, created (active) when there is none."""
        found = self._c.execute(select(experiments.c.id).where(experiments.c.name == name)).scalar()
        if found is not None:
            return int(found)
        self._c.execute(
            insert_ignoring_conflicts(self._c, experiments).values(
                name=name, artifact_location="", lifecycle_stage="active", creation_time=now, last_update_time=now
            )
        )
        made = int(self._c.execute(select(experiments.c.id).where(experiments.c.name == name)).scalar_one())
        self._c.execute(
            update(experiments).where(experiments.c.id == made, experiments.c.artifact_location == "")
            .values(artifact_location=default_artifact_location(made))
        )  # fmt: skip
        return made

    def experiments(self, ids: Sequence[int]) -> list[ExperimentRecord]:
        """The experiments with these ids, in the order given (missing ones left out)."""
        if not ids:
            return []
        rows = {r.id: r for r in self._c.execute(select(experiments).where(experiments.c.id.in_(list(ids))))}
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        for t in self._c.execute(select(experiment_tags).where(experiment_tags.c.experiment_id.in_(list(rows)))):
            tags[t.experiment_id][t.key] = t.value
        return [
            ExperimentRecord(
                id=r.id,
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tags[r.id],
            )  # fmt: skip
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def experiment(self, experiment_id: int) -> ExperimentRecord | None:
        found = self.experiments([experiment_id])
        return found[0] if found else None

    def experiment_by_name(self, name: str) -> ExperimentRecord | None:
        found = self._c.execute(select(experiments.c.id).where(experiments.c.name == name)).scalar()
        return self.experiment(found) if found is not None else None

    def update_experiment(self, experiment_id: int, now: int, **values: Any) -> None:
        self._c.execute(
            update(experiments).where(experiments.c.id == experiment_id).values(last_update_time=now, **values)
        )
        if "name" in values:
            # jobs keep their experiment's name for smalt's own listings; keep it in step.
            self._c.execute(
                update(jobs).where(jobs.c.experiment_id == experiment_id).values(experiment_name=values["name"])
            )

    def set_experiment_tag(self, experiment_id: int, key: str, value: str) -> None:
        self._c.execute(
            upsert(self._c, experiment_tags, ("experiment_id", "key"), ("value",))
            .values(experiment_id=experiment_id, key=key, value=value)
        )  # fmt: skip

    def delete_experiment_tag(self, experiment_id: int, key: str) -> bool:
        result = self._c.execute(
            delete(experiment_tags).where(
                experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key
            )
        )
        return bool(result.rowcount)

    # -- run data ---------------------------------------------------------------------------
    def log(self, run: str, *, metrics_: Sequence[MetricRecord] = (), params: Sequence[tuple[str, str]] = (),
            tags: Sequence[tuple[str, str]] = ()) -> None:  # fmt: skip
        """Record a batch. Raises ParamConflict (and the caller rolls back) for a param that changes."""
        if params:
            self._log_params(run, params)
        if tags:
            statement = upsert(self._c, run_tags, ("run", "key"), ("value",))
            self._c.execute(statement, [{"run": run, "key": k, "value": v} for k, v in dict(tags).items()])
        if metrics_:
            self._insert_metrics(run, metrics_)
            latest: dict[str, MetricRecord] = {}
            for m in metrics_:
                if m.key not in latest or _order(m) > _order(latest[m.key]):
                    latest[m.key] = m
            self._update_latest(run, list(latest.values()))

    def _insert_metrics(self, run: str, values: Sequence[MetricRecord]) -> None:
        # Straight to the driver: SQLAlchemy's per-row parameter handling costs more than SQLite's
        # insert for a 1,000-metric batch.
        marker = "?" if self._c.dialect.paramstyle == "qmark" else "%s"
        columns = ("run", "key", "value", "is_nan", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")
        sql = f"INSERT INTO metrics ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
        rows = [
            (run, m.key, None if math.isnan(m.value) else m.value, math.isnan(m.value), m.timestamp, m.step,
             m.model_id, m.dataset_name, m.dataset_digest)
            for m in values
        ]  # fmt: skip
        self._c.exec_driver_sql(sql, rows)

    def _log_params(self, run: str, params: Sequence[tuple[str, str]]) -> None:
        wanted: dict[str, str] = {}
        for key, value in params:
            if wanted.get(key, value) != value:
                raise ParamConflict(key, wanted[key], value)
            wanted[key] = value
        existing = dict(
            self._c.execute(
                select(run_params.c.key, run_params.c.value).where(
                    run_params.c.run == run, run_params.c.key.in_(list(wanted))
                )
            ).all()  # fmt: skip
        )
        for key, value in wanted.items():
            if key in existing and existing[key] != value:
                raise ParamConflict(key, existing[key], value)
        new = [{"run": run, "key": k, "value": v} for k, v in wanted.items() if k not in existing]
        if new:
            self._c.execute(run_params.insert(), new)

    def _update_latest(self, run: str, latest: list[MetricRecord]) -> None:
        # Straight to the driver, as the insert: a batch may carry 1,000 keys. The statement reads
        # the same on SQLite and PostgreSQL (ON CONFLICT and row values); only the marker differs.
        marker = "?" if self._c.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO latest_metrics (run, key, value, is_nan, timestamp, step) VALUES ({', '.join([marker] * 6)}) "
            "ON CONFLICT (run, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
            "timestamp = excluded.timestamp, step = excluded.step "
            "WHERE (excluded.step, excluded.timestamp, COALESCE(excluded.value, -1e308)) >= "
            "(latest_metrics.step, latest_metrics.timestamp, COALESCE(latest_metrics.value, -1e308))"
        )
        rows = [
            (run, m.key, None if math.isnan(m.value) else m.value, math.isnan(m.value), m.timestamp, m.step)
            for m in latest
        ]
        self._c.exec_driver_sql(sql, rows)

    def delete_tag(self, run: str, key: str) -> bool:
        result = self._c.execute(delete(run_tags).where(run_tags.c.run == run, run_tags.c.key == key))
        return bool(result.rowcount)

    def tag(self, run: str, key: str) -> str | None:
        return self._c.execute(select(run_tags.c.value).where(run_tags.c.run == run, run_tags.c.key == key)).scalar()

    def run_data(self, runs: Sequence[str]) -> dict[str, RunData]:
        """Params, tags, latest metrics, inputs and outputs of many runs in five queries."""
        names = list(runs)
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        latest: dict[str, list[MetricRecord]] = defaultdict(list)
        io: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for chunk in _chunks(names, 500):
            for r in self._c.execute(select(run_params).where(run_params.c.run.in_(chunk))):
                params[r.run][r.key] = r.value
            for r in self._c.execute(select(run_tags).where(run_tags.c.run.in_(chunk))):
                tags[r.run][r.key] = r.value
            for r in self._c.execute(
                select(latest_metrics).where(latest_metrics.c.run.in_(chunk)).order_by(latest_metrics.c.key)
            ):
                latest[r.run].append(MetricRecord(r.key, _value(r.value, r.is_nan), r.timestamp, r.step))
            for r in self._c.execute(select(run_io).where(run_io.c.run.in_(chunk)).order_by(run_io.c.id)):
                io[(r.run, r.direction)].append(r.payload)
        return {
            n: RunData(
                params=params[n], tags=tags[n], latest=latest[n], inputs=io[(n, "input")], outputs=io[(n, "output")]
            )  # fmt: skip
            for n in names
        }

    def metric_history(self, run: str, key: str, *, limit: int | None = None, offset: int = 0) -> list[MetricRecord]:
        query = (
            select(metrics).where(metrics.c.run == run, metrics.c.key == key)
            .order_by(metrics.c.timestamp, metrics.c.step, metrics.c.value, metrics.c.id).offset(offset)
        )  # fmt: skip
        if limit is not None:
            query = query.limit(limit)
        # MLflow 3 clients log a run's metrics again with the model's id once a model is logged;
        # like MLflow's store, the history holds each (step, timestamp, value) once.
        seen: set[tuple[int, int, float | None, bool]] = set()
        history = []
        for r in self._c.execute(query):
            point = (r.step, r.timestamp, r.value, r.is_nan)
            if point not in seen:
                seen.add(point)
                history.append(MetricRecord(r.key, _value(r.value, r.is_nan), r.timestamp, r.step, r.model_id,
                                            r.dataset_name, r.dataset_digest))  # fmt: skip
        return history

    def metric_keys(self, run: str) -> list[str]:
        return list(self._c.execute(select(latest_metrics.c.key).where(latest_metrics.c.run == run)).scalars())

    def add_io(self, run: str, direction: str, kind: str, key: str, payload: dict[str, Any]) -> None:
        """Record an input or output once (the same dataset logged twice stays one row)."""
        exists = self._c.execute(
            select(run_io.c.id).where(
                run_io.c.run == run, run_io.c.direction == direction, run_io.c.kind == kind, run_io.c.key == key
            )  # fmt: skip
        ).first()
        if exists is None:
            self._c.execute(run_io.insert().values(run=run, direction=direction, kind=kind, key=key, payload=payload))

    # -- logged models ----------------------------------------------------------------------
    def create_logged_model(self, record: LoggedModelRecord) -> None:
        self._c.execute(logged_models.insert().values(**record.__dict__))

    def logged_models(self, ids: Iterable[str]) -> list[LoggedModelRecord]:
        wanted = list(ids)
        query = select(logged_models).where(logged_models.c.model_id.in_(wanted))
        rows = {r.model_id: r for r in self._c.execute(query)}
        return [LoggedModelRecord(**r._mapping) for i in wanted if (r := rows.get(i)) is not None]

    def logged_model(self, model_id: str) -> LoggedModelRecord | None:
        found = self.logged_models([model_id])
        return found[0] if found else None

    def update_logged_model(self, model_id: str, **values: Any) -> None:
        self._c.execute(update(logged_models).where(logged_models.c.model_id == model_id).values(**values))

    def model_metrics(self, model_ids: Sequence[str]) -> dict[str, list[MetricRecord]]:
        found: dict[str, list[MetricRecord]] = defaultdict(list)
        if not model_ids:
            return found
        query = select(metrics).where(metrics.c.model_id.in_(list(model_ids))).order_by(metrics.c.id)
        for r in self._c.execute(query):
            found[r.model_id].append(
                MetricRecord(
                    r.key,
                    _value(r.value, r.is_nan),
                    r.timestamp,
                    r.step,
                    r.model_id,
                    r.dataset_name,
                    r.dataset_digest,
                    run_id=r.run,
                )  # fmt: skip
            )
        return found

    # -- housekeeping -----------------------------------------------------------------------
    def runs_in_experiment(self, experiment_id: int) -> list[str]:
        return list(self._c.execute(select(jobs.c.name).where(jobs.c.experiment_id == experiment_id)).scalars())


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "ExperimentRecord",
    "LoggedModelRecord",
    "MetricRecord",
    "ParamConflict",
    "RunData",
    "TrackingRepository",
]
