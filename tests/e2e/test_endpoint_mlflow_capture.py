"""Online endpoints as a user sees them over HTTP: an MLflow model served with no code and no
environment, request capture written as Parquet to the datastore and read back as data assets,
and the router's Prometheus metrics. Real routers and instances, real HTTP, real Parquet."""

from __future__ import annotations

import json
import re
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
from tests.e2e.test_jobs import Smalt, until, write

from smalt import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
#: The router writes captured rows about once a second.
CAPTURE_TIMEOUT_S = 15

SCORE_PY = """
    import json

    def init():
        global offset
        offset = 1000

    def run(raw_data):
        data = json.loads(raw_data)
        if data.get("fail"):
            raise ValueError("asked to fail")
        return {"sums": [offset + sum(row) for row in data["data"]]}
"""


# -- helpers ----------------------------------------------------------------------------------
def create_endpoint(ml_client: Any, name: str) -> tuple[str, str]:
    """A key-auth endpoint; its scoring URI and primary key."""
    endpoint = ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name, auth_mode="key"))
    endpoint = endpoint.result()
    assert endpoint.scoring_uri and endpoint.state == "Running"
    return endpoint.scoring_uri, ml_client.online_endpoints.get_keys(name).primary_key


def route_all_to(ml_client: Any, endpoint_name: str, deployment: str) -> None:
    endpoint = ml_client.online_endpoints.get(endpoint_name)
    endpoint.traffic = {deployment: 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()


def post(http: httpx.Client, uri: str, key: str, body: bytes | dict[str, Any], *, deployment: str | None = None,
         request_id: str | None = None) -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    if request_id:
        headers["x-request-id"] = request_id
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(uri, content=content, headers=headers)


def scoring_code(tmp_path: Path) -> Path:
    folder = tmp_path / "score"
    write(folder / "score.py", SCORE_PY)
    return folder


def local_folder(ml_client: Any, uri: str) -> Path:
    """Where an ``azureml://datastores/<ds>/paths/<path>`` URI lies on this machine (a local datastore)."""
    match = re.fullmatch(r"azureml://datastores/([^/]+)/paths/(.+)", uri)
    assert match, uri
    datastore = ml_client.datastores.get(match[1])
    assert datastore.type == "local" and datastore.path, datastore
    return Path(datastore.path) / match[2].strip("/")


def captured(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every captured row under ``folder``: (the file's folder relative to ``folder``, the row)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for file in sorted(folder.rglob("*.parquet")) if folder.exists() else []:
        hour = file.parent.relative_to(folder).as_posix()
        rows.extend((hour, row) for row in pq.read_table(file).to_pylist())
    return rows


def ids_in(folder: Path) -> set[str]:
    return {row["request_id"] for _, row in captured(folder)}


def metric_samples(http: httpx.Client, scoring_uri: str) -> list[Any]:
    from prometheus_client.parser import text_string_to_metric_families

    parts = urlsplit(scoring_uri)
    answer = http.get(f"{parts.scheme}://{parts.netloc}/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(answer.text) for sample in family.samples]


def value(samples: list[Any], name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels`` (0 when there is none)."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return float(found[0]) if found else 0.0


# -- MLflow models: no code, no environment ------------------------------------------------------
@pytest.mark.slow
def test_an_mlflow_model_is_served_with_no_code_and_no_environment(ml_client: Any, serving: None, tmp_path: Path,
                                                                   workspace_path: Path) -> None:  # fmt: skip
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), 30)
    features = pd.DataFrame(rng.normal(size=(90, 4)) + labels[:, None] * 1.5, columns=COLUMNS)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    folder = tmp_path / "iris-model"
    with warnings.catch_warnings():
        # Importing mlflow's pyfunc infers schemas of its own agent types and warns about them, and
        # it writes the input example with a pandas call that pandas 3 deprecates.
        warnings.simplefilter("ignore")
        import mlflow.sklearn
        from mlflow.models import infer_signature

        mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(features, model.predict(features)),
                                  input_example=features.head(2))  # fmt: skip
    ml_client.models.create_or_update(Model(name="iris", path=str(folder), type="mlflow_model"))

    uri, key = create_endpoint(ml_client, "iris-ep")
    deployment = ManagedOnlineDeployment(name="blue", endpoint_name="iris-ep", model="azureml:iris:1",
                                         instance_count=1)  # fmt: skip
    created = ml_client.online_deployments.begin_create_or_update(deployment).result()
    assert created.provisioning_state == "Succeeded"
    assert created.model_ref == "azureml:iris:1"
    route_all_to(ml_client, "iris-ep", "blue")

    # Rows from every class, so that a wrong column order or a dropped row shows in the answer.
    rows = features.iloc[[0, 31, 62, 89]].reset_index(drop=True)
    expected = model.predict(rows).tolist()
    assert len(set(expected)) > 1
    split = json.loads(rows.to_json(orient="split", index=False))
    payloads = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": rows.to_dict(orient="records")},
        "instances": {"instances": rows.to_dict(orient="records")},
        "inputs": {"inputs": rows.to_dict(orient="list")},
    }
    with httpx.Client(timeout=60) as http:
        for shape, payload in payloads.items():
            answer = post(http, uri, key, payload)
            assert answer.status_code == 200, (shape, answer.text)
            assert answer.json() == {"predictions": expected}, shape
            assert answer.headers["azureml-model-deployment"] == "blue"

        # Azure ML's own shape, answered with a bare list.
        azure = {"input_data": {"columns": COLUMNS, "index": list(range(len(rows))), "data": rows.values.tolist()}}
        answer = post(http, uri, key, azure)
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        single = {"input_data": {"columns": COLUMNS, "index": [0], "data": [rows.iloc[1].tolist()]}}
        assert post(http, uri, key, single).json() == [expected[1]]

        # A body of the wrong shape is the client's mistake, with a message; the instance goes on.
        wrong_columns = {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1.0, 2.0, 3.0, 4.0]]}}
        for bad in ({"nope": 1}, b"{not json", wrong_columns):
            answer = post(http, uri, key, bad)
            assert 400 <= answer.status_code < 500, answer.text
            assert answer.headers["content-type"].startswith("application/json")
            assert isinstance(answer.json()["error"], str) and answer.json()["error"]
        assert "dataframe_split" in post(http, uri, key, {"nope": 1}).json()["error"]  # says what it wants
        assert "sepal_length" in post(http, uri, key, wrong_columns).json()["error"]  # and what is missing
        answer = post(http, uri, key, payloads["dataframe_split"])
        assert answer.status_code == 200 and answer.json() == {"predictions": expected}

    served = ml_client.online_deployments.get("blue", "iris-ep")
    assert served.environment is None and served.code_configuration is None
    assert "init() done" in ml_client.online_deployments.get_logs("blue", "iris-ep")
    # The instance runs in an environment built from the model's own conda.yaml, not in smalt's.
    [instance] = [p for p in psutil.process_iter(["cmdline"]) if "--mlflow-model" in (p.info["cmdline"] or [])
                  and str(workspace_path) in " ".join(p.info["cmdline"])]  # fmt: skip
    python = Path(instance.info["cmdline"][0])
    assert python.is_relative_to(workspace_path / "envs"), python
    assert (python.parent.parent / ".smalt-environment.json").is_file()


# -- request capture -----------------------------------------------------------------------------
def capture_yaml(tmp_path: Path, name: str, sampling_rate: float) -> Path:
    return write(tmp_path / f"{name}.yml", f"""
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
        name: {name}
        endpoint_name: cap-ep
        code_configuration:
          code: ./score
          scoring_script: score.py
        instance_type: Standard_DS3_v2
        instance_count: 1
        data_collector:
          collections:
            model_inputs:
              enabled: 'True'
            model_outputs:
              enabled: 'True'
          sampling_rate: {sampling_rate}
    """)  # fmt: skip


def test_request_capture_writes_inputs_and_outputs_as_parquet_data_assets(
    ml_client: Any, smalt: Smalt, serving: None, tmp_path: Path, isolated: Path
) -> None:
    scoring_code(isolated)  # ./score, relative to the working directory the YAML is read from
    uri, key = create_endpoint(ml_client, "cap-ep")
    for name, rate in (("blue", 1.0), ("green", 0.0)):
        created = smalt("online-deployment", "create", "-f", str(capture_yaml(isolated, name, rate)), "-o", "json")
        assert created.exit_code == 0, created.stderr
        assert created.json()["provisioning_state"] == "Succeeded"
    route_all_to(ml_client, "cap-ep", "blue")

    # Each enabled collection is a uri_folder data asset on the default datastore, as Azure ML names them.
    folders: dict[tuple[str, str], Path] = {}
    for deployment in ("blue", "green"):
        for collection in ("model_inputs", "model_outputs"):
            asset = ml_client.data.get(f"cap-ep-{deployment}-{collection}", "1")
            assert asset.type == "uri_folder"
            assert asset.path == f"azureml://datastores/workspaceblobstore/paths/modelDataCollector/cap-ep/" \
                                 f"{deployment}/{collection}"  # fmt: skip
            folders[deployment, collection] = local_folder(ml_client, asset.path)

    sent: dict[str, tuple[bytes, str]] = {}  # request id: (body, response text)
    started = datetime.now(UTC)
    with httpx.Client(timeout=30) as http:
        for i in range(6):
            request_id = f"req-{i}-{uuid.uuid4().hex[:8]}"
            # Bytes as sent, spacing included: capture keeps the body as it came.
            body = json.dumps({"data": [[i, 1.5], [2, i * 0.25]]}, indent=None, separators=(", ", ": ")).encode()
            answer = post(http, uri, key, body, request_id=request_id)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == request_id
            assert answer.json() == {"sums": [1000 + i + 1.5, 1000 + 2 + i * 0.25]}
            sent[request_id] = (body, answer.text)
        # The same number to the deployment that samples nothing.
        for i in range(6):
            answer = post(http, uri, key, {"data": [[i]]}, deployment="green", request_id=f"green-{i}")
            assert answer.status_code == 200, answer.text
        finished = datetime.now(UTC)

        inputs, outputs = folders["blue", "model_inputs"], folders["blue", "model_outputs"]
        until(lambda: ids_in(inputs) >= set(sent) and ids_in(outputs) >= set(sent),
              "the captured requests to be written", CAPTURE_TIMEOUT_S)  # fmt: skip

        # Two later requests to blue, each waited for: the flush that wrote the first has ended
        # (green's rows, had there been any, were taken in it) once the second is written.
        for marker in ("marker-1", "marker-2"):
            assert post(http, uri, key, {"data": [[0]]}, request_id=marker).status_code == 200
            until(lambda m=marker: m in ids_in(inputs) and m in ids_in(outputs),
                  f"{marker} to be captured", CAPTURE_TIMEOUT_S)  # fmt: skip

    for collection, folder in (("model_inputs", inputs), ("model_outputs", outputs)):
        rows = [(hour, row) for hour, row in captured(folder) if not row["request_id"].startswith("marker")]
        ids = [row["request_id"] for _, row in rows]
        assert sorted(ids) == sorted(sent), collection  # every request once, nothing else
        for hour, row in rows:
            at = row["timestamp"]
            assert at.tzinfo is not None and started <= at <= finished, (collection, at, started, finished)
            assert hour == at.astimezone(UTC).strftime("%Y/%m/%d/%H"), (collection, hour, at)  # rolled hourly
            assert row["deployment"] == "blue"
            body, response = sent[row["request_id"]]
            if collection == "model_inputs":
                assert row["data"] == body.decode()
            else:
                assert row["data"] == response
                assert row["status_code"] == 200

    # The hour folder is the UTC hour the requests were made in.
    hours = {hour for hour, _ in captured(inputs)}
    assert hours <= {started.strftime("%Y/%m/%d/%H"), finished.strftime("%Y/%m/%d/%H"),
                     datetime.now(UTC).strftime("%Y/%m/%d/%H")}, hours  # fmt: skip

    # sampling_rate 0.0: nothing of green's was written.
    assert captured(folders["green", "model_inputs"]) == []
    assert captured(folders["green", "model_outputs"]) == []

    # Files appear whole: no temporary file is left behind.
    capture_root = inputs.parent.parent
    assert list(capture_root.rglob("*.partial")) == []
    assert [p for p in capture_root.rglob(".*") if p.is_file()] == []

    # Readable as a data asset, as a user would: downloaded, then read as one Parquet dataset.
    downloaded = ml_client.data.download("cap-ep-blue-model_inputs", "1", download_path=tmp_path / "dl")
    files = sorted(Path(downloaded).rglob("*.parquet"))
    assert files
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert set(frame["request_id"]) == {*sent, "marker-1", "marker-2"}
    assert {"request_id", "timestamp", "deployment", "data"} <= set(frame.columns)
    assert pd.api.types.is_datetime64_any_dtype(frame["timestamp"])


def test_a_request_in_flight_during_a_reload_is_still_captured(ml_client: Any, smalt: Smalt, serving: None,
                                                               isolated: Path) -> None:  # fmt: skip
    write(isolated / "score" / "score.py", """
        import json, pathlib, time

        def init():
            pass

        def run(raw_data):
            data = json.loads(raw_data)
            if "started" in data:
                pathlib.Path(data["started"]).touch()
                time.sleep(1.5)
            return "ok"
    """)  # fmt: skip
    uri, key = create_endpoint(ml_client, "cap-ep")
    created = smalt("online-deployment", "create", "-f", str(capture_yaml(isolated, "blue", 1.0)), "--all-traffic")
    assert created.exit_code == 0, created.stderr
    asset = ml_client.data.get("cap-ep-blue-model_inputs", "1")
    inputs = local_folder(ml_client, asset.path)

    started = isolated / "started"
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(post, http, uri, key, {"started": str(started)}, request_id="in-flight")
        until(started.exists, "the request to reach run()", 10)
        route_all_to(ml_client, "cap-ep", "blue")  # a reload of the router, as any traffic change makes
        assert slow.result().status_code == 200
        for marker in ("marker-1", "marker-2"):
            assert post(http, uri, key, {}, request_id=marker).status_code == 200
            until(lambda m=marker: m in ids_in(inputs), f"{marker} to be captured", CAPTURE_TIMEOUT_S)

    # The request was routed by the old table; its capture is the one the writer keeps flushing.
    assert "in-flight" in ids_in(inputs)


# -- metrics -------------------------------------------------------------------------------------
def test_metrics_count_requests_errors_and_latency_per_deployment(ml_client: Any, serving: None,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    code = scoring_code(tmp_path)
    uri, key = create_endpoint(ml_client, "metrics-ep")
    for name in ("blue", "green"):
        deployment = ManagedOnlineDeployment(
            name=name, endpoint_name="metrics-ep", instance_count=1,
            code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        )  # fmt: skip
        ml_client.online_deployments.begin_create_or_update(deployment).result()
    route_all_to(ml_client, "metrics-ep", "blue")

    with httpx.Client(timeout=30) as http:
        before = metric_samples(http, uri)
        assert value(before, "smalt_online_requests_total", deployment="blue") == 0

        statuses: dict[tuple[str, int], int] = {}

        def send(body: bytes | dict[str, Any], deployment: str | None, expected: int) -> None:
            answer = post(http, uri, key, body, deployment=deployment)
            assert answer.status_code == expected, answer.text
            served = answer.headers["azureml-model-deployment"]
            statuses[served, expected] = statuses.get((served, expected), 0) + 1

        for _ in range(5):
            send({"data": [[1, 2]]}, None, 200)
        for _ in range(2):
            send(b"{not json", None, 400)  # the body is not JSON: the client's error
        send({"fail": True}, None, 500)  # run() raised
        for _ in range(3):
            send({"data": [[3]]}, "green", 200)
        send(b"[1, ", "green", 400)

        # Requests that reach no deployment are not counted against one.
        assert post(http, uri, "wrong-key", {"data": [[1]]}).status_code == 401
        assert post(http, uri, key, {"data": [[1]]}, deployment="nowhere").status_code == 404

        samples = metric_samples(http, uri)

    assert statuses == {("blue", 200): 5, ("blue", 400): 2, ("blue", 500): 1, ("green", 200): 3, ("green", 400): 1}
    for (deployment, code_), count in statuses.items():
        assert value(samples, "smalt_online_requests_total", endpoint="metrics-ep", deployment=deployment,
                     code=str(code_)) == count, (deployment, code_)  # fmt: skip
    counted = {(s.labels["deployment"], s.labels["code"]) for s in samples if s.name == "smalt_online_requests_total"}
    assert counted == {(d, str(c)) for d, c in statuses}
    for deployment, errors, total in (("blue", 3, 8), ("green", 1, 4)):
        labels = {"endpoint": "metrics-ep", "deployment": deployment}
        assert value(samples, "smalt_online_request_errors_total", **labels) == errors, deployment
        assert value(samples, "smalt_online_request_latency_seconds_count", **labels) == total, deployment
        assert value(samples, "smalt_online_request_latency_seconds_bucket", le="+Inf", **labels) == total
        assert 0 < value(samples, "smalt_online_request_latency_seconds_sum", **labels) < 30
        buckets = sorted((float(s.labels["le"]), s.value) for s in samples
                         if s.name == "smalt_online_request_latency_seconds_bucket"
                         and s.labels["deployment"] == deployment)  # fmt: skip
        assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
