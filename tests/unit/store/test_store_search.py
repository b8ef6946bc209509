"""MLflow's searches over the store, on SQLite and on PostgreSQL: what matches, in which order, how fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select
from sqlalchemy.engine import Connection

from smalt.specs.filters import parse_filter, parse_order_by
from smalt.store import SqlMetadataStore
from smalt.store.search import (
    search_experiments,
    search_logged_models,
    search_model_versions,
    search_registered_models,
    search_runs,
)
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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    url = (
        "sqlite:///" + str(tmp_path / "m.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    opened = SqlMetadataStore(url)
    yield opened
    opened.close()


# -- rows ------------------------------------------------------------------------------------------
def add_experiment(
    c: Connection,
    id_: int,
    name: str,
    *,
    stage: str = "active",
    created: int = 0,
    updated: int = 0,
    location: str = "",
    tags: dict[str, str] | None = None,
) -> None:
    c.execute(
        insert(experiments).values(
            id=id_,
            name=name,
            artifact_location=location or f"mlflow-artifacts:/experiments/{id_}",
            lifecycle_stage=stage,
            creation_time=created,
            last_update_time=updated,
        )
    )
    for key, value in (tags or {}).items():
        c.execute(insert(experiment_tags).values(experiment_id=id_, key=key, value=value))


def add_run(
    c: Connection,
    name: str,
    *,
    experiment_id: int = 1,
    status: str = "Completed",
    display_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    created: datetime = NOW,
    archived: bool = False,
    user: str = "me",
) -> None:
    c.execute(
        insert(jobs).values(
            name=name,
            type="run",
            status=status,
            display_name=display_name,
            experiment_name="e",
            experiment_id=experiment_id,
            compute="local",
            spec={},
            archived=archived,
            created_at=created,
            created_by=user,
            last_modified_at=created,
            start_time=start,
            end_time=end,
        )
    )


def add_metric(c: Connection, run: str, key: str, value: float | None) -> None:
    c.execute(insert(latest_metrics).values(run=run, key=key, value=value, is_nan=value is None, timestamp=0, step=0))


def add_param(c: Connection, run: str, key: str, value: str) -> None:
    c.execute(insert(run_params).values(run=run, key=key, value=value))


def add_tag(c: Connection, run: str, key: str, value: str) -> None:
    c.execute(insert(run_tags).values(run=run, key=key, value=value))


def add_dataset(c: Connection, run: str, name: str, digest: str, tags: list[dict[str, str]]) -> None:
    payload = {"dataset": {"name": name, "digest": digest, "source_type": "local"}, "tags": tags}
    c.execute(
        insert(run_io).values(run=run, direction="input", kind="dataset", key=f"{name}:{digest}", payload=payload)
    )


def context(value: str) -> dict[str, str]:
    return {"key": "mlflow.data.context", "value": value}


def at(ms: int, extra_us: int = 0) -> datetime:
    return EPOCH + timedelta(milliseconds=ms, microseconds=extra_us)


# -- searching -------------------------------------------------------------------------------------
def check(cases: Sequence[tuple[Any, ...]], search: Callable[..., list[Any]]) -> None:
    """Every case ``(*arguments, expected)``; all that fail are reported at once."""
    wrong = []
    for *arguments, expected in cases:
        got = search(*arguments)
        if got != expected:
            wrong.append(f"{', '.join(map(repr, arguments))}: got {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def runs(
    store: SqlMetadataStore,
    text: str = "",
    order: Sequence[str] = (),
    *,
    view: str = "ACTIVE_ONLY",
    experiment_ids: Sequence[int] = (1,),
    limit: int | None = None,
    offset: int = 0,
) -> list[str]:
    with store.transaction() as tx:
        return search_runs(
            tx.connection,
            list(experiment_ids),
            parse_filter(text, scope="runs"),
            parse_order_by(list(order), scope="runs"),
            view,
            limit,
            offset,
        )


# -- runs: metrics ---------------------------------------------------------------------------------
@pytest.fixture
def metric_runs(store: SqlMetadataStore) -> SqlMetadataStore:
    # Newest first: d, c, b, a. acc: a 0.5, b 0.9, c NaN, d none.
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        for age, name in enumerate("dcba"):
            add_run(c, name, start=NOW - timedelta(seconds=age))
        add_metric(c, "a", "acc", 0.5)
        add_metric(c, "b", "acc", 0.9)
        add_metric(c, "c", "acc", None)
        add_metric(c, "d", "loss", 1.0)
        # History holds older values; only the latest one counts.
        c.execute(insert(metrics).values(run="b", key="acc", value=0.1, is_nan=False, timestamp=0, step=0))
    return store


METRIC_FILTERS = [
    ("metrics.acc > 0.6", ["b"]),
    ("metrics.acc >= 0.5", ["b", "a"]),
    ("metrics.acc = 0.5", ["a"]),
    ("metrics.acc <= 0.5", ["a"]),
    ("metrics.acc < 0.2", []),  # b's history holds 0.1, but its latest value is 0.9
    ("metrics.acc != 0.5", ["c", "b"]),  # NaN differs from everything, as in MLflow; d has no acc at all
    ("metrics.acc > 0 AND metrics.acc < 0.7", ["a"]),
    ("metrics.acc > 0 AND metrics.loss > 0", []),
    ("metrics.loss = 1", ["d"]),
    ("metrics.nothing > -1e300", []),
]


def test_metric_filters_use_latest_values_and_nan_fails_all_but_not_equal(metric_runs: SqlMetadataStore) -> None:
    check(METRIC_FILTERS, lambda text: runs(metric_runs, text))


def test_metric_order_puts_nan_then_missing_last_in_both_directions(metric_runs: SqlMetadataStore) -> None:
    assert runs(metric_runs) == ["d", "c", "b", "a"]  # newest first
    assert runs(metric_runs, order=["metrics.acc DESC"]) == ["b", "a", "c", "d"]
    assert runs(metric_runs, order=["metrics.acc"]) == ["a", "b", "c", "d"]
    assert runs(metric_runs, "metrics.acc != 7", ["metrics.acc ASC"]) == ["a", "b", "c"]


# -- runs: params, tags, names ---------------------------------------------------------------------
@pytest.fixture
def tagged_runs(store: SqlMetadataStore) -> SqlMetadataStore:
    # Newest first: a, b, c.
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        add_run(c, "a", start=NOW, display_name="train-1")
        add_run(c, "b", start=NOW - timedelta(seconds=1))
        add_run(c, "c", start=NOW - timedelta(seconds=2), display_name="eval")
        add_param(c, "a", "opt", "Adam")
        add_param(c, "a", "lr", "0.1")
        add_param(c, "b", "opt", "adam")
        add_param(c, "b", "lr", "0.01")
        add_tag(c, "a", "team", "ml")
        add_tag(c, "a", "note", "50%")
        add_tag(c, "b", "team", "ML")
        add_tag(c, "c", "note", "50x")
        add_tag(c, "c", "mlflow.source.name", "train.py")
        add_tag(c, "a", "size", "large")
        add_tag(c, "b", "size", "small")
    return store


PARAM_TAG_NAME_FILTERS = [
    ("params.opt = 'adam'", ["b"]),
    ("params.opt LIKE 'ad%'", ["b"]),  # LIKE is case-sensitive on both databases
    ("params.opt ILIKE 'AD%'", ["a", "b"]),
    ("params.opt != 'adam'", ["a"]),  # c has no opt: not even != matches
    ("params.opt IS NULL", ["c"]),
    ("param.opt IS NOT NULL", ["a", "b"]),
    ("params.lr = '0.1' AND tags.team = 'ml'", ["a"]),
    ("tags.team = 'ml'", ["a"]),
    ("tags.team ILIKE 'ml'", ["a", "b"]),
    ("tags.note LIKE '50_'", ["a", "c"]),
    ("tags.note LIKE '50\\%'", ["a"]),  # a backslash escapes % and _
    ("tags.`mlflow.source.name` = 'train.py'", ["c"]),
    ("tags.mlflow.source.name LIKE '%.py'", ["c"]),
    ("tags.team IS NULL", ["c"]),
    # the run name: the display name, else the job name; tags.mlflow.runName reads the same
    ("run_name = 'train-1'", ["a"]),
    ("attributes.run_name = 'b'", ["b"]),
    ("`Run Name` != 'eval'", ["a", "b"]),
    ("tags.mlflow.runName LIKE 'train%'", ["a"]),
    ("tags.`mlflow.runName` = 'eval'", ["c"]),
    ("tags.mlflow.runName IS NULL", []),
    ("tags.mlflow.runName IS NOT NULL", ["a", "b", "c"]),
]


def test_param_tag_and_name_filters(tagged_runs: SqlMetadataStore) -> None:
    check(PARAM_TAG_NAME_FILTERS, lambda text: runs(tagged_runs, text))


def test_param_tag_and_name_order_missing_last(tagged_runs: SqlMetadataStore) -> None:
    assert runs(tagged_runs, order=["params.lr ASC"]) == ["b", "a", "c"]
    assert runs(tagged_runs, order=["params.lr DESC"]) == ["a", "b", "c"]
    assert runs(tagged_runs, order=["tags.size"]) == ["a", "b", "c"]
    assert runs(tagged_runs, order=["tags.size DESC"]) == ["b", "a", "c"]
    assert runs(tagged_runs, order=["tags.nothing", "params.lr"]) == ["b", "a", "c"]
    assert runs(tagged_runs, order=["run_name"]) == ["b", "c", "a"]  # b, eval, train-1
    assert runs(tagged_runs, order=["tags.mlflow.runName DESC"]) == ["a", "c", "b"]


# -- runs: attributes ------------------------------------------------------------------------------
@pytest.fixture
def status_runs(store: SqlMetadataStore) -> SqlMetadataStore:
    statuses = {
        "a": "Running",
        "b": "Finalizing",
        "c": "Completed",
        "d": "Failed",
        "e": "NotResponding",
        "f": "Queued",
        "g": "Canceled",
        "h": "Mystery",
    }
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        for age, (name, status) in enumerate(statuses.items()):
            add_run(c, name, status=status, start=NOW - timedelta(seconds=age), user="bob" if name in "ab" else "me")
    return store


STATUS_ID_USER_FILTERS = [
    ("status = 'RUNNING'", ["a", "b", "h"]),  # a job status MLflow does not know reads as RUNNING
    ("status = 'FAILED'", ["d", "e"]),
    ("status = 'FINISHED'", ["c"]),
    ("status = 'SCHEDULED'", ["f"]),
    ("status = 'KILLED'", ["g"]),
    ("status = 'Running'", []),
    ("status != 'RUNNING'", ["c", "d", "e", "f", "g"]),
    ("status != 'nothing'", ["a", "b", "c", "d", "e", "f", "g", "h"]),
    ("status LIKE 'F%'", ["c", "d", "e"]),
    ("status LIKE 'f%'", []),
    ("status ILIKE 'f%'", ["c", "d", "e"]),
    ("status LIKE '%NN%'", ["a", "b", "h"]),
    ("status LIKE 'KILLE_'", ["g"]),
    ("run_id IN ('a', 'c', 'zz')", ["a", "c"]),
    ("run_id NOT IN ('a', 'b', 'c')", ["d", "e", "f", "g", "h"]),
    ("attributes.run_id = 'g'", ["g"]),
    ("user_id = 'bob'", ["a", "b"]),
    ("user_id != 'bob' AND status = 'RUNNING'", ["h"]),
]


def test_status_id_and_user_filters(status_runs: SqlMetadataStore) -> None:
    check(STATUS_ID_USER_FILTERS, lambda text: runs(status_runs, text))
    # FAILED, FINISHED, KILLED, RUNNING, SCHEDULED as MLflow shows them; each group newest first
    assert runs(status_runs, order=["status"]) == ["d", "e", "c", "g", "a", "b", "h", "f"]


@pytest.fixture
def timed_runs(store: SqlMetadataStore) -> SqlMetadataStore:
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        # a started at 1700000000123.456 ms: MLflow shows 1700000000123; it has not ended.
        add_run(c, "a", start=at(1700000000123, 456), created=at(1700000000000))
        # b never got a start time: its creation stands in. It ended.
        add_run(c, "b", created=at(1700000000200), end=at(1700000000300, 999))
    return store


TIME_FILTERS = [
    ("start_time = 1700000000123", ["a"]),
    ("created = 1700000000123", ["a"]),
    ("start_time != 1700000000123", ["b"]),
    ("start_time > 1700000000123", ["b"]),
    ("start_time >= 1700000000123", ["b", "a"]),
    ("start_time < 1700000000124", ["a"]),
    ("start_time <= 1700000000123", ["a"]),
    ("start_time < 1700000000123", []),
    ("start_time = 1700000000200", ["b"]),
    ("start_time = 1700000000123.5", []),
    ("start_time != 1700000000123.5", ["b", "a"]),
    ("start_time > 1700000000122.5", ["b", "a"]),
    ("start_time >= 1700000000123.5", ["b"]),
    ("start_time < 1700000000123.5", ["a"]),
    ("start_time <= 1700000000123.5", ["a"]),
    ("start_time > 99999999999999999999", []),
    ("start_time > -99999999999999999999", ["b", "a"]),
    ("end_time = 1700000000300", ["b"]),
    ("end_time > 0", ["b"]),
    ("end_time != 5", ["b"]),  # a has no end time: it matches nothing
    ("end_time < 99999999999999", ["b"]),
]


def test_times_compare_as_whole_milliseconds(timed_runs: SqlMetadataStore) -> None:
    check(TIME_FILTERS, lambda text: runs(timed_runs, text))


def test_time_order(timed_runs: SqlMetadataStore) -> None:
    assert runs(timed_runs) == ["b", "a"]
    assert runs(timed_runs, order=["start_time"]) == ["a", "b"]
    assert runs(timed_runs, order=["created DESC"]) == ["b", "a"]
    assert runs(timed_runs, order=["end_time ASC"]) == ["b", "a"]  # a has no end: last either way
    assert runs(timed_runs, order=["end_time DESC"]) == ["b", "a"]


def test_views_experiments_default_order_and_pages(store: SqlMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        add_experiment(c, 2, "e2")
        add_run(c, "r3", start=NOW)
        add_run(c, "r1", start=NOW - timedelta(seconds=1))
        add_run(c, "r2", start=NOW - timedelta(seconds=1))  # same start as r1: the name breaks the tie
        add_run(c, "gone", start=NOW, archived=True)
        add_run(c, "other", start=NOW + timedelta(seconds=1), experiment_id=2)
    assert runs(store) == ["r3", "r1", "r2"]
    assert runs(store, view="DELETED_ONLY") == ["gone"]
    assert runs(store, view="ALL") == ["gone", "r3", "r1", "r2"]
    assert runs(store, experiment_ids=[1, 2]) == ["other", "r3", "r1", "r2"]
    assert runs(store, experiment_ids=[]) == []
    assert runs(store, experiment_ids=[7]) == []
    assert runs(store, limit=2) == ["r3", "r1"]
    assert runs(store, limit=2, offset=2) == ["r2"]
    assert runs(store, offset=1) == ["r1", "r2"]
    with pytest.raises(ValueError, match="unknown view 'SOME'"), store.transaction() as tx:
        search_runs(tx.connection, [1], [], [], "SOME", None, 0)


def test_datasets_and_artifact_uri(store: SqlMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        add_experiment(c, 2, "e2", location="s3://bucket/exp/")
        for age, name in enumerate("abcd"):
            add_run(c, name, start=NOW - timedelta(seconds=age))
        add_run(c, "s3run", start=NOW, experiment_id=2)
        add_dataset(c, "a", "iris", "d1", [context("train")])
        add_dataset(c, "a", "wine", "d2", [context("eval")])
        add_dataset(c, "b", "iris", "d3", [])
        add_dataset(c, "c", "iris", "d4", [{"key": "other", "value": "train"}, context("test")])
        # What a run wrote is not a dataset it read.
        output = {"dataset": {"name": "iris", "digest": "d9"}, "tags": [context("train")]}
        c.execute(insert(run_io).values(run="d", direction="output", kind="dataset", key="x", payload=output))
    check(
        [
            ("datasets.name = 'iris'", ["a", "b", "c"]),
            ("dataset.digest IN ('d2', 'd3', 'd9')", ["a", "b"]),
            ("datasets.digest NOT IN ('d1')", ["a", "b", "c"]),  # a's wine is not d1
            ("datasets.context = 'train'", ["a"]),  # c's 'train' is another tag
            ("datasets.context = 'test'", ["c"]),  # the context tag need not come first
            ("datasets.context NOT IN ('train')", ["a", "c"]),
            ("datasets.context LIKE 'TR%'", []),
            ("datasets.context ILIKE 'TR%'", ["a"]),
            ("datasets.name LIKE 'wi%' AND datasets.context = 'train'", ["a"]),  # each may be on its own input
            ("datasets.name = 'iris' AND datasets.digest = 'd3'", ["b"]),
        ],
        lambda text: runs(store, text),
    )
    check(
        [
            ("artifact_uri = 'mlflow-artifacts:/azureml/a/artifacts'", ["a"]),
            ("artifact_uri = 's3://bucket/exp/s3run/artifacts'", ["s3run"]),
            ("artifact_uri LIKE 's3://%'", ["s3run"]),
        ],
        lambda text: runs(store, text, experiment_ids=[1, 2]),
    )


# -- runs: speed -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_ten_thousand_runs_filter_and_sort_by_metric_fast(tmp_path: Path) -> None:
    store = SqlMetadataStore("sqlite:///" + str(tmp_path / "m.db"))
    try:
        with store.transaction(write=True) as tx:
            c = tx.connection
            add_experiment(c, 1, "big")
            add_experiment(c, 2, "neighbour")
            rows, values = [], []
            for experiment_id in (1, 2):
                for i in range(10_000):
                    name, t = f"r{experiment_id}-{i:05d}", NOW + timedelta(seconds=i)
                    rows.append(
                        {"name": name, "type": "run", "status": "Completed", "display_name": None,
                         "experiment_name": "e", "experiment_id": experiment_id, "compute": "local", "spec": {},
                         "archived": False, "created_at": t, "created_by": "me", "last_modified_at": t,
                         "start_time": t}
                    )  # fmt: skip
                    for key in ("acc", "loss"):
                        value = ((i * 7919) % 10_000) / 10_000
                        values.append(
                            {"run": name, "key": key, "value": value, "is_nan": False, "timestamp": 0, "step": 0}
                        )
            c.execute(insert(jobs), rows)
            c.execute(insert(latest_metrics), values)
        comparisons = parse_filter("metrics.acc > 0.5", scope="runs")
        order = parse_order_by(["metrics.acc DESC"], scope="runs")
        executed: list[tuple[str, Any]] = []
        with store.transaction() as tx:
            event.listen(tx.connection, "before_cursor_execute", lambda *a: executed.append((a[2], a[3])))
            found = search_runs(tx.connection, [1], comparisons, order, "ACTIVE_ONLY", 1000, 0)
        with store.transaction() as tx:
            statement, parameters = executed[-1]
            explained = tx.connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = " | ".join(row[3] for row in explained)
            query = select(latest_metrics.c.run, latest_metrics.c.value).where(
                latest_metrics.c.key == "acc", latest_metrics.c.run.in_(found)
            )
            acc = {run: value for run, value in tx.connection.execute(query)}
    finally:
        store.close()
    assert len(found) == 1000 and all(name.startswith("r1-") for name in found)
    assert [acc[name] for name in found] == sorted(acc.values(), reverse=True)
    assert min(acc.values()) > 0.5
    # Every lookup goes through an index; nothing scans the metrics.
    assert "SEARCH jobs USING INDEX ix_jobs_experiment_id" in plan
    assert "SCAN latest_metrics" not in plan and "SCAN sort_0" not in plan
    # Speed itself is measured in benchmarks/tracking.py, not asserted here.


# -- experiments -----------------------------------------------------------------------------------
@pytest.fixture
def experiment_store(store: SqlMetadataStore) -> SqlMetadataStore:
    with store.transaction(write=True) as tx:
        c = tx.connection
        c.execute(delete(experiments))  # the Default experiment the migration made
        add_experiment(c, 1, "alpha", created=100, updated=500, tags={"owner": "me"})
        add_experiment(c, 2, "beta", created=200, updated=400, tags={"owner": "you", "team": "x"})
        add_experiment(c, 3, "gamma", created=200, updated=300, stage="deleted")
        add_experiment(c, 4, "alpha-2", created=50, updated=50)
        add_experiment(c, 5, "Alpha-3", created=10, updated=10, stage="deleted")
    return store


def find_experiments(
    store: SqlMetadataStore,
    text: str = "",
    order: Sequence[str] = (),
    view: str = "ACTIVE_ONLY",
    limit: int | None = None,
    offset: int = 0,
) -> list[int]:
    with store.transaction() as tx:
        comparisons = parse_filter(text, scope="experiments")
        keys = parse_order_by(list(order), scope="experiments")
        return search_experiments(tx.connection, comparisons, keys, view, limit, offset)


EXPERIMENT_FILTERS = [
    ("", "ACTIVE_ONLY", [2, 1, 4]),  # newest first, then id ascending
    ("", "ALL", [2, 3, 1, 4, 5]),
    ("", "DELETED_ONLY", [3, 5]),
    ("name = 'alpha'", "ACTIVE_ONLY", [1]),
    ("name LIKE 'alpha%'", "ALL", [1, 4]),
    ("name LIKE 'ALPHA%'", "ALL", []),
    ("name ILIKE 'ALPHA%'", "ALL", [1, 4, 5]),
    ("attribute.name != 'alpha'", "ACTIVE_ONLY", [2, 4]),
    ("tags.owner = 'me'", "ACTIVE_ONLY", [1]),
    ("tags.owner != 'me'", "ACTIVE_ONLY", [2]),
    ("tags.owner IS NULL", "ACTIVE_ONLY", [4]),
    ("tags.team IS NOT NULL", "ALL", [2]),
    ("tag.owner LIKE '%o%'", "ALL", [2]),
    ("experiment_id IN ('1', '2', '3')", "ACTIVE_ONLY", [2, 1]),
    ("experiment_id NOT IN ('1')", "ACTIVE_ONLY", [2, 4]),
    ("experiment_id = '4'", "ACTIVE_ONLY", [4]),
    ("experiment_id != '4'", "ACTIVE_ONLY", [2, 1]),
    ("creation_time > 100", "ALL", [2, 3]),
    ("creation_time >= 100 AND last_update_time < 450", "ALL", [2, 3]),
    ("last_update_time <= 400", "ACTIVE_ONLY", [2, 4]),
]


def test_experiment_filters(experiment_store: SqlMetadataStore) -> None:
    check(EXPERIMENT_FILTERS, lambda text, view: find_experiments(experiment_store, text, view=view))


def test_experiment_order_and_pages(experiment_store: SqlMetadataStore) -> None:
    assert find_experiments(experiment_store, order=["name"]) == [1, 4, 2]
    assert find_experiments(experiment_store, order=["name DESC"]) == [2, 4, 1]
    # a given order ends with the id, highest first, as MLflow does
    assert find_experiments(experiment_store, order=["creation_time"], view="ALL") == [5, 4, 1, 3, 2]
    assert find_experiments(experiment_store, order=["creation_time DESC", "experiment_id"], view="ALL") == [
        2, 3, 1, 4, 5
    ]  # fmt: skip
    assert find_experiments(experiment_store, order=["last_update_time DESC"]) == [1, 2, 4]
    assert find_experiments(experiment_store, limit=1, offset=1) == [1]


# -- the model registry ----------------------------------------------------------------------------
def add_container(
    c: Connection,
    name: str,
    tags: dict[str, str] | None,
    *,
    kind: str = "model",
    archived: bool = False,
    created: datetime = NOW,
    modified: datetime | None = None,
) -> None:
    c.execute(
        insert(asset_containers).values(
            kind=kind, name=name, next_version=1, archived=archived, created_at=created, tags=tags,
            last_modified_at=modified,
        )
    )  # fmt: skip


def add_version(
    c: Connection,
    name: str,
    number: int,
    spec: dict[str, Any],
    modified: datetime,
    *,
    kind: str = "model",
    archived: bool = False,
) -> None:
    c.execute(
        insert(asset_versions).values(
            kind=kind, name=name, version=str(number), version_num=number, spec=spec, digest="0" * 64,
            archived=archived, created_at=modified, created_by="me", last_modified_at=modified,
        )
    )  # fmt: skip


@pytest.fixture
def registry(store: SqlMetadataStore) -> SqlMetadataStore:
    hour = timedelta(hours=1)
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_container(c, "churn", {"team": "growth", "team.lead": "ann"}, modified=NOW + 3 * hour)
        add_container(c, "fraud", {"team": "risk", "mlflow.prompt.is_prompt": "false"}, created=NOW + hour)
        add_container(c, "greeting", {"mlflow.prompt.is_prompt": "true"})
        add_container(c, "retired", {"team": "growth"}, archived=True)
        add_container(c, "plain", None, created=NOW - hour)
        add_container(c, "churn-data", {"team": "growth"}, kind="data")
        add_version(c, "churn", 1, {"job_name": "r1", "path": "s3://b/churn/1", "tags": {"stage": "prod"}}, NOW)
        add_version(c, "churn", 2, {"job_name": "r2", "path": "file:///m/2", "tags": {}}, NOW + 2 * hour)
        add_version(c, "churn", 3, {"job_name": "r3", "path": "s3://b/churn/3"}, NOW + 5 * hour, archived=True)
        fraud = {"job_name": "r1", "path": "s3://b/fraud/1", "tags": {"stage": "staging"}}
        add_version(c, "fraud", 1, fraud, NOW + hour)
        add_version(c, "greeting", 1, {"path": "p", "tags": {"mlflow.prompt.is_prompt": "true"}}, NOW + 6 * hour)
        add_version(c, "churn-data", 1, {"job_name": "r1", "path": "s3://d"}, NOW + 7 * hour, kind="data")
    return store


def find_models(
    store: SqlMetadataStore, text: str = "", order: Sequence[str] = (), limit: int | None = None, offset: int = 0
) -> list[str]:
    with store.transaction() as tx:
        comparisons = parse_filter(text, scope="registered_models")
        keys = parse_order_by(list(order), scope="registered_models")
        return search_registered_models(tx.connection, comparisons, keys, limit, offset)


def find_versions(store: SqlMetadataStore, text: str = "", order: Sequence[str] = ()) -> list[str]:
    with store.transaction() as tx:
        comparisons = parse_filter(text, scope="model_versions")
        keys = parse_order_by(list(order), scope="model_versions")
        found = search_model_versions(tx.connection, comparisons, keys, None, 0)
    return [f"{name}/{version}" for name, version in found]


REGISTERED_MODEL_FILTERS = [
    ("", ["churn", "fraud", "plain"]),  # not archived, not prompts, not other kinds of asset
    ("name = 'churn'", ["churn"]),
    ("name LIKE 'ch%'", ["churn"]),
    ("name LIKE 'CH%'", []),
    ("name ILIKE 'CH%'", ["churn"]),
    ("name IN ('churn', 'greeting', 'retired')", ["churn"]),
    ("name NOT IN ('churn')", ["fraud", "plain"]),
    ("tags.team = 'risk'", ["fraud"]),
    ("tags.team != 'risk'", ["churn"]),  # plain has no team
    ("tags.team LIKE '%r%'", ["churn", "fraud"]),
    ("tags.`team.lead` = 'ann'", ["churn"]),
    ("tags.`mlflow.prompt.is_prompt` = 'true'", ["greeting"]),
    ("tags.`mlflow.prompt.is_prompt` = 'false'", ["churn", "fraud", "plain"]),
    ("tags.`mlflow.prompt.is_prompt` != 'false' AND name LIKE 'g%'", ["greeting"]),
]


def test_registered_model_filters(registry: SqlMetadataStore) -> None:
    check(REGISTERED_MODEL_FILTERS, lambda text: find_models(registry, text))


def test_registered_model_order_and_pages(registry: SqlMetadataStore) -> None:
    # last updated: churn (modified +3h), fraud (created +1h), plain (created -1h)
    assert find_models(registry, order=["last_updated_timestamp DESC"]) == ["churn", "fraud", "plain"]
    assert find_models(registry, order=["timestamp"]) == ["plain", "fraud", "churn"]
    assert find_models(registry, order=["creation_timestamp DESC"]) == ["fraud", "churn", "plain"]
    assert find_models(registry, order=["name DESC"]) == ["plain", "fraud", "churn"]
    assert find_models(registry, limit=1, offset=1) == ["fraud"]


MODEL_VERSION_FILTERS = [
    ("", ["churn/2", "fraud/1", "churn/1"]),  # last updated first; archived and prompt versions never
    ("name = 'churn'", ["churn/2", "churn/1"]),
    ("name IN ('fraud', 'greeting')", ["fraud/1"]),
    ("version_number > 1", ["churn/2"]),
    ("version_number = '1'", ["fraud/1", "churn/1"]),
    ("version_number != 1", ["churn/2"]),
    ("run_id = 'r1'", ["fraud/1", "churn/1"]),
    ("run_id IN ('r2', 'r3')", ["churn/2"]),
    ("run_id NOT IN ('r2')", ["fraud/1", "churn/1"]),
    ("source_path LIKE 's3://%'", ["fraud/1", "churn/1"]),
    ("source_path = 'file:///m/2'", ["churn/2"]),
    ("tags.stage = 'prod'", ["churn/1"]),
    ("tags.stage ILIKE 'PROD'", ["churn/1"]),
    ("tags.stage != 'prod'", ["fraud/1"]),
    ("tags.`mlflow.prompt.is_prompt` = 'true'", ["greeting/1"]),
]


def test_model_version_filters(registry: SqlMetadataStore) -> None:
    check(MODEL_VERSION_FILTERS, lambda text: find_versions(registry, text))


def test_model_version_order(registry: SqlMetadataStore) -> None:
    assert find_versions(registry, order=["version_number DESC"]) == ["churn/2", "churn/1", "fraud/1"]
    assert find_versions(registry, order=["name", "version_number"]) == ["churn/1", "churn/2", "fraud/1"]
    assert find_versions(registry, order=["creation_timestamp"]) == ["churn/1", "fraud/1", "churn/2"]
    assert find_versions(registry, order=["last_updated_timestamp DESC"]) == ["churn/2", "fraud/1", "churn/1"]


# -- logged models ---------------------------------------------------------------------------------
def add_logged_model(
    c: Connection,
    model_id: str,
    experiment_id: int,
    name: str,
    created: int,
    *,
    stage: str = "active",
    status: str = "READY",
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    c.execute(
        insert(logged_models).values(
            model_id=model_id, experiment_id=experiment_id, name=name, artifact_location="a",
            creation_timestamp=created, last_updated_timestamp=created + 1, source_run_id="r", status=status,
            status_message=None, model_type=None, lifecycle_stage=stage, tags=tags or {}, params=params or {},
        )
    )  # fmt: skip


def add_model_metric(c: Connection, model_id: str, value: float, timestamp: int, dataset: str) -> None:
    c.execute(
        insert(metrics).values(
            run="r", key="acc", value=value, is_nan=False, timestamp=timestamp, step=0, model_id=model_id,
            dataset_name=dataset, dataset_digest="d-" + dataset,
        )
    )  # fmt: skip


@pytest.fixture
def model_store(store: SqlMetadataStore) -> SqlMetadataStore:
    with store.transaction(write=True) as tx:
        c = tx.connection
        add_experiment(c, 1, "e1")
        add_experiment(c, 2, "e2")
        add_logged_model(c, "m1", 1, "sk-a", 100, params={"alpha": "0.5"}, tags={"team": "x"})
        add_logged_model(c, "m2", 1, "sk-b", 200, status="PENDING", params={"alpha": "1"})
        add_logged_model(c, "m3", 1, "sk-gone", 300, stage="deleted")
        add_logged_model(c, "m4", 2, "other", 400)
        add_logged_model(c, "m5", 1, "bare", 50)
        add_model_metric(c, "m1", 0.7, 1, "eval")
        add_model_metric(c, "m1", 0.9, 2, "train")
        add_model_metric(c, "m2", 0.8, 1, "eval")
        add_model_metric(c, "m3", 0.99, 1, "eval")
    return store


def find_logged(
    store: SqlMetadataStore,
    text: str = "",
    order: Sequence[Any] = (),
    *,
    experiment_ids: Sequence[int] = (1,),
    datasets: Sequence[tuple[str, str | None]] = (),
) -> list[str]:
    with store.transaction() as tx:
        comparisons = parse_filter(text, scope="logged_models")
        keys = parse_order_by(list(order), scope="logged_models")
        return search_logged_models(tx.connection, list(experiment_ids), comparisons, keys, None, 0, datasets=datasets)


LOGGED_MODEL_FILTERS: list[tuple[str, tuple[tuple[str, str | None], ...], list[str]]] = [
    ("", (), ["m2", "m1", "m5"]),  # newest first; deleted ones never
    ("metrics.acc > 0.85", (), ["m1"]),  # any value the model logged
    ("metrics.acc < 0.75", (), ["m1"]),
    ("metrics.acc > 0.85", (("eval", None),), []),
    ("metrics.acc > 0.75", (("eval", None),), ["m2"]),
    ("metrics.acc > 0.75", (("eval", "d-eval"), ("train", None)), ["m2", "m1"]),
    ("metrics.acc > 0.75", (("eval", "other-digest"),), []),
    ("", (("train", None),), ["m1"]),  # with no metric comparison, datasets keep models with a metric on them
    ("params.alpha = '0.5'", (), ["m1"]),
    ("params.alpha IN ('1', '2')", (), ["m2"]),
    ("tags.team = 'x'", (), ["m1"]),
    ("tags.team != 'x'", (), []),
    ("name LIKE 'sk-%'", (), ["m2", "m1"]),
    ("attributes.status IN ('READY')", (), ["m1", "m5"]),
    ("creation_timestamp > 150", (), ["m2"]),
    ("creation_time <= 100 AND name != 'bare'", (), ["m1"]),
    ("model_id NOT IN ('m1')", (), ["m2", "m5"]),
]


def test_logged_model_filters(model_store: SqlMetadataStore) -> None:
    check(LOGGED_MODEL_FILTERS, lambda text, datasets: find_logged(model_store, text, datasets=datasets))


def test_logged_model_order(model_store: SqlMetadataStore) -> None:
    assert find_logged(model_store, experiment_ids=[1, 2]) == ["m4", "m2", "m1", "m5"]
    assert find_logged(model_store, experiment_ids=[]) == []
    # the latest value of each model's metric; models without it last
    assert find_logged(model_store, order=["metrics.acc DESC"]) == ["m1", "m2", "m5"]
    assert find_logged(model_store, order=["metrics.acc"]) == ["m2", "m1", "m5"]
    on_eval = {"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval"}
    assert find_logged(model_store, order=[on_eval]) == ["m2", "m1", "m5"]
    on_train = {"field_name": "metrics.acc", "dataset_name": "train", "dataset_digest": "d-train"}
    assert find_logged(model_store, order=[on_train]) == ["m1", "m2", "m5"]
    assert find_logged(model_store, order=["name"]) == ["m5", "m1", "m2"]
    assert find_logged(model_store, order=["creation_timestamp"]) == ["m5", "m1", "m2"]
