"""Experiment tracking: experiments, runs (which are jobs), their metrics, params, tags and artifacts.

The MLflow REST protocol (``smalt.server``) and smalt's own job views both call this service. A run
is a job: its id is the job's name. Runs that MLflow clients create are jobs of type ``run``, and
their status follows what the client sets; a command job's status belongs to its supervisor.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from smalt.artifacts import Entry, Location, list_entries, read_stream, write_stream
from smalt.entities import JOB_STATUS, RUN_STATUS, JobStatus
from smalt.errors import AlreadyExistsError, InvalidSpecError, NotFoundError, PermissionDeniedError, SpecProblem
from smalt.services.datastores import DatastoreService
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext, run_scope
from smalt.specs import DatastoreUri
from smalt.specs.filters import ATTRIBUTE, Comparison, OrderKey, parse_filter, parse_order_by
from smalt.specs.references import confined_path
from smalt.store import JobRecord
from smalt.store.tracking import (
    ExperimentRecord,
    LoggedModelRecord,
    MetricRecord,
    ParamConflict,
    RunData,
    default_artifact_location,
)

DEFAULT_EXPERIMENT = "Default"
#: MLflow's limits on one log-batch request and on values.
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_TOTAL = 1000, 100, 100, 1000
MAX_PARAM_VALUE, MAX_TAG_VALUE, MAX_KEY = 6000, 8000, 250
#: Where runs keep their artifacts in the default datastore (the path `azureml/<job>/artifacts`
#: that command jobs already use for ./outputs and ./logs).
ARTIFACT_SCHEME = "mlflow-artifacts:"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    experiment_id: int
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class LoggedModel:
    record: LoggedModelRecord
    metrics: list[MetricRecord]


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _datetime(ms: int) -> datetime:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidSpecError.one(
            f"Invalid timestamp {ms}: milliseconds since 1970 between years 1 and 9999 are accepted.", "timestamp"
        ) from None


def run_artifact_path(run_id: str) -> str:
    """The run's artifact root, relative to the default datastore."""
    return f"azureml/{run_id}/artifacts"


def page_offset(token: str | None) -> int:
    """The offset an opaque page token (base64 JSON, as MLflow's) stands for."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidSpecError.one(f"Invalid page token {token!r}.", "page_token")


def next_page_token(offset: int, got: int, limit: int) -> str | None:
    # Like MLflow: a token whenever the page is full (the next page may be empty).
    return base64.b64encode(json.dumps({"offset": offset + got}).encode()).decode() if got >= limit else None


@functools.lru_cache(maxsize=4096)
def _valid_key(key: str) -> bool:
    # Cached: a run logs the same few keys thousands of times.
    return bool(key) and len(key) <= MAX_KEY and not key.startswith("/") and ".." not in key.split("/")


def _check_key(key: str, what: str) -> None:
    if not _valid_key(key):
        raise InvalidSpecError.one(
            f"Invalid {what} name: {key!r}. Names may contain alphanumerics, underscores, dashes, periods, "
            f"spaces and slashes, at most {MAX_KEY} characters, not starting with '/'.",
            what,
        )


class TrackingService:
    """Experiments and runs as MLflow sees them, recorded in the workspace's store."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> int:  # fmt: skip
        if not name or not name.strip():
            raise InvalidSpecError.one("Experiment name must not be empty.", "name")
        with self._ws.store.transaction(write=True) as tx:
            existing = tx.tracking.experiment_by_name(name)
            if existing is not None:
                raise AlreadyExistsError(
                    f"Experiment '{name}' already exists."
                    + (
                        " It is deleted; restore it or choose another name."
                        if existing.lifecycle_stage == "deleted"
                        else ""
                    ),  # fmt: skip
                    hint="choose another name",
                )
            return tx.tracking.create_experiment(name, artifact_location, dict(tags or {}), now_ms())

    def ensure_experiment(self, name: str) -> int:
        with self._ws.store.transaction(write=True) as tx:
            return tx.tracking.ensure_experiment(name, now_ms())

    def get_experiment(self, experiment_id: int | str) -> ExperimentRecord:
        number = _experiment_number(experiment_id)
        with self._ws.store.transaction() as tx:
            found = tx.tracking.experiment(number) if number is not None else None
        if found is None:
            raise NotFoundError(f"No Experiment with id={experiment_id} exists.", hint="smalt job list")
        return found

    def get_experiment_by_name(self, name: str) -> ExperimentRecord:
        with self._ws.store.transaction() as tx:
            found = tx.tracking.experiment_by_name(name)
        if found is None:
            raise NotFoundError(f"Could not find experiment with name '{name}'.")
        return found

    def search_experiments(self, *, filter_string: str | None = None, order_by: Sequence[str] = (),
                           view: str | int | None = "ACTIVE_ONLY", max_results: int = 1000,
                           page_token: str | None = None) -> Page[ExperimentRecord]:  # fmt: skip
        from smalt.store.search import search_experiments

        comparisons = parse_filter(filter_string, scope="experiments")
        order = parse_order_by(list(order_by), scope="experiments")
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            ids = search_experiments(tx.connection, comparisons, order, _view(view), max_results, offset)
            found = tx.tracking.experiments(ids)
        return Page(found, next_page_token(offset, len(found), max_results))

    def rename_experiment(self, experiment_id: int | str, new_name: str) -> None:
        experiment = self.get_experiment(experiment_id)
        if not new_name:
            raise InvalidSpecError.one("The new experiment name must not be empty.", "new_name")
        with self._ws.store.transaction(write=True) as tx:
            other = tx.tracking.experiment_by_name(new_name)
            if other is not None and other.id != experiment.id:
                raise AlreadyExistsError(f"Experiment '{new_name}' already exists.", hint="choose another name")
            tx.tracking.update_experiment(experiment.id, now_ms(), name=new_name)

    def set_experiment_lifecycle(self, experiment_id: int | str, stage: str) -> None:
        """Delete (``deleted``) or restore (``active``) an experiment and its runs, as MLflow does."""
        experiment = self.get_experiment(experiment_id)
        if stage == "deleted" and experiment.id == 0:
            raise InvalidSpecError.one("Cannot delete the default experiment '0'.", "experiment_id")
        with self._ws.store.transaction(write=True) as tx:
            tx.tracking.update_experiment(experiment.id, now_ms(), lifecycle_stage=stage)
            for run in tx.tracking.runs_in_experiment(experiment.id):
                tx.jobs.touch(run, archived=stage == "deleted")

    def set_experiment_tag(self, experiment_id: int | str, key: str, value: str) -> None:
        experiment = self.get_experiment(experiment_id)
        _check_key(key, "tag")
        with self._ws.store.transaction(write=True) as tx:
            tx.tracking.set_experiment_tag(experiment.id, key, value)

    def delete_experiment_tag(self, experiment_id: int | str, key: str) -> None:
        experiment = self.get_experiment(experiment_id)
        with self._ws.store.transaction(write=True) as tx:
            if not tx.tracking.delete_experiment_tag(experiment.id, key):
                raise NotFoundError(f"No tag with name: {key} in experiment {experiment.id}.")

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, experiment_id: int | str | None, *, run_name: str | None = None,
                   start_time: int | None = None, tags: dict[str, str] | None = None,
                   user_id: str | None = None) -> Run:  # fmt: skip
        """A run started by an MLflow client: a job of type ``run``, Running from the start."""
        from smalt.services.jobs import new_job_name

        experiment = self.get_experiment(experiment_id if experiment_id not in (None, "") else 0)
        if experiment.lifecycle_stage != "active":
            raise InvalidSpecError.one(
                f"The experiment {experiment.id} must be in the 'active' state.", "experiment_id"
            )
        tags = dict(tags or {})
        scope = run_scope.get()
        if scope is not None and tags.get("mlflow.parentRunId") is None:
            raise PermissionDeniedError(f"A job's token may start only runs nested under its own run ({scope}).",
                                        hint="mlflow.start_run(nested=True) inside the job's run")  # fmt: skip
        name = run_name or tags.get("mlflow.runName") or new_job_name()
        tags["mlflow.runName"] = name
        run_id = uuid.uuid4().hex
        start = _datetime(start_time) if start_time else datetime.now(UTC)
        with self._ws.store.transaction(write=True) as tx:
            tx.jobs.create(
                run_id, "run", JobStatus.RUNNING, name, experiment.name, "", {"type": "run"},
                user_id or self._ws.user, experiment_id=experiment.id, parent_name=tags.get("mlflow.parentRunId"),
            )  # fmt: skip
            if scope is not None:
                _in_scope(tx, str(tags["mlflow.parentRunId"]))
            tx.jobs.touch(run_id, start_time=start)
            tx.tracking.log(run_id, tags=[(k, v) for k, v in tags.items() if k != "mlflow.runName"])
        return self.get_run(run_id)

    def _job(self, tx: Any, run_id: str) -> JobRecord:
        record: JobRecord | None = tx.jobs.get(run_id)
        if record is None:
            raise NotFoundError(f"Run '{run_id}' not found.", hint="smalt job list")
        return record

    def _info(self, record: JobRecord, experiment: ExperimentRecord | None) -> RunInfo:
        return RunInfo(
            run_id=record.name, run_name=record.display_name or record.name, experiment_id=record.experiment_id,
            user_id=record.created_by, status=RUN_STATUS.get(record.status, "RUNNING"),
            start_time=_ms(record.start_time) or _ms(record.created_at) or 0, end_time=_ms(record.end_time),
            artifact_uri=self._artifact_uri(record, experiment),
            lifecycle_stage="deleted" if record.archived else "active",
        )  # fmt: skip

    @staticmethod
    def _artifact_uri(record: JobRecord, experiment: ExperimentRecord | None) -> str:
        custom = _custom_location(experiment)
        if custom:
            # An experiment created with its own artifact location keeps MLflow's layout there.
            return f"{custom}/{record.name}/artifacts"
        return f"{ARTIFACT_SCHEME}/{run_artifact_path(record.name)}"

    def _runs(self, tx: Any, records: Sequence[JobRecord]) -> list[Run]:
        experiments = {e.id: e for e in tx.tracking.experiments(sorted({r.experiment_id for r in records}))}
        data = tx.tracking.run_data([r.name for r in records])
        runs = []
        for record in records:
            info = self._info(record, experiments.get(record.experiment_id))
            run_data = data[record.name]
            tags = {**run_data.tags, "mlflow.runName": info.run_name}
            if record.type != "run":
                tags.setdefault("mlflow.user", record.created_by)
                for key, value in (record.spec.get("tags") or {}).items():
                    tags.setdefault(key, str(value))
            runs.append(Run(info, RunData(run_data.params, tags, run_data.latest, run_data.inputs, run_data.outputs)))
        return runs

    def get_run(self, run_id: str) -> Run:
        with self._ws.store.transaction() as tx:
            return self._runs(tx, [self._job(tx, run_id)])[0]

    def update_run(self, run_id: str, *, status: str | None = None, end_time: int | None = None,
                   run_name: str | None = None) -> RunInfo:  # fmt: skip
        with self._ws.store.transaction(write=True) as tx:
            record = self._job(tx, run_id)
            _in_scope(tx, run_id)
            values: dict[str, Any] = {}
            if run_name:
                values["display_name"] = run_name
            if record.type == "run" and status:
                if status not in JOB_STATUS:
                    raise InvalidSpecError.one(
                        f"Invalid run status {status!r}; use one of {', '.join(JOB_STATUS)}.", "status"
                    )
                values["status"] = JOB_STATUS[status]
            # As MLflow: the end time is the client's to set; resuming a run keeps it.
            if end_time and record.type == "run":
                values["end_time"] = _datetime(end_time)
            # A command job's status belongs to its supervisor; an MLflow client's end_run() in the
            # job's script must not mark it finished before its outputs are published.
            if values:
                values["last_modified_at"] = datetime.now(UTC)
                tx.jobs.touch(run_id, **values)
        return self.get_run(run_id).info

    def set_run_lifecycle(self, run_id: str, stage: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            self._job(tx, run_id)
            _in_scope(tx, run_id)
            tx.jobs.touch(run_id, archived=stage == "deleted")

    def _writable(self, tx: Any, run_id: str) -> None:
        archived = tx.jobs.archived(run_id)
        if archived is None:
            raise NotFoundError(f"Run '{run_id}' not found.", hint="smalt job list")
        _in_scope(tx, run_id)
        if archived:
            raise InvalidSpecError.one(
                f"The run {run_id} must be in the 'active' state. Current state is deleted.", "run_id"
            )

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricRecord] = (),
                  params: Sequence[tuple[str, str]] = (), tags: Sequence[tuple[str, str]] = ()) -> None:  # fmt: skip
        """Log metrics, params and tags at once; all or nothing."""
        if len(metrics) > MAX_BATCH_METRICS or len(params) > MAX_BATCH_PARAMS or len(tags) > MAX_BATCH_TAGS:
            raise InvalidSpecError.one(
                f"A batch may hold at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params and "
                f"{MAX_BATCH_TAGS} tags; got {len(metrics)}, {len(params)} and {len(tags)}.",
                "batch",
            )
        for metric in metrics:
            _check_key(metric.key, "metric")
        for key, value in params:
            _check_key(key, "param")
            if len(value) > MAX_PARAM_VALUE:
                raise InvalidSpecError.one(f"Param '{key}' is longer than {MAX_PARAM_VALUE} characters.", "param")
        for key, value in tags:
            _check_key(key, "tag")
            if value is not None and len(value) > MAX_TAG_VALUE:
                raise InvalidSpecError.one(f"Tag '{key}' is longer than {MAX_TAG_VALUE} characters.", "tag")
        # Logging is frequent and re-sent by clients on failure: it does not wait for the disk
        # (a killed process still loses nothing committed; see docs/decisions.md).
        with self._ws.store.transaction(write=True, durable=False) as tx:
            self._writable(tx, run_id)
            try:
                tx.tracking.log(run_id, metrics_=metrics, params=params, tags=tags)
            except ParamConflict as exc:
                raise InvalidSpecError(
                    [SpecProblem("params are write-once", field=f"params.{exc.key}")],
                    summary=(
                        f"Changing param values is not allowed. Param with key='{exc.key}' was already logged "
                        f"with value='{exc.old}' for run ID='{run_id}'. Attempted logging new value '{exc.new}'."
                    ),
                ) from exc
            for key, value in tags:
                if key == "mlflow.runName" and value:
                    tx.jobs.touch(run_id, display_name=value)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            self._writable(tx, run_id)
            if not tx.tracking.delete_tag(run_id, key):
                raise NotFoundError(f"No tag with name: {key} in run with id {run_id}")

    def log_io(self, run_id: str, direction: str, items: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Record datasets (``kind='dataset'``) and models (``kind='model'``) a run read or made."""
        with self._ws.store.transaction(write=True) as tx:
            self._writable(tx, run_id)
            for kind, key, payload in items:
                tx.tracking.add_io(run_id, direction, kind, key, payload)

    def metric_history(self, run_id: str, key: str, *, max_results: int | None = None,
                       page_token: str | None = None) -> Page[MetricRecord]:  # fmt: skip
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            self._job(tx, run_id)
            found = tx.tracking.metric_history(run_id, key, limit=max_results, offset=offset)
        return Page(found, next_page_token(offset, len(found), max_results) if max_results else None)

    def search_runs(self, experiment_ids: Sequence[int | str], *, filter_string: str | None = None,
                    run_view: str | int | None = "ACTIVE_ONLY", max_results: int = 1000, order_by: Sequence[str] = (),
                    page_token: str | None = None) -> Page[Run]:  # fmt: skip
        from smalt.store.search import search_runs

        if max_results > 50000:
            raise InvalidSpecError.one(f"Invalid value {max_results} for max_results; at most 50000.", "max_results")
        comparisons = parse_filter(filter_string, scope="runs")
        order = parse_order_by(list(order_by), scope="runs")
        ids = [n for e in experiment_ids if (n := _experiment_number(e)) is not None]
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            names = search_runs(tx.connection, ids, comparisons, order, _view(run_view), max_results, offset)
            by_name = {r.name: r for r in tx.jobs.many(names)}
            runs = self._runs(tx, [by_name[n] for n in names if n in by_name])
        return Page(runs, next_page_token(offset, len(runs), max_results))

    # -- artifacts --------------------------------------------------------------------------
    def _location(self) -> Location:
        return DatastoreService(self._ws).location(DEFAULT_DATASTORE)

    @staticmethod
    def _relative(path: str) -> str:
        try:
            return confined_path(path.replace("\\", "/"))
        except InvalidSpecError:
            raise InvalidSpecError.one(f"Invalid artifact path {path!r}: it leads outside the artifact store.",
                                       "path") from None  # fmt: skip

    def upload_artifact(self, path: str, chunks: Iterable[bytes]) -> int:
        """Store a file of a run's or a logged model's artifacts; nowhere else: the same datastore
        holds code snapshots and jobs' outputs, which only smalt itself writes."""
        relative = self._relative(path)
        if not relative:
            raise InvalidSpecError.one("An artifact path is needed to upload.", "path")
        if not writable_artifact(relative):
            raise InvalidSpecError.one(
                f"Invalid artifact path {path!r}: artifacts are written under a run's or a logged model's "
                "artifact location (<run artifact_uri>/<path>).",
                "path",
            )
        parts = relative.split("/")
        if run_scope.get() is not None and parts[0] == "azureml" and parts[1] != "models":
            with self._ws.store.transaction() as tx:
                _in_scope(tx, parts[1])
        return write_stream(self._location(), relative, chunks)

    def download_artifact(self, path: str) -> Iterator[bytes]:
        return read_stream(self._location(), self._relative(path))

    def list_artifacts(self, path: str) -> list[Entry]:
        return list_entries(self._location(), self._relative(path))

    # -- logged models (MLflow 3) -----------------------------------------------------------
    def create_logged_model(self, experiment_id: int | str, *, name: str | None = None,
                            source_run_id: str | None = None, tags: dict[str, str] | None = None,
                            params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel:  # fmt: skip
        from smalt.services.jobs import new_job_name

        experiment = self.get_experiment(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        root = _custom_location(experiment) or f"{ARTIFACT_SCHEME}/azureml"
        record = LoggedModelRecord(
            model_id=model_id, experiment_id=experiment.id, name=name or new_job_name(),
            artifact_location=f"{root}/models/{model_id}/artifacts", creation_timestamp=now,
            last_updated_timestamp=now, source_run_id=source_run_id, status="LOGGED_MODEL_PENDING",
            status_message=None, model_type=model_type, lifecycle_stage="active", tags=dict(tags or {}),
            params=dict(params or {}),
        )  # fmt: skip
        with self._ws.store.transaction(write=True) as tx:
            if source_run_id:
                self._job(tx, source_run_id)
            tx.tracking.create_logged_model(record)
        return self.get_logged_model(model_id)

    def get_logged_model(self, model_id: str, *, include_deleted: bool = False) -> LoggedModel:
        with self._ws.store.transaction() as tx:
            record = tx.tracking.logged_model(model_id)
            if record is None or (record.lifecycle_stage == "deleted" and not include_deleted):
                raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
            return LoggedModel(record, tx.tracking.model_metrics([model_id]).get(model_id, []))

    def update_logged_model(self, model_id: str, *, status: str | None = None, tags: dict[str, str] | None = None,
                            delete_tag: str | None = None, params: dict[str, str] | None = None,
                            deleted: bool | None = None) -> LoggedModel:  # fmt: skip
        current = self.get_logged_model(model_id).record
        values: dict[str, Any] = {"last_updated_timestamp": now_ms()}
        if status:
            values["status"] = status
        if tags or delete_tag:
            merged = {**current.tags, **(tags or {})}
            if delete_tag is not None:
                if delete_tag not in merged:
                    raise NotFoundError(f"No tag with key '{delete_tag}' on logged model '{model_id}'.")
                merged.pop(delete_tag)
            values["tags"] = merged
        if params:
            values["params"] = {**current.params, **params}
        if deleted is not None:
            values["lifecycle_stage"] = "deleted" if deleted else "active"
        with self._ws.store.transaction(write=True) as tx:
            tx.tracking.update_logged_model(model_id, **values)
        return self.get_logged_model(model_id, include_deleted=True)

    def logged_models_of_run(self, run_id: str) -> list[LoggedModel]:
        """The models run ``run_id`` logged (MLflow 3's ``log_model(name=...)``), newest first."""
        from smalt.store.search import search_logged_models

        run = self.get_run(run_id)
        of_run = [Comparison(ATTRIBUTE, "source_run_id", "=", run.info.run_id)]
        newest = [OrderKey(ATTRIBUTE, "creation_timestamp", ascending=False)]
        with self._ws.store.transaction() as tx:
            ids = search_logged_models(tx.connection, [run.info.experiment_id], of_run, newest, None)
            records = {r.model_id: r for r in tx.tracking.logged_models(ids)}
        return [LoggedModel(records[i], []) for i in ids if i in records]

    def search_logged_models(self, experiment_ids: Sequence[int | str], *, filter_string: str | None = None,
                             order_by: Sequence[str] = (), max_results: int = 100,
                             page_token: str | None = None) -> Page[LoggedModel]:  # fmt: skip
        from smalt.store.search import search_logged_models

        comparisons = parse_filter(filter_string, scope="logged_models")
        order = parse_order_by(list(order_by), scope="logged_models")
        ids = [n for e in experiment_ids if (n := _experiment_number(e)) is not None]
        offset = page_offset(page_token)
        with self._ws.store.transaction() as tx:
            model_ids = search_logged_models(tx.connection, ids, comparisons, order, max_results, offset)
            records = tx.tracking.logged_models(model_ids)
            found = tx.tracking.model_metrics([r.model_id for r in records])
        models = [LoggedModel(r, found.get(r.model_id, [])) for r in records]
        return Page(models, next_page_token(offset, len(models), max_results))


def datastore_path(uri: str, *, field: str = "path") -> str:
    """Where an MLflow artifact URI is as a smalt path: ``mlflow-artifacts:/X`` is the default
    datastore's X (which must stay inside it; else InvalidSpecError on ``field``); any other URI is
    itself."""
    if not uri.startswith(ARTIFACT_SCHEME):
        return uri
    relative = uri.removeprefix(ARTIFACT_SCHEME).lstrip("/")
    if uri.startswith(f"{ARTIFACT_SCHEME}//"):
        # mlflow-artifacts://host:port/X names the server too; the path after it is what counts.
        relative = relative.partition("/")[2]
    return str(DatastoreUri(DEFAULT_DATASTORE, confined_path(relative, uri, field=field)))


def _in_scope(tx: Any, run_id: str) -> None:
    """Refuse a write to ``run_id`` under a job's token (``run_scope``) unless it is the job's run
    or nested under it."""
    scope = run_scope.get()
    if scope is None:
        return
    current: str | None = run_id
    for _ in range(16):  # nested runs, as deep as anyone nests them
        if current == scope:
            return
        record = tx.jobs.get(current) if current else None
        current = record.parent_name if record is not None else None
        if current is None:
            break
    raise PermissionDeniedError(f"A job's token may write only to its own run ({scope}) and the runs nested "
                                f"under it, not to {run_id}.")  # fmt: skip


def writable_artifact(relative: str) -> bool:
    """Whether the artifact proxy may write ``relative`` (normalised): inside the ``artifacts``
    folder of a run (``azureml/<run>/artifacts/...``), of a logged model
    (``azureml/models/<id>/artifacts/...``), or of a run of an experiment created with its own
    ``mlflow-artifacts:`` location (``<location>/<run>/artifacts/...``). Never a code snapshot
    (``LocalUpload/...``) nor a job's outputs (``azureml/<job>/<output>/...``)."""
    parts = relative.split("/")
    if parts[0] == "LocalUpload" or parts[0].startswith(".tmp-"):
        return False
    if parts[0] == "azureml":
        at = 3 if len(parts) > 1 and parts[1] == "models" else 2
        return len(parts) > at + 1 and parts[at] == "artifacts"
    return any(part == "artifacts" for part in parts[2:-1])


def _custom_location(experiment: ExperimentRecord | None) -> str | None:
    """An artifact location the experiment was created with, other than smalt's default one."""
    if experiment is None or experiment.artifact_location in ("", default_artifact_location(experiment.id)):
        return None
    return experiment.artifact_location.rstrip("/")


def _experiment_number(value: int | str | None) -> int | None:
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _view(view: str | int | None) -> str:
    names = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}
    if isinstance(view, int):
        return names.get(view, "ACTIVE_ONLY")
    view = (view or "ACTIVE_ONLY").upper()
    if view not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise InvalidSpecError.one(f"Invalid view type {view!r}; use ACTIVE_ONLY, DELETED_ONLY or ALL.", "view_type")
    return view


__all__ = [
    "LoggedModel",
    "Page",
    "Run",
    "RunInfo",
    "TrackingService",
    "datastore_path",
    "next_page_token",
    "now_ms",
    "page_offset",
    "run_artifact_path",
]
