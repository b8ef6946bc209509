"""The same raw MLflow REST calls against a reference `mlflow server` and `smalt server`, compared field by field.

Both servers run on loopback for the whole module. Every call is sent to both with the exact body the
mlflow 3.17 client sends (recorded in the protocol notes), and the two answers must agree wherever the
protocol fixes them: status, error_code, the key/type skeleton, and every value that equal inputs determine.

What a server may choose is left out of the comparison: ids (each side's ids are replaced by the same
symbol, so "the run I created" still compares equal), server timestamps, artifact locations, paging
tokens (only their presence counts), error messages, and MLflow's `workspace`/`sqlstate`/`error_class`
extras. Protobuf's JSON parser reads a missing field as its default, so an empty string, list or object
counts the same as an absent key; lists the client turns into dicts (tags, params, latest metrics,
artifact listings) are compared as sets. Anything else that differs is a smalt bug.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import httpx
import pytest
from tests.conftest import free_port

pytestmark = pytest.mark.slow
pytest.importorskip("mlflow")  # the reference server

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
CLIENT_HEADERS = {"User-Agent": "mlflow-python-client/3.17.2", "X-MLflow-Client-Version": "3.17.2"}

#: Values each server picks for itself: compared by type only.
SERVER_CHOSEN = frozenset({
    "creation_time", "last_update_time", "creation_timestamp", "last_updated_timestamp",
    "creation_timestamp_ms", "last_updated_timestamp_ms", "artifact_uri", "artifact_location",
    "next_page_token", "message",
})  # fmt: skip
#: MLflow-only extras no client reads.
EXTRAS = frozenset({"workspace", "sqlstate", "error_class"})
#: Fields smalt adds that the message has no field for: the client's parser drops them (ignore_unknown_fields).
UNKNOWN_FIELDS = frozenset({("model", "info", "lifecycle_stage"), ("models", "info", "lifecycle_stage")})
#: Lists the client turns into dicts or sorts itself, by the field that keys them. The sort is stable, so a
#: metric history (one key) keeps the server's order, which is compared.
SETS = {"tags": "key", "params": "key", "metrics": "key", "files": "path", "aliases": "alias"}
#: Keys whose values are experiment ids: short ("1"), so replaced only here, never inside other strings.
EXPERIMENT_ID_KEYS = frozenset({"experiment_id", "experiment_ids"})

# Client-chosen times (epoch ms): fixed, so both servers must echo them.
T0 = 1_700_000_000_000


# --- the two servers --------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop the whole process group: `mlflow server` runs uvicorn and job workers as children."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):  # whatever outlived the leader, or ignored SIGTERM
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SMALT_"))}
    return {**env, "HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def _start(name: str, argv: list[str], port: int, folder: Path, timeout: float) -> Server:
    log = folder / f"{name}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(argv, cwd=folder, stdout=handle, stderr=subprocess.STDOUT,
                                   env=_clean_env(folder), start_new_session=True)  # fmt: skip
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a starting process; there is nothing to wait on instead
    server.stop()
    raise RuntimeError(f"{name} did not answer /health within {timeout:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    reference_dir, smalt_dir = tmp_path_factory.mktemp("mlflow-reference"), tmp_path_factory.mktemp("smalt")
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    port = free_port()
    reference = _start("mlflow", [
        mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{reference_dir / 'mlflow.db'}",
        "--artifacts-destination", str(reference_dir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ], port, reference_dir, timeout=180)  # fmt: skip
    try:
        port = free_port()
        smalt = _start("smalt", [sys.executable, "-m", "smalt.server", "--workspace", str(smalt_dir / "ws"),
                                 "--port", str(port)], port, smalt_dir, timeout=60)  # fmt: skip
        try:
            yield reference, smalt
        finally:
            smalt.stop()
    finally:
        reference.stop()


# --- comparing answers ------------------------------------------------------------------------------------------


def shape(obj: Any) -> Any:
    """The key/type skeleton of a JSON value: objects keep their keys, lists their items, scalars their type."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list):
        return [shape(v) for v in obj]
    if isinstance(obj, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", type(None): "null"}.get(type(obj), type(obj).__name__)


def first_difference(expected: Any, actual: Any, path: str = "$") -> tuple[str, Any, Any] | None:
    """Where two JSON values first differ: (path, expected part, actual part), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(expected.keys() | actual.keys()):
            if key not in actual:
                return f"{path}.{key}", expected[key], "<missing>"
            if key not in expected:
                return f"{path}.{key}", "<missing>", actual[key]
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(e, a, f"{path}[{index}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{path} (length {len(expected)} vs {len(actual)})", expected, actual
        return None
    if type(expected) is not type(actual) or expected != actual:
        return path, expected, actual
    return None


class _Fill(Template):
    braceidpattern = r"[A-Za-z_][-A-Za-z0-9_]*"  # symbols may be names like ${r-a}


@dataclass
class Side:
    """One server as the test sees it: its client, and what its answers have told us (ids, tokens, paths)."""

    server: Server
    http: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)
    experiment_ids: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def fill(self, obj: Any) -> Any:
        """Put this side's ids and values where a request says ``${name}``."""
        if isinstance(obj, str):
            return _Fill(obj).safe_substitute({**self.values, **self.experiment_ids, **self.ids})
        if isinstance(obj, dict):
            return {k: self.fill(v) for k, v in obj.items()}
        if isinstance(obj, tuple):
            return tuple(self.fill(v) for v in obj)
        if isinstance(obj, list):
            return [self.fill(v) for v in obj]
        return obj

    def canonical(self, obj: Any, path: tuple[str, ...] = ()) -> Any:
        """The answer with this side's ids as symbols, server-chosen values as their type, defaults dropped.

        ``path`` is the keys leading here (list positions left out).
        """
        key = path[-1] if path else None
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in EXTRAS or (*path, k)[-3:] in UNKNOWN_FIELDS:
                    continue
                if k in SERVER_CHOSEN and not isinstance(v, dict | list):
                    value = f"<{shape(v)}>"
                else:
                    value = self.canonical(v, (*path, k))
                # Protobuf's JSON parser reads a missing field as its default: "" / [] / {} mean absent.
                if value not in ("", [], {}):
                    out[k] = value
            return out
        if isinstance(obj, list):
            items = [self.canonical(v, path) for v in obj]
            by = SETS.get(key or "")
            if by and all(isinstance(i, dict) for i in items):
                items.sort(key=lambda i: str(i.get(by)))
            return items
        if isinstance(obj, str):
            if key in EXPERIMENT_ID_KEYS:
                for name, value in self.experiment_ids.items():
                    if obj == value:
                        return f"${{{name}}}"
            for name, value in self.ids.items():
                obj = obj.replace(value, f"${{{name}}}")
            return obj
        return obj


@dataclass
class Exchange:
    """One call made to both servers."""

    request: str
    expected: httpx.Response  # from MLflow
    actual: httpx.Response  # from smalt
    sides: tuple[Side, Side]
    mlflow: Any = None  # canonical bodies, once compared
    smalt: Any = None

    def body(self, response: httpx.Response) -> Any:
        if not response.content:
            return {}  # the client reads an empty 200 as {}
        try:
            return response.json()
        except ValueError:
            return response.content

    @property
    def expected_body(self) -> Any:
        return self.body(self.expected)

    @property
    def actual_body(self) -> Any:
        return self.body(self.actual)

    def _text(self, response: httpx.Response) -> str:
        body = self.body(response)
        return json.dumps(body) if isinstance(body, dict | list) else repr(body)[:2000]

    def _fail(self, what: str, expected: Any, actual: Any, where: str = "") -> None:
        __tracebackhide__ = True
        raise AssertionError(
            f"{self.request}: {what} differs{f' at {where}' if where else ''}\n"
            f"  EXPECTED (mlflow): {expected!r}\n  ACTUAL   (smalt):  {actual!r}\n"
            f"  full mlflow answer: {self.expected.status_code} {self._text(self.expected)}\n"
            f"  full smalt answer:  {self.actual.status_code} {self._text(self.actual)}"
        )

    def same(self, status: int | None = None) -> Exchange:
        """Assert both answers agree where the protocol fixes them; ``.mlflow``/``.smalt`` are then the
        canonical bodies. ``status`` pins what MLflow itself answered, so a change in the reference cannot slip by.
        """
        __tracebackhide__ = True
        if status is not None:
            assert self.expected.status_code == status, f"{self.request}: mlflow answered {self.expected.text}"
        if self.expected.status_code != self.actual.status_code:
            self._fail("status", self.expected.status_code, self.actual.status_code)
        expected, actual = self.sides[0].canonical(self.expected_body), self.sides[1].canonical(self.actual_body)
        error_code = actual.get("error_code") if isinstance(actual, dict) else None
        if isinstance(expected, dict) and "error_code" in expected and expected["error_code"] != error_code:
            self._fail("error_code", expected["error_code"], error_code)
        found = first_difference(shape(expected), shape(actual))
        if found:
            self._fail("shape", found[1], found[2], found[0])
        found = first_difference(expected, actual)
        if found:
            self._fail("value", found[1], found[2], found[0])
        self.mlflow, self.smalt = expected, actual
        return self

    def remember(self, name: str, pick: Callable[[Any], str], *, kind: str = "id") -> None:
        """Keep what each server answered under ``name``: an id or experiment id (compared as a symbol from
        then on), or a plain value (a page token, a path) that later requests use but answers need not match."""
        for side, body in zip(self.sides, (self.expected_body, self.actual_body), strict=True):
            picked = pick(body)
            assert isinstance(picked, str) and picked, f"{self.request}: {side.server.name} gave {picked!r}"
            {"id": side.ids, "experiment": side.experiment_ids, "value": side.values}[kind][name] = picked


@dataclass(frozen=True)
class Learn:
    """Where an answer holds something to remember, and what kind of thing it is (see Exchange.remember)."""

    pick: Callable[[Any], str]
    kind: str = "id"


NEW_EXPERIMENT = Learn(lambda b: b["experiment_id"], "experiment")
NEW_RUN = Learn(lambda b: b["run"]["info"]["run_id"])
NEW_MODEL = Learn(lambda b: b["model"]["info"]["model_id"])
NEXT_PAGE = Learn(lambda b: b["next_page_token"], "value")


@dataclass
class Both:
    mlflow: Side
    smalt: Side

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None, content: bytes | None = None,
             chunked: bool = False) -> Exchange:  # fmt: skip
        """Send one request to both servers; ``${name}`` in the path, body or query is filled in per side.

        ``chunked`` sends ``content`` with Transfer-Encoding: chunked, as the client does for an empty file.
        """
        url = path if path.startswith("/") else API + path
        answers = []
        for side in (self.mlflow, self.smalt):
            body: Any = (part for part in [content] if part) if chunked else content
            answers.append(side.http.request(
                method, side.fill(url), json=side.fill(json) if json is not None else None,
                params=side.fill(params) if params is not None else None, content=body,
            ))  # fmt: skip
        label = f"{method} {url}" + (f" {json}" if json is not None else "") + (f" ?{params}" if params else "")
        return Exchange(label, answers[0], answers[1], (self.mlflow, self.smalt))

    def same(self, method: str, path: str, *, status: int = 200, learn: dict[str, Learn] | None = None,
             **kwargs: Any) -> Exchange:  # fmt: skip
        """One call to both, checked; ``status`` is what MLflow must answer, so the reference is pinned too.

        ``learn`` names the ids the answer introduces (symbol: where it is), remembered before comparing.
        """
        __tracebackhide__ = True
        exchange = self.call(method, path, **kwargs)
        if learn and exchange.expected.status_code == exchange.actual.status_code == 200:
            for name, what in learn.items():
                exchange.remember(name, what.pick, kind=what.kind)
        return exchange.same(status)


@pytest.fixture
def both(servers: tuple[Server, Server]) -> Iterator[Both]:
    reference, smalt = servers
    with httpx.Client(base_url=reference.url, headers=CLIENT_HEADERS, timeout=60) as a, \
            httpx.Client(base_url=smalt.url, headers=CLIENT_HEADERS, timeout=60) as b:  # fmt: skip
        yield Both(Side(reference, a), Side(smalt, b))


def kv(**pairs: str) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def new_experiment(both: Both, name: str, symbol: str = "exp") -> None:
    both.same("POST", "experiments/create", json={"name": name}, learn={symbol: NEW_EXPERIMENT})


def new_run(both: Both, symbol: str, name: str, start: int, exp: str = "exp", **tags: str) -> Exchange:
    """runs/create as the fluent API sends it."""
    body = {
        "experiment_id": f"${{{exp}}}", "user_id": "root", "run_name": name, "start_time": start,
        "tags": kv(**{"mlflow.user": "root", "mlflow.source.name": "scenario.py", "mlflow.source.type": "LOCAL",
                      **tags, "mlflow.runName": name}),
    }  # fmt: skip
    return both.same("POST", "runs/create", json=body, learn={symbol: NEW_RUN})


def get_run(both: Both, symbol: str = "run") -> Any:
    """runs/get on both; MLflow's canonical answer."""
    ref = f"${{{symbol}}}"
    return both.same("GET", "runs/get", params={"run_uuid": ref, "run_id": ref}).mlflow


# --- experiments ------------------------------------------------------------------------------------------------


def test_default_experiment_exists_from_the_start(both: Both) -> None:
    expected = both.same("GET", "experiments/get", params={"experiment_id": "0"}).mlflow
    assert expected["experiment"]["name"] == "Default"


def test_experiment_create_get_tag_rename_delete_restore(both: Both) -> None:
    both.same("POST", "experiments/create", learn={"exp": NEW_EXPERIMENT}, json={
        "name": "cmp-exp-b", "artifact_location": "mlflow-artifacts:/custom-b", "tags": kv(team="ml", prio="1"),
    })  # fmt: skip
    expected = both.same("GET", "experiments/get", params={"experiment_id": "${exp}"}).mlflow
    assert expected["experiment"]["lifecycle_stage"] == "active"
    both.same("GET", "experiments/get-by-name", params={"experiment_name": "cmp-exp-b"})

    both.same("POST", "experiments/set-experiment-tag",
              json={"experiment_id": "${exp}", "key": "stage", "value": "dev"})  # fmt: skip
    both.same("POST", "experiments/update", json={"experiment_id": "${exp}", "new_name": "cmp-exp-b-renamed"})
    both.same("GET", "experiments/get-by-name", params={"experiment_name": "cmp-exp-b"}, status=404)
    expected = both.same("GET", "experiments/get-by-name", params={"experiment_name": "cmp-exp-b-renamed"}).mlflow
    assert {"key": "stage", "value": "dev"} in expected["experiment"]["tags"]

    both.same("POST", "experiments/delete", json={"experiment_id": "${exp}"})
    expected = both.same("GET", "experiments/get", params={"experiment_id": "${exp}"}).mlflow
    assert expected["experiment"]["lifecycle_stage"] == "deleted"
    both.same("GET", "experiments/get-by-name", params={"experiment_name": "cmp-exp-b-renamed"})
    search = {"max_results": 10, "filter": "name = 'cmp-exp-b-renamed'"}
    expected = both.same("POST", "experiments/search", json={**search, "view_type": "ACTIVE_ONLY"}).mlflow
    assert expected == {}
    both.same("POST", "experiments/search", json={**search, "view_type": "DELETED_ONLY"})
    both.same("POST", "experiments/search", json={**search, "view_type": "ALL"})

    both.same("POST", "experiments/restore", json={"experiment_id": "${exp}"})
    expected = both.same("GET", "experiments/get", params={"experiment_id": "${exp}"}).mlflow
    assert expected["experiment"]["lifecycle_stage"] == "active"


def test_experiment_search_filters_orders_and_pages(both: Both) -> None:
    for name, team in (("cmp-s-a", "ml"), ("cmp-s-b", "ml"), ("cmp-s-c", "ml"), ("cmp-s-d", "ops")):
        both.same("POST", "experiments/create", json={"name": name, "tags": kv(team=team)},
                  learn={name: NEW_EXPERIMENT})  # fmt: skip
    query = {"filter": "name LIKE 'cmp-s-%' and tags.team = 'ml'", "order_by": ["name DESC", "creation_time ASC"],
             "view_type": "ACTIVE_ONLY"}  # fmt: skip
    expected = both.same("POST", "experiments/search", json={**query, "max_results": 10}).mlflow
    assert [e["name"] for e in expected["experiments"]] == ["cmp-s-c", "cmp-s-b", "cmp-s-a"]

    expected = both.same("POST", "experiments/search", json={**query, "max_results": 2},
                         learn={"page": NEXT_PAGE}).mlflow  # fmt: skip
    assert [e["name"] for e in expected["experiments"]] == ["cmp-s-c", "cmp-s-b"]
    expected = both.same("POST", "experiments/search", json={**query, "max_results": 2, "page_token": "${page}"}).mlflow
    assert [e["name"] for e in expected["experiments"]] == ["cmp-s-a"]

    expected = both.same("POST", "experiments/search", json={
        "max_results": 10, "filter": "name LIKE 'cmp-s-%'", "order_by": ["name ASC"],
    }).mlflow  # fmt: skip
    assert [e["name"] for e in expected["experiments"]] == ["cmp-s-a", "cmp-s-b", "cmp-s-c", "cmp-s-d"]


def test_experiment_errors(both: Both) -> None:
    expected = both.same("GET", "experiments/get", params={"experiment_id": "999999"}, status=404).mlflow
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    both.same("GET", "experiments/get-by-name", params={"experiment_name": "cmp-no-such"}, status=404)
    new_experiment(both, "cmp-dup")
    expected = both.same("POST", "experiments/create", json={"name": "cmp-dup"}, status=400).mlflow
    assert expected["error_code"] == "RESOURCE_ALREADY_EXISTS"


# --- runs -------------------------------------------------------------------------------------------------------


def test_run_create_log_and_read_back(both: Both) -> None:
    new_experiment(both, "cmp-runs")
    new_run(both, "run", "parent-run", T0, owner="me", kind="train")
    new_run(both, "child", "child-run", T0 + 1, **{"mlflow.parentRunId": "${run}"})
    get_run(both, "child")

    param = {"run_uuid": "${run}", "run_id": "${run}", "key": "lr", "value": "0.1"}
    both.same("POST", "runs/log-parameter", json=param)
    both.same("POST", "runs/log-parameter", json=param)  # the same value again is fine
    for step, value, stamp in ((0, 0.7, T0 + 10), (4, 0.8, T0 + 20), (2, 0.95, T0 + 30), (4, 0.85, T0 + 25)):
        both.same("POST", "runs/log-metric", json={"run_uuid": "${run}", "run_id": "${run}", "key": "acc",
                                                   "value": value, "timestamp": stamp, "step": step})  # fmt: skip
    both.same("POST", "runs/log-batch", json={"run_id": "${run}", "params": kv(bs="32", opt="adam")})
    both.same("POST", "runs/log-batch", json={"run_id": "${run}", "metrics": [
        {"key": "loss", "value": 1.0, "timestamp": T0 + 40, "step": 4, "run_id": "${run}"},
        {"key": "loss", "value": 0.5, "timestamp": T0 + 41, "step": 5, "run_id": "${run}"},
    ]})  # fmt: skip
    both.same("POST", "runs/log-batch", json={
        "run_id": "${run}", "metrics": [{"key": "f1", "value": 0.25, "timestamp": T0 + 50, "step": 0}],
        "params": kv(seed="7"), "tags": kv(t1="v1"),
    })  # fmt: skip
    both.same("POST", "runs/set-tag", json={"run_uuid": "${run}", "run_id": "${run}", "key": "note", "value": "hello"})
    both.same("POST", "runs/set-tag", json={"run_uuid": "${run}", "run_id": "${run}", "key": "gone", "value": "x"})
    both.same("POST", "runs/delete-tag", json={"run_id": "${run}", "key": "gone"})

    expected = get_run(both)
    latest = {m["key"]: (m["value"], m["step"]) for m in expected["run"]["data"]["metrics"]}
    assert latest == {"acc": (0.85, 4), "loss": (0.5, 5), "f1": (0.25, 0)}  # largest step, then latest timestamp
    assert "gone" not in {t["key"] for t in expected["run"]["data"]["tags"]}

    history = {"run_uuid": "${run}", "run_id": "${run}", "metric_key": "acc", "max_results": "25000"}
    expected = both.same("GET", "metrics/get-history", params=history).mlflow
    assert sorted((m["step"], m["value"]) for m in expected["metrics"]) == [(0, 0.7), (2, 0.95), (4, 0.8), (4, 0.85)]
    expected = both.same("GET", "metrics/get-history", params={**history, "metric_key": "nope"}).mlflow
    assert expected == {}


def test_run_update_rename_delete_restore(both: Both) -> None:
    new_experiment(both, "cmp-run-life")
    new_run(both, "run", "life-run", T0)
    updated = both.same("POST", "runs/update", json={"run_uuid": "${run}", "run_id": "${run}", "status": "FINISHED",
                                                     "end_time": T0 + 500})  # fmt: skip
    expected = updated.mlflow
    assert (expected["run_info"]["status"], expected["run_info"]["end_time"]) == ("FINISHED", T0 + 500)
    get_run(both)
    both.same("POST", "runs/update", json={"run_uuid": "${run}", "run_id": "${run}", "status": "FINISHED",
                                           "end_time": T0 + 500, "run_name": "life-renamed"})  # fmt: skip
    expected = get_run(both)
    assert expected["run"]["info"]["run_name"] == "life-renamed"
    # Resuming a run (MLFLOW_RUN_ID in a job) sends RUNNING without an end_time.
    both.same("POST", "runs/update", json={"run_uuid": "${run}", "run_id": "${run}", "status": "RUNNING"})
    get_run(both)

    both.same("POST", "runs/delete", json={"run_id": "${run}"})
    expected = get_run(both)
    assert expected["run"]["info"]["lifecycle_stage"] == "deleted"
    expected = both.same("POST", "runs/log-metric", status=400, json={
        "run_uuid": "${run}", "run_id": "${run}", "key": "acc", "value": 1.0, "timestamp": T0, "step": 0,
    }).mlflow  # fmt: skip
    assert expected["error_code"] == "INVALID_PARAMETER_VALUE"
    both.same("POST", "runs/restore", json={"run_id": "${run}"})
    expected = get_run(both)
    assert expected["run"]["info"]["lifecycle_stage"] == "active"


def test_run_created_without_a_name_gets_one(both: Both) -> None:
    new_experiment(both, "cmp-run-noname")
    # MlflowClient.create_run: user_id "unknown", only the user's tags, and here no run_name at all.
    # Each server picks the name; as a symbol it still has to be the same in run_name and the tag.
    generated = Learn(lambda b: b["run"]["info"]["run_name"])
    expected = both.same("POST", "runs/create", learn={"run": NEW_RUN, "generated": generated}, json={
        "experiment_id": "${exp}", "user_id": "unknown", "start_time": T0, "tags": kv(k="v")}).mlflow  # fmt: skip
    tags = {t["key"]: t["value"] for t in expected["run"]["data"]["tags"]}
    assert tags["mlflow.runName"] == expected["run"]["info"]["run_name"] == "${generated}"
    # MlflowClient.create_run(run_name=...): the server adds the mlflow.runName tag itself.
    both.same("POST", "runs/create", learn={"named": NEW_RUN}, json={
        "experiment_id": "${exp}", "user_id": "unknown", "run_name": "named", "start_time": T0 + 1})  # fmt: skip
    expected = get_run(both, "named")
    assert {"key": "mlflow.runName", "value": "named"} in expected["run"]["data"]["tags"]


def test_run_search_filters_orders_and_pages(both: Both) -> None:
    new_experiment(both, "cmp-search")
    for index, (name, lr, acc) in enumerate((("r-a", "0.1", 0.9), ("r-b", "0.1", 0.6), ("r-c", "0.2", 0.8),
                                             ("r-d", "0.1", 0.3))):  # fmt: skip
        new_run(both, name, name, T0 + index * 1000, owner="me")
        both.same("POST", "runs/log-batch", json={"run_id": f"${{{name}}}", "params": kv(lr=lr), "metrics": [
            {"key": "acc", "value": acc, "timestamp": T0 + index, "step": 0, "run_id": f"${{{name}}}"}]})  # fmt: skip
    both.same("POST", "runs/update", json={"run_uuid": "${r-a}", "run_id": "${r-a}", "status": "FINISHED",
                                           "end_time": T0 + 5000})  # fmt: skip
    both.same("POST", "runs/delete", json={"run_id": "${r-c}"})

    search = {"experiment_ids": ["${exp}"], "run_view_type": "ACTIVE_ONLY", "max_results": 50}
    expected = both.same("POST", "runs/search", json={
        **search, "filter": "metrics.acc > 0.5 and params.lr = '0.1'", "order_by": ["metrics.acc DESC"],
    }).mlflow  # fmt: skip
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-a", "r-b"]
    expected = both.same("POST", "runs/search", json={
        **search, "run_view_type": "ALL", "filter": "attributes.status = 'FINISHED' and attributes.run_name = 'r-a' "
                                                    "and attributes.start_time > 0 and tags.owner = 'me'",
    }).mlflow  # fmt: skip
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-a"]

    # mlflow.search_runs: an empty filter, default order start_time DESC; the deleted run only with ALL.
    everything = {**search, "filter": "", "max_results": 10000}
    expected = both.same("POST", "runs/search", json=everything).mlflow
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-d", "r-b", "r-a"]
    expected = both.same("POST", "runs/search", json={**everything, "run_view_type": "ALL"}).mlflow
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-d", "r-c", "r-b", "r-a"]
    expected = both.same("POST", "runs/search", json={**everything, "run_view_type": "DELETED_ONLY"}).mlflow
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-c"]
    expected = both.same("POST", "runs/search", json={**search, "filter": "params.lr = '9'"}).mlflow
    assert expected == {}

    paged = {**search, "max_results": 2, "order_by": ["attributes.run_name ASC"]}
    expected = both.same("POST", "runs/search", json=paged, learn={"page": NEXT_PAGE}).mlflow
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-a", "r-b"] and "next_page_token" in expected
    expected = both.same("POST", "runs/search", json={**paged, "page_token": "${page}"}).mlflow
    assert [r["info"]["run_name"] for r in expected["runs"]] == ["r-d"] and "next_page_token" not in expected


def test_run_search_puts_missing_values_last_and_breaks_ties_by_start_time(both: Both) -> None:
    new_experiment(both, "cmp-order")
    runs = {"o-a": (0.5, "y"), "o-b": (None, None), "o-c": (0.5, "x"), "o-d": (0.2, None), "o-e": (0.9, None)}
    for index, (name, (acc, group)) in enumerate(runs.items()):
        new_run(both, name, name, T0 + index * 1000, **({"grp": group} if group else {}))
        if acc is not None:
            both.same("POST", "runs/log-metric", json={
                "run_uuid": f"${{{name}}}", "run_id": f"${{{name}}}", "key": "acc", "value": acc, "timestamp": T0,
                "step": 0})  # fmt: skip
    search = {"experiment_ids": ["${exp}"], "run_view_type": "ACTIVE_ONLY", "max_results": 50}
    for order_by, names in (
        (["metrics.acc ASC"], ["o-d", "o-c", "o-a", "o-e", "o-b"]),
        (["metrics.acc DESC"], ["o-e", "o-c", "o-a", "o-d", "o-b"]),
        (["tags.grp ASC"], ["o-c", "o-a", "o-e", "o-d", "o-b"]),
        (["attributes.start_time ASC"], ["o-a", "o-b", "o-c", "o-d", "o-e"]),
        (["metrics.acc DESC", "attributes.run_name DESC"], ["o-e", "o-c", "o-a", "o-d", "o-b"]),
    ):
        expected = both.same("POST", "runs/search", json={**search, "order_by": order_by}).mlflow
        assert [r["info"]["run_name"] for r in expected["runs"]] == names, order_by


def test_run_errors(both: Both) -> None:
    new_experiment(both, "cmp-run-errors")
    new_run(both, "run", "err-run", T0)
    both.same("POST", "runs/log-parameter", json={"run_uuid": "${run}", "run_id": "${run}", "key": "x", "value": "1"})
    expected = both.same("POST", "runs/log-parameter", status=400, json={
        "run_uuid": "${run}", "run_id": "${run}", "key": "x", "value": "2"}).mlflow  # fmt: skip
    assert expected["error_code"] == "INVALID_PARAMETER_VALUE"
    expected = both.same("POST", "runs/log-batch", status=400, json={"run_id": "${run}", "params": kv(x="3")}).mlflow
    assert expected["error_code"] == "INVALID_PARAMETER_VALUE"
    expected = both.same("POST", "runs/search", status=400, json={
        "experiment_ids": ["${exp}"], "filter": "metrics.acc >>> 0.5", "max_results": 50}).mlflow  # fmt: skip
    assert expected["error_code"] == "INVALID_PARAMETER_VALUE"
    expected = both.same("GET", "runs/get", params={"run_uuid": "doesnotexist", "run_id": "doesnotexist"},
                            status=404).mlflow  # fmt: skip
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    both.same("POST", "runs/create", status=404, json={"experiment_id": "424242", "user_id": "root", "start_time": T0})


def test_log_inputs_come_back_as_dataset_inputs(both: Both) -> None:
    new_experiment(both, "cmp-inputs")
    new_run(both, "run", "inputs-run", T0)
    dataset = {
        "name": "toy", "digest": "b064d295", "source_type": "s3", "source": '{"uri": "s3://bucket/data.csv"}',
        "schema": '{"mlflow_colspec": [{"type": "long", "name": "a", "required": true}]}',
        "profile": '{"num_rows": 3, "num_elements": 6}',
    }  # fmt: skip
    both.same("POST", "runs/log-inputs", json={"run_id": "${run}", "datasets": [
        {"tags": kv(split="train", **{"mlflow.data.context": "training"}), "dataset": dataset}]})  # fmt: skip
    expected = get_run(both)
    assert expected["run"]["inputs"]["dataset_inputs"][0]["dataset"] == dataset


# --- artifacts --------------------------------------------------------------------------------------------------


def artifact_run(both: Both, experiment: str) -> None:
    """A run whose artifact folder is ``${root}`` on each side."""
    new_experiment(both, experiment)
    created = new_run(both, "run", "art-run", T0)
    # Each server lays out its own store; the client only ever uses the artifact_uri it is given.
    created.remember("root", lambda b: b["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/"),
                     kind="value")  # fmt: skip


def test_artifacts_put_list_get(both: Both) -> None:
    artifact_run(both, "cmp-artifacts")
    files = {"hello.txt": b"hello world\n", "dir/a.txt": b"a", "dir/sub/b.csv": b"x,y\n1,2\n",
             "sp%20ace/a%20b+c%25d.txt": b"odd name"}  # fmt: skip
    for path, data in files.items():
        both.same("PUT", f"{ARTIFACTS}/${{root}}/{path}", content=data)

    expected = both.same("GET", ARTIFACTS, params={"path": "${root}"}).mlflow
    assert {f["path"] for f in expected["files"]} == {"hello.txt", "dir", "sp ace"}
    expected = both.same("GET", ARTIFACTS, params={"path": "${root}/dir"}).mlflow
    assert {f["path"]: f.get("file_size") for f in expected["files"]} == {"a.txt": 1, "sub": None}
    both.same("GET", ARTIFACTS, params={"path": "${root}/sp ace"})
    expected = both.same("GET", ARTIFACTS, params={"path": "${root}/hello.txt"}).mlflow
    assert expected == {}  # a file lists as nothing: the client tells files from folders this way
    expected = both.same("GET", ARTIFACTS, params={"path": "${root}/missing"}).mlflow
    assert expected == {}

    for path, data in files.items():
        exchange = both.same("GET", f"{ARTIFACTS}/${{root}}/{path}")
        assert exchange.expected.content == data
        assert exchange.actual.content == data, f"smalt gave {exchange.actual.content!r} for {path}"
    expected = both.same("GET", f"{ARTIFACTS}/${{root}}/nope.txt", status=404).mlflow
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_empty_artifact_goes_up_chunked_and_lists_without_a_size(both: Both) -> None:
    artifact_run(both, "cmp-artifacts-empty")
    both.same("PUT", f"{ARTIFACTS}/${{root}}/empty.txt", content=b"", chunked=True)  # as the client sends it
    exchange = both.same("GET", f"{ARTIFACTS}/${{root}}/empty.txt")
    assert exchange.expected.content == exchange.actual.content == b""
    # MLflow leaves file_size out for an empty file, and the client then reports its size as None, not 0.
    expected = both.same("GET", ARTIFACTS, params={"path": "${root}"}).mlflow
    assert expected["files"] == [{"path": "empty.txt", "is_dir": False}]


# --- logged models ----------------------------------------------------------------------------------------------


def test_logged_model_create_get_finalize_search(both: Both) -> None:
    new_experiment(both, "cmp-logged-models")
    new_run(both, "run", "lm-run", T0)
    source_tags = kv(**{"mlflow.user": "root", "mlflow.source.name": "scenario.py", "mlflow.source.type": "LOCAL"})
    expected = both.same("POST", "logged-models", learn={"lm-a": NEW_MODEL}, json={
        "experiment_id": "${exp}", "name": "lm-a", "model_type": "agent", "params": kv(alpha="0.5"),
        "tags": [*source_tags, *kv(k="v")],
    }).mlflow  # fmt: skip
    assert expected["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"
    # What log_model sends: a source run, and then the run's output.
    both.same("POST", "logged-models", learn={"model": NEW_MODEL}, json={
        "experiment_id": "${exp}", "name": "model", "source_run_id": "${run}", "tags": source_tags})  # fmt: skip
    both.same("POST", "runs/outputs", json={"run_id": "${run}", "models": [{"model_id": "${model}", "step": 0}]})
    expected = get_run(both)
    assert expected["run"]["outputs"]["model_outputs"] == [{"model_id": "${model}", "step": 0}]
    both.same("POST", "runs/log-metric", json={"run_uuid": "${run}", "run_id": "${run}", "key": "score", "value": 0.42,
                                               "timestamp": T0 + 7, "step": 0, "model_id": "${model}"})  # fmt: skip

    both.same("GET", "logged-models/${lm-a}")
    expected = both.same("GET", "logged-models/${model}").mlflow
    assert expected["model"]["info"]["source_run_id"] == "${run}"
    ready = {"model_id": "${model}", "status": "LOGGED_MODEL_READY"}
    expected = both.same("PATCH", "logged-models/${model}", json=ready).mlflow
    assert expected["model"]["info"]["status"] == "LOGGED_MODEL_READY"

    expected = both.same("POST", "logged-models/search", json={
        "experiment_ids": ["${exp}"], "filter": "name = 'lm-a'",
        "order_by": [{"field_name": "creation_time", "ascending": False}],
    }).mlflow  # fmt: skip
    assert [m["info"]["name"] for m in expected["models"]] == ["lm-a"]
    expected = both.same("POST", "logged-models/search", json={"experiment_ids": ["${exp}"]}).mlflow
    assert sorted(m["info"]["name"] for m in expected["models"]) == ["lm-a", "model"]
    # Every run artifact list or download asks this; no match is {}.
    expected = both.same("POST", "logged-models/search", json={"experiment_ids": ["${exp}"],
                                                                  "filter": "name = 'hello.txt'"}).mlflow  # fmt: skip
    assert expected == {}
    expected = both.same("GET", "logged-models/m-doesnotexist", status=404).mlflow
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# --- model registry ---------------------------------------------------------------------------------------------


def test_registry_models_versions_and_aliases(both: Both) -> None:
    new_experiment(both, "cmp-registry")
    new_run(both, "run", "reg-run", T0)
    both.same("POST", "logged-models", learn={"model": NEW_MODEL},
              json={"experiment_id": "${exp}", "name": "model", "source_run_id": "${run}"})  # fmt: skip
    both.same("PATCH", "logged-models/${model}", json={"model_id": "${model}", "status": "LOGGED_MODEL_READY"})

    expected = both.same("POST", "registered-models/create", json={"name": "cmp-rm"}).mlflow
    assert expected["registered_model"]["name"] == "cmp-rm"
    both.same("POST", "registered-models/create", json={"name": "cmp-rm-x", "tags": kv(a="b"), "description": "d"})
    expected = both.same("POST", "registered-models/create", json={"name": "cmp-rm"}, status=400).mlflow
    assert expected["error_code"] == "RESOURCE_ALREADY_EXISTS"

    # log_model(registered_model_name=...): the run_id comes from the logged model's source run.
    expected = both.same("POST", "model-versions/create", json={
        "name": "cmp-rm", "source": "models:/${model}", "model_id": "${model}"}).mlflow  # fmt: skip
    version = expected["model_version"]
    assert (version["version"], version["status"], version["run_id"]) == ("1", "READY", "${run}")
    # mlflow.register_model("runs:/<run>/model") also sends the run_id.
    both.same("POST", "model-versions/create", json={"name": "cmp-rm", "source": "runs:/${run}/model",
                                                     "run_id": "${run}"})  # fmt: skip
    expected = both.same("GET", "model-versions/get", params={"name": "cmp-rm", "version": "2"}).mlflow
    assert expected["model_version"]["source"] == "runs:/${run}/model"

    both.same("POST", "registered-models/alias", json={"name": "cmp-rm", "alias": "champion", "version": "1"})
    expected = both.same("GET", "registered-models/alias", params={"name": "cmp-rm", "alias": "champion"}).mlflow
    assert (expected["model_version"]["version"], expected["model_version"]["aliases"]) == ("1", ["champion"])
    expected = both.same("GET", "model-versions/get", params={"name": "cmp-rm", "version": "1"}).mlflow
    assert expected["model_version"]["aliases"] == ["champion"]
    expected = both.same("GET", "registered-models/get", params={"name": "cmp-rm"}).mlflow
    assert expected["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]

    prompt_check = "tag.`mlflow.prompt.is_prompt` != 'true'"
    expected = both.same("GET", "registered-models/search", params=[
        ("filter", f"name LIKE 'cmp-rm%' AND {prompt_check}"), ("max_results", "100"), ("order_by", "name ASC")]).mlflow
    assert [m["name"] for m in expected["registered_models"]] == ["cmp-rm", "cmp-rm-x"]
    expected = both.same("GET", "registered-models/search", params=[
        ("filter", f"name = 'cmp-rm-x' AND {prompt_check}"), ("max_results", "100")]).mlflow  # fmt: skip
    assert [m["name"] for m in expected["registered_models"]] == ["cmp-rm-x"]


def test_registry_errors(both: Both) -> None:
    both.same("POST", "registered-models/create", json={"name": "cmp-rm-err"})
    expected = both.same("GET", "registered-models/get", params={"name": "cmp-nope"}, status=404).mlflow
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    expected = both.same("GET", "model-versions/get", params={"name": "cmp-rm-err", "version": "1"},
                            status=404).mlflow  # fmt: skip
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # A missing alias is 400 in MLflow, not 404.
    expected = both.same("GET", "registered-models/alias", params={"name": "cmp-rm-err", "alias": "nope"},
                            status=400).mlflow  # fmt: skip
    assert expected["error_code"] == "INVALID_PARAMETER_VALUE"
    expected = both.same("POST", "registered-models/alias", status=404,
                            json={"name": "cmp-rm-err", "alias": "a", "version": "99"}).mlflow  # fmt: skip
    assert expected["error_code"] == "RESOURCE_DOES_NOT_EXIST"
