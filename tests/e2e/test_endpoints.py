"""Online endpoints as an Azure ML user drives them: the YAML pair, the az ml verbs, both auth
modes, a blue/green split measured over many requests, the header override, mirroring, a failing
init(), bad payloads, stop and start, and a rollout under load that drops nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smalt.entities import ManagedOnlineEndpoint
from smalt.errors import BackendError, InvalidSpecError, InvalidStateError, UserCodeError

SCORE = """\
import json, os, time

def init():
    global weights
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")) as f:
        weights = json.load(f)
    if os.environ.get("FAIL_INIT"):
        1 / 0
    print("init done for", os.environ.get("WHO"), flush=True)

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("explode"):
        raise ValueError("asked to explode")
    rows = data["data"]
    return {"who": os.environ.get("WHO"), "scores": [sum(w * x for w, x in zip(weights, r)) for r in rows]}
"""


def write_project(folder: Path, endpoint: str = "credit", auth_mode: str = "key") -> Path:
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.json").write_text("[1, 2]")
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(SCORE)
    (folder / "endpoint.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\n"
        f"name: {endpoint}\nauth_mode: {auth_mode}\ndescription: credit scoring\ntags: {{team: risk}}\n"
    )
    for name in ("blue", "green"):
        (folder / f"{name}.yml").write_text(f"""\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: {name}
endpoint_name: {endpoint}
model:
  path: ./model
code_configuration:
  code: ./src
  scoring_script: score.py
environment_variables:
  WHO: {name}
instance_type: Standard_DS3_v2
instance_count: 1
request_settings:
  request_timeout_ms: 2000
  max_concurrent_requests_per_instance: 4
""")
    (folder / "request.json").write_text('{"data": [[1, 2], [3, 4]]}')
    return folder


class Client:
    """Scoring requests as any HTTP client sends them."""

    def __init__(self, ml_client: Any, endpoint: str) -> None:
        self.uri = ml_client.online_endpoints.get(endpoint).scoring_uri
        keys = ml_client.online_endpoints.get_keys(endpoint)
        self.key = getattr(keys, "primary_key", None) or keys.access_token
        self.http = httpx.Client(timeout=30)

    def score(self, body: Any, *, key: str | None = None, deployment: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        content = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.http.post(self.uri, content=content, headers=headers)

    def metric(self, name: str, deployment: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.http.get(self.uri.removesuffix("/score") + "/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels.get("deployment") == deployment:
                    total += sample.value
        return total


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


@pytest.fixture(autouse=True)
def _close_clients(monkeypatch: pytest.MonkeyPatch) -> Any:
    opened: list[httpx.Client] = []
    original = Client.__init__

    def remember(self: Client, *args: Any) -> None:
        original(self, *args)
        opened.append(self.http)

    monkeypatch.setattr(Client, "__init__", remember)
    yield
    for http in opened:
        http.close()


def test_blue_green_with_the_az_ml_verbs(smalt: Any, ml_client: Any, project: Path, serving: None) -> None:
    created = smalt("online-endpoint", "create", "-f", str(project / "endpoint.yml"), "-o", "json")
    assert created.exit_code == 0, created.stderr
    shown = created.json()
    assert shown["auth_mode"] == "key" and shown["provisioning_state"] == "Succeeded"
    assert shown["scoring_uri"].startswith("http://127.0.0.1:") and shown["traffic"] == {}
    assert smalt("online-deployment", "create", "-f", str(project / "blue.yml"), "--all-traffic").exit_code == 0
    assert smalt("online-deployment", "create", "-f", str(project / "green.yml")).exit_code == 0
    shown = smalt("online-endpoint", "show", "-n", "credit", "-o", "json").json()
    assert shown["traffic"] == {"blue": 100, "green": 0} and shown["mirror_traffic"] == {}
    listed = smalt("online-deployment", "list", "-e", "credit", "-o", "json").json()
    assert [(d["name"], d["provisioning_state"]) for d in listed] == [("blue", "Succeeded"), ("green", "Succeeded")]
    # The inline model was registered, and the deployment says which version it serves.
    assert listed[0]["model"] == "azureml:credit-blue:1"

    invoked = smalt("online-endpoint", "invoke", "-n", "credit", "--request-file", str(project / "request.json"))
    assert json.loads(invoked.stdout) == {"who": "blue", "scores": [5, 11]}
    to_green = smalt("online-endpoint", "invoke", "-n", "credit", "-r", str(project / "request.json"),
                     "--deployment-name", "green")  # fmt: skip
    assert json.loads(to_green.stdout)["who"] == "green"

    # A split, measured over many requests; every answer names its deployment and a request id.
    assert smalt("online-endpoint", "update", "-n", "credit", "--traffic", "blue=70 green=30").exit_code == 0
    client = Client(ml_client, "credit")
    answers = [client.score({"data": [[1, 1]]}) for _ in range(600)]
    assert all(a.status_code == 200 and a.headers["x-request-id"] for a in answers)
    counts = Counter(a.headers["azureml-model-deployment"] for a in answers)
    assert counts["blue"] + counts["green"] == 600
    assert 0.22 < counts["green"] / 600 < 0.38, counts  # 30 % give or take four standard deviations
    assert all(a.json()["who"] == a.headers["azureml-model-deployment"] for a in answers)

    # The header wins over the weights, even for a deployment that takes no traffic.
    assert smalt("online-endpoint", "update", "-n", "credit", "--traffic", "blue=100 green=0").exit_code == 0
    assert {client.score({"data": [[1]]}, deployment="green").json()["who"] for _ in range(20)} == {"green"}
    assert client.score({"data": [[1]]}, deployment="nope").status_code == 404

    # Mirroring: green sees about half of the requests; every answer still comes from blue.
    updated = smalt("online-endpoint", "update", "-n", "credit", "--mirror-traffic", "green=50", "-o", "json")
    assert updated.json()["mirror_traffic"] == {"green": 50}
    green_before = client.metric("smalt_online_requests_total", "green")
    answers = [client.score({"data": [[2, 2]]}) for _ in range(200)]
    assert {a.json()["who"] for a in answers} == {"blue"}
    time.sleep(0.3)  # mirrored copies are sent beside the answer, not before it
    mirrored = client.metric("smalt_online_requests_total", "green") - green_before
    assert 60 <= mirrored <= 140, mirrored

    # Refused changes change nothing.
    for traffic, words in (("blue=50 green=40", "add up to 90"), ("blue=50 nope=50", "'nope' does not exist")):
        refused = smalt("online-endpoint", "update", "-n", "credit", "--traffic", traffic)
        assert refused.exit_code != 0 and words in refused.stderr
    assert smalt("online-endpoint", "show", "-n", "credit", "-o", "json").json()["traffic"] == {"blue": 100, "green": 0}
    refused = smalt("online-deployment", "delete", "-n", "green", "-e", "credit", "--yes")
    assert refused.exit_code != 0 and "still takes traffic" in refused.stderr

    assert "init done for blue" in smalt("online-deployment", "get-logs", "-n", "blue", "-e", "credit").stdout
    assert smalt("online-endpoint", "update", "-n", "credit", "--mirror-traffic", "").exit_code == 0
    assert smalt("online-deployment", "delete", "-n", "green", "-e", "credit", "--yes").exit_code == 0
    assert client.score({"data": [[1]]}, deployment="green").status_code == 404
    assert smalt("online-endpoint", "delete", "-n", "credit", "--yes").exit_code == 0
    assert smalt("online-endpoint", "list", "-o", "json").json() == []
    with pytest.raises(httpx.TransportError):
        client.score({"data": [[1]]})


def test_keys_are_checked_regenerated_and_never_shown(smalt: Any, ml_client: Any, project: Path,
                                                      workspace_path: Path, serving: None) -> None:  # fmt: skip
    smalt("online-endpoint", "create", "-f", str(project / "endpoint.yml"))
    smalt("online-deployment", "create", "-f", str(project / "blue.yml"), "--all-traffic")
    credentials = smalt("online-endpoint", "get-credentials", "-n", "credit").json()
    primary, secondary = credentials["primaryKey"], credentials["secondaryKey"]
    client = Client(ml_client, "credit")
    assert client.score({"data": [[1]]}, key=primary).status_code == 200
    assert client.score({"data": [[1]]}, key=secondary).status_code == 200
    refused = client.http.post(client.uri, content='{"data": [[1]]}')
    assert refused.status_code == 401 and "get-credentials" in refused.json()["hint"]
    assert client.score({"data": [[1]]}, key="not-a-key").status_code == 401
    # Keys are stored encrypted and shown only by get-credentials.
    shown = smalt("online-endpoint", "show", "-n", "credit", "-o", "json").stdout
    assert primary not in shown and secondary not in shown
    stored = b"".join(p.read_bytes() for p in workspace_path.glob("*.db*"))
    assert stored and primary.encode() not in stored

    assert smalt("online-endpoint", "regenerate-keys", "-n", "credit", "--key-type", "primary").exit_code == 0
    renewed = smalt("online-endpoint", "get-credentials", "-n", "credit").json()
    assert renewed["primaryKey"] != primary and renewed["secondaryKey"] == secondary
    assert client.score({"data": [[1]]}, key=primary).status_code == 401
    assert client.score({"data": [[1]]}, key=renewed["primaryKey"]).status_code == 200
    assert client.score({"data": [[1]]}, key=secondary).status_code == 200


def test_aml_token_auth_with_expiry(ml_client: Any, project: Path, serving: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from smalt.specs import load_online_deployment

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="tok", auth_mode="aml_token")).result()
    blue = load_online_deployment(project / "blue.yml", params={"endpoint_name": "tok"})
    ml_client.online_deployments.begin_create_or_update(blue, all_traffic=True).result()
    token = ml_client.online_endpoints.get_keys("tok")
    assert token.expiry_time_utc > time.time() + 3000 and token.to_dict()["accessToken"] == token.access_token
    client = Client(ml_client, "tok")
    assert client.score({"data": [[1]]}, key=token.access_token).json()["scores"] == [1]
    assert client.score({"data": [[1]]}, key=token.access_token[:-2] + "xx").status_code == 401
    with pytest.raises(InvalidStateError, match="no keys"):
        ml_client.online_endpoints.begin_regenerate_keys("tok", key_type="primary")

    import smalt.services.endpoints as endpoints

    monkeypatch.setattr(endpoints, "TOKEN_LIFETIME", timedelta(seconds=-5))
    expired = ml_client.online_endpoints.get_keys("tok")
    assert client.score({"data": [[1]]}, key=expired.access_token).status_code == 401


def test_failing_init_bad_payloads_and_errors_in_run(ml_client: Any, project: Path, serving: None) -> None:
    from smalt.specs import load_online_deployment

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="credit")).result()
    blue = load_online_deployment(project / "blue.yml")
    ml_client.online_deployments.begin_create_or_update(blue, all_traffic=True).result()
    broken = load_online_deployment(project / "green.yml", overrides=["environment_variables.FAIL_INIT=1"])
    with pytest.raises(BackendError, match="exited during init"):
        ml_client.online_deployments.begin_create_or_update(broken).result()
    assert ml_client.online_deployments.get("green", "credit").provisioning_state == "Failed"
    assert "ZeroDivisionError" in ml_client.online_deployments.get_logs("green", "credit")
    endpoint = ml_client.online_endpoints.get("credit")
    endpoint.traffic = {"blue": 50, "green": 50}
    with pytest.raises(InvalidSpecError, match="is Failed"):
        ml_client.online_endpoints.begin_create_or_update(endpoint)
    assert ml_client.online_endpoints.get("credit").traffic == {"blue": 100}

    client = Client(ml_client, "credit")
    assert client.score({"data": [[1]]}, deployment="green").status_code == 404  # it takes no requests
    malformed = client.score("{not json")
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]
    wrong_shape = client.score({"rows": [[1]]})
    assert wrong_shape.status_code == 500 and "KeyError" in wrong_shape.json()["error"]
    exploded = client.score({"data": [[1]], "explode": True})
    assert exploded.status_code == 500 and "asked to explode" in exploded.json()["error"]
    slow = client.score({"data": [[1]], "sleep": 3})
    assert slow.status_code == 408 and "request_timeout_ms" in slow.json()["error"]
    assert client.score({"data": [[4, 1]]}).json()["scores"] == [6]  # the instance keeps serving
    with pytest.raises(UserCodeError, match="answered 400"):
        ml_client.online_endpoints.invoke("credit", request="{nope")
    assert client.metric("smalt_online_request_errors_total", "blue") == 5


def test_endpoints_outlive_the_command_and_start_all_brings_them_back(
    workspace_path: Path, project: Path, serving: None
) -> None:
    cli = [str(Path(sys.executable).with_name("smalt")), "--workspace", str(workspace_path)]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("online-endpoint", "create", "-f", str(project / "endpoint.yml"))
    run("online-deployment", "create", "-f", str(project / "blue.yml"), "--all-traffic")
    # The commands have exited; their endpoint answers.
    from smalt import MLClient

    with MLClient(workspace=workspace_path) as ml_client:
        client = Client(ml_client, "credit")
        assert client.score({"data": [[1, 1]]}).json()["scores"] == [3]
        uri = client.uri
        ml_client.online_endpoints.begin_stop("credit").result()
        assert ml_client.online_endpoints.get("credit").state == "Stopped"
        with pytest.raises(InvalidStateError, match="stopped"):
            ml_client.online_endpoints.invoke("credit", request='{"data": [[1]]}')
    started = json.loads(run("online-endpoint", "start", "--all", "-o", "json"))
    assert [(e["name"], e["state"], e["scoring_uri"]) for e in started] == [("credit", "Running", uri)]
    assert client.score({"data": [[1, 1]]}).json()["scores"] == [3]


@pytest.mark.slow
def test_rollout_under_load_drops_no_request(ml_client: Any, project: Path, serving: None) -> None:
    from smalt.specs import load_online_deployment

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="credit")).result()
    ml_client.online_deployments.begin_create_or_update(
        load_online_deployment(project / "blue.yml"), all_traffic=True
    ).result()
    ml_client.online_deployments.begin_create_or_update(load_online_deployment(project / "green.yml")).result()
    client = Client(ml_client, "credit")
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    answer = http.post(client.uri, content='{"data": [[1, 2]]}',
                                       headers={"Authorization": f"Bearer {client.key}"})  # fmt: skip
                    results.append((answer.status_code, answer.json().get("who", "")))
                except httpx.HTTPError as exc:
                    results.append((0, repr(exc)))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for traffic in ({"blue": 0, "green": 100}, {"blue": 100, "green": 0}, {"blue": 50, "green": 50}):
            endpoint = ml_client.online_endpoints.get("credit")
            endpoint.traffic = traffic
            ml_client.online_endpoints.begin_create_or_update(endpoint).result()
            time.sleep(0.4)
        # Replace blue's instances (a new version of its settings) while it takes half the requests.
        renewed = load_online_deployment(project / "blue.yml", overrides=["environment_variables.WHO=blue2"])
        ml_client.online_deployments.begin_create_or_update(renewed).result()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    seen = Counter(who for _, who in results)
    assert len(results) > 200 and seen["blue"] and seen["green"] and seen["blue2"], seen
