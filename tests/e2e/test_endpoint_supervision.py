"""A dead instance of an online deployment, as a user meets one (issue 17): a ``kill -9`` of an
instance under load drops no request and the instance comes back; ``show`` does not say Running
while an instance is dead; ``start`` after a kill leaves no duplicate worker, and ``stop`` and
``delete`` leave no process behind."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from smalt.entities import ManagedOnlineEndpoint

SCORE = """\
import json, os

def init():
    flag = os.environ.get("FAIL_INIT_IF")
    if flag and os.path.exists(flag):
        raise RuntimeError("asked to fail by " + flag)

def run(raw_data):
    return {"pid": os.getpid(), "sum": sum(json.loads(raw_data)["data"])}
"""


def write_deployment(folder: Path, *, instances: int, fail_init_if: Path | None = None) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "score.py").write_text(SCORE)
    flag = f"\n  FAIL_INIT_IF: {fail_init_if}" if fail_init_if else ""
    (folder / "blue.yml").write_text(f"""\
name: blue
endpoint_name: credit
code_configuration:
  code: ./src
  scoring_script: score.py
environment_variables:
  WHO: blue{flag}
instance_count: {instances}
request_settings:
  request_timeout_ms: 5000
  max_concurrent_requests_per_instance: 4
  max_queue_wait_ms: 10000
""")
    return folder / "blue.yml"


def deploy(ml_client: Any, deployment: Path) -> None:
    from smalt.specs import load_online_deployment

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="credit")).result()
    ml_client.online_deployments.begin_create_or_update(load_online_deployment(deployment), all_traffic=True).result()


def processes_of(folder: Path) -> list[psutil.Process]:
    """Every live process of the endpoint whose files are in ``folder``: its router, its instances."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            cmdline, cwd = " ".join(process.info["cmdline"] or []), process.info["cwd"] or ""
            mentions = str(folder) in cmdline or cwd.startswith(str(folder))
            if mentions and process.info["status"] != psutil.STATUS_ZOMBIE and process.pid != os.getpid():
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def workers_of(folder: Path) -> dict[int, str]:
    """The endpoint's instance processes: pid -> the socket it serves."""
    workers = {}
    for process in processes_of(folder):
        with_args = process.info["cmdline"] or []
        if len(with_args) > 3 and with_args[1].endswith("worker.py") and "--socket" in with_args:
            workers[process.pid] = with_args[with_args.index("--socket") + 1]
    return workers


def kill(pid: int) -> None:
    """``kill -9``, and wait until the process is dead (a zombie, until init reaps it, counts)."""
    process = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)

    def dead() -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(f"process {pid} dead", dead, timeout_s=10)


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


class Scorer:
    def __init__(self, ml_client: Any) -> None:
        self.uri = ml_client.online_endpoints.get("credit").scoring_uri
        self.headers = {"Authorization": f"Bearer {ml_client.online_endpoints.get_keys('credit').primary_key}"}

    def score(self, http: httpx.Client) -> httpx.Response:
        return http.post(self.uri, content='{"data": [1, 2]}', headers=self.headers)


@pytest.mark.slow
def test_a_killed_instance_drops_no_request_and_comes_back(
    ml_client: Any, tmp_path: Path, workspace_path: Path, serving: None
) -> None:
    deploy(ml_client, write_deployment(tmp_path / "project", instances=2))
    folder = workspace_path / "endpoints" / "credit"
    before = workers_of(folder)
    assert len(before) == 2 and len(set(before.values())) == 2, before
    scorer = Scorer(ml_client)
    results: list[tuple[int, int | str]] = []
    stop = threading.Event()
    deadline = time.monotonic() + 60

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = scorer.score(http)
                    results.append((answer.status_code, answer.json().get("pid") or answer.text))
                except (httpx.HTTPError, ValueError) as exc:
                    results.append((0, repr(exc)))

    threads = [threading.Thread(target=load) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        wait_for("200 requests answered", lambda: len(results) >= 200)
        victim = min(before)
        kill(victim)
        answered = len(results)
        wait_for("300 requests answered after the kill", lambda: len(results) >= answered + 300)
        failures = [r for r in results if r[0] != 200]
        assert not failures, (len(failures), len(results), failures[:5])
        # The instance comes back: a new worker on the victim's socket, and it answers requests.
        reborn = wait_for("the killed instance restarted", lambda: [
            pid for pid, socket in workers_of(folder).items() if socket == before[victim] and pid != victim
        ])  # fmt: skip
        wait_for("the restarted instance answers", lambda: any(who == reborn[0] for _, who in results[-500:]))
        answered = len(results)
        wait_for("200 more requests answered", lambda: len(results) >= answered + 200)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failures = [r for r in results if r[0] != 200]
    assert not failures, (len(failures), len(results), failures[:5])
    assert len(workers_of(folder)) == 2
    assert ml_client.online_endpoints.get("credit").state == "Running"


@pytest.mark.slow
def test_show_is_not_running_while_an_instance_is_dead(
    ml_client: Any, smalt: Any, tmp_path: Path, workspace_path: Path, serving: None
) -> None:
    flag = tmp_path / "fail-init"
    deploy(ml_client, write_deployment(tmp_path / "project", instances=1, fail_init_if=flag))
    folder = workspace_path / "endpoints" / "credit"
    assert ml_client.online_endpoints.get("credit").state == "Running"
    assert ml_client.online_deployments.get("blue", "credit").provisioning_state == "Succeeded"
    scorer = Scorer(ml_client)
    with httpx.Client(timeout=30) as http:
        assert scorer.score(http).status_code == 200

        # From now on every restart of the instance fails in init(): it stays dead.
        flag.touch()
        (victim,) = workers_of(folder)
        kill(victim)

        def told_the_truth() -> None:
            assert ml_client.online_endpoints.get("credit").state == "Degraded"
            assert ml_client.online_deployments.get("blue", "credit").provisioning_state == "Updating"
            shown = smalt("online-endpoint", "show", "-n", "credit", "-o", "json")
            assert shown.exit_code == 0 and shown.json()["state"] == "Degraded", shown.stdout

        told_the_truth()
        refused = scorer.score(http)
        assert refused.status_code == 503 and "get-logs" in refused.json()["hint"], refused.text

        # Restarts that fail back off: the second failed init() comes a second after the first.
        (log,) = folder.glob("blue/*/instance-0.log")
        wait_for("a restart failed in init()", lambda: log.read_text().count("init() failed") >= 1)
        first = time.monotonic()
        wait_for("a second restart failed in init()", lambda: log.read_text().count("init() failed") >= 2)
        assert time.monotonic() - first >= 0.9, "the restarts do not back off"
        told_the_truth()

        flag.unlink()
        wait_for("the endpoint Running again", lambda: ml_client.online_endpoints.get("credit").state == "Running")
        assert ml_client.online_deployments.get("blue", "credit").provisioning_state == "Succeeded"
        answer = scorer.score(http)
        assert answer.status_code == 200 and answer.json()["pid"] != victim


def test_start_after_a_kill_duplicates_nothing_and_stop_and_delete_leave_nothing(
    ml_client: Any, tmp_path: Path, workspace_path: Path, serving: None
) -> None:
    deploy(ml_client, write_deployment(tmp_path / "project", instances=2))
    folder = workspace_path / "endpoints" / "credit"
    before = workers_of(folder)
    kill(min(before))

    ml_client.online_endpoints.begin_start("credit").result()
    after = workers_of(folder)
    assert len(after) == 2 and len(set(after.values())) == 2, f"one worker per instance slot: {after}"
    assert ml_client.online_endpoints.get("credit").state == "Running"
    scorer = Scorer(ml_client)
    with httpx.Client(timeout=30) as http:
        assert {scorer.score(http).status_code for _ in range(20)} == {200}

    ml_client.online_endpoints.begin_stop("credit").result()
    assert processes_of(folder) == []
    assert ml_client.online_endpoints.get("credit").state == "Stopped"
    ml_client.online_endpoints.begin_start("credit").result()
    assert len(workers_of(folder)) == 2

    # A kill just before the delete: the instance may be restarting while the endpoint goes.
    kill(min(workers_of(folder)))
    ml_client.online_endpoints.begin_delete("credit").result()
    assert processes_of(folder) == []
