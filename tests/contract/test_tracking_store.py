"""Tracking rows on both databases: batches of metrics, the latest value, params written once."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalt.store import SqlMetadataStore
from smalt.store.tracking import MetricRecord, ParamConflict


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    sqlite = "sqlite:///" + str(tmp_path / "m.db")
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = SqlMetadataStore(url)
    with opened.transaction(write=True) as tx:
        tx.jobs.create("run1", "run", "Running", "r", "Default", "", {"type": "run"}, "me")
    yield opened
    opened.close()


def test_a_batch_keeps_every_value_and_the_latest_by_step_then_time(store: SqlMetadataStore) -> None:
    batch = [MetricRecord("acc", 0.5, 10, 0), MetricRecord("acc", 0.9, 20, 4), MetricRecord("acc", 0.7, 30, 2),
             MetricRecord("loss", math.nan, 5, 0)]  # fmt: skip
    with store.transaction(write=True, durable=False) as tx:
        tx.tracking.log("run1", metrics_=batch, params=[("lr", "0.1")], tags=[("team", "a")])
    with store.transaction(write=True, durable=False) as tx:
        # An older step never replaces the latest value, whenever it arrives.
        tx.tracking.log("run1", metrics_=[MetricRecord("acc", 0.1, 40, 3)])
    with store.transaction() as tx:
        data = tx.tracking.run_data(["run1"])["run1"]
        history = tx.tracking.metric_history("run1", "acc")
    latest = {m.key: m for m in data.latest}
    assert (latest["acc"].value, latest["acc"].step) == (0.9, 4)
    assert math.isnan(latest["loss"].value)
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (4, 0.9), (2, 0.7), (3, 0.1)]  # by time, as MLflow
    assert data.params == {"lr": "0.1"} and data.tags == {"team": "a"}


def test_a_param_changed_is_refused_and_the_batch_left_out(store: SqlMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        tx.tracking.log("run1", params=[("lr", "0.1")])
    with pytest.raises(ParamConflict), store.transaction(write=True) as tx:
        tx.tracking.log("run1", metrics_=[MetricRecord("acc", 1.0, 1, 0)], params=[("lr", "0.2")])
    with store.transaction() as tx:
        data = tx.tracking.run_data(["run1"])["run1"]
    assert data.params == {"lr": "0.1"} and data.latest == []
