"""`smalt job` commands through `smalt server` (SMALT_URL set): the CLI is a thin HTTP client and the
server runs the jobs, started warm from its fork server. The CLI runs in-process against a real
server process; one probe runs it as its own interpreter to show what it does not import."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import RunningServer, cli_probe, start_server

Smalt = Callable[..., Any]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_a_job_runs_through_the_server_with_its_logs_streamed(smalt: Smalt, remote: RunningServer,
                                                              tmp_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "hello.yml", """
        type: command
        command: echo "hello from $GREETER"
        environment_variables: {GREETER: the server}
        experiment_name: remote
    """)  # fmt: skip
    # --workspace is not given: the server's workspace is the one that counts.
    created = smalt("job", "create", "-f", str(spec), "--stream", workspace=False)
    assert created.exit_code == 0, created.stderr
    assert "hello from the server" in created.stdout
    name = created.stderr.split()[1]
    assert f"Job {name} finished: Completed" in created.stderr

    shown = smalt("job", "show", "-n", name, "-o", "json", workspace=False)
    assert shown.exit_code == 0, shown.stderr
    job = shown.json()
    assert isinstance(job, dict)
    assert (job["status"], job["experiment_name"]) == ("Completed", "remote")
    listed = smalt("job", "list", "--experiment", "remote", "-o", "json", workspace=False).json()
    assert isinstance(listed, list) and [j["name"] for j in listed] == [name]
    # The server's workspace holds it: the in-process SDK on that folder sees the same job.
    os.environ.pop("SMALT_URL")
    assert smalt("job", "show", "-n", name, "-o", "json").json()["status"] == "Completed"  # type: ignore[index]


def test_a_failing_job_and_a_bad_spec_come_back_as_they_do_in_process(smalt: Smalt, remote: RunningServer,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    failing = write(tmp_path / "fail.yml", """
        type: command
        command: echo about to fail >&2 && exit 3
    """)  # fmt: skip
    failed = smalt("job", "create", "-f", str(failing), "--stream", workspace=False)
    assert failed.exit_code == 1
    assert "finished: Failed" in failed.stderr and "the command exited with code 3" in failed.stderr

    bad = write(tmp_path / "bad.yml", """
        type: command
        command: echo ${{inputs.missing}}
    """)  # fmt: skip
    refused = smalt("job", "create", "-f", str(bad), workspace=False)
    assert refused.exit_code == 1
    # The same error as in-process: the file, the line and the field.
    assert f"{bad}:2: command:" in refused.stderr and "no input 'missing'" in refused.stderr
    listed = smalt("job", "list", "-o", "json", workspace=False).json()
    assert isinstance(listed, list) and len(listed) == 1  # nothing queued for the bad one

    missing = smalt("job", "show", "-n", "no_such_job", workspace=False)
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_cancel_through_the_server_stops_the_job(smalt: Smalt, remote: RunningServer, tmp_path: Path) -> None:
    spec = write(tmp_path / "sleep.yml", """
        type: command
        command: echo started && sleep 60
    """)  # fmt: skip
    created = smalt("job", "create", "-f", str(spec), "-o", "json", workspace=False)
    assert created.exit_code == 0, created.stderr
    name = created.json()["name"]  # type: ignore[index]
    canceled = smalt("job", "cancel", "-n", name, "-o", "json", workspace=False)
    assert canceled.exit_code == 0, canceled.stderr
    followed = smalt("job", "stream", "-n", name, workspace=False)
    assert followed.exit_code == 1
    assert "finished: Canceled" in followed.stderr


def test_a_pipeline_runs_through_the_server(smalt: Smalt, remote: RunningServer, tmp_path: Path) -> None:
    spec = write(tmp_path / "pipeline.yml", """
        type: pipeline
        jobs:
          make:
            command: echo made > ${{outputs.out}}/made.txt
            outputs: {out: {type: uri_folder}}
          show:
            command: cat ${{inputs.made}}/made.txt
            inputs:
              made: ${{parent.jobs.make.outputs.out}}
    """)  # fmt: skip
    created = smalt("job", "create", "-f", str(spec), "--stream", workspace=False)
    assert created.exit_code == 0, created.stderr
    assert "[show] made" in created.stdout
    name = created.stderr.split()[1]
    steps = smalt("job", "list", "--parent", name, "-o", "json", workspace=False).json()
    assert isinstance(steps, list)
    assert sorted((s["display_name"], s["status"]) for s in steps) == [("make", "Completed"), ("show", "Completed")]


def test_a_token_guarded_server_needs_smalt_token(smalt: Smalt, workspace_path: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    server = start_server(workspace_path, tmp_path / "server.log", env={"SMALT_TOKEN": "s3cret"},
                          args=("--token-env", "SMALT_TOKEN"))  # fmt: skip
    try:
        monkeypatch.setenv("SMALT_URL", server.url)
        refused = smalt("job", "list", workspace=False)
        assert refused.exit_code == 1
        assert "A valid credential is required" in refused.stderr and "SMALT_TOKEN" in refused.stderr
        monkeypatch.setenv("SMALT_TOKEN", "s3cret")
        assert smalt("job", "list", "-o", "json", workspace=False).exit_code == 0
    finally:
        server.stop()


def test_with_smalt_url_every_command_goes_to_that_server_never_to_a_local_workspace(
    smalt: Smalt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALT_URL", "http://127.0.0.1:9")
    for command in (("data", "list"), ("job", "list")):
        unreachable = smalt(*command, workspace=False)
        assert unreachable.exit_code == 1 and "Cannot reach the smalt server" in unreachable.stderr


#: What a command through a server must not load: the store, the server, the YAML reader.
WATCHED = ("sqlalchemy", "fastapi", "ruamel", "httpx", "smalt.services", "smalt.store")


def test_a_command_through_a_server_imports_no_store_no_services(remote: RunningServer, tmp_path: Path) -> None:
    listing, _, report = cli_probe("job", "list", "-o", "json", watched=WATCHED, env={"SMALT_URL": remote.url})
    assert json.loads(listing) == []
    assert report == {"code": 0, "loaded": []}
    spec = write(tmp_path / "hello.yml", """
        type: command
        command: echo hello world
    """)  # fmt: skip
    server = {"SMALT_URL": remote.url}
    out, err, report = cli_probe("job", "create", "-f", str(spec), "--stream", watched=WATCHED, env=server)
    assert out == "hello world\n"
    assert "submitted; streaming its logs" in err and "finished: Completed" in err
    assert report == {"code": 0, "loaded": ["ruamel"]}  # the job file is read here; nothing else heavy
    _, err, report = cli_probe("job", "stream", "-n", "no_such_job", watched=WATCHED, env=server)
    assert report["code"] == 1 and "Error: " in err and "no_such_job" in err


def test_the_console_script_ends_with_the_jobs_code_and_all_its_output(
    remote: RunningServer, tmp_path: Path
) -> None:
    """What the installed `smalt` wrote to a pipe arrives whole, and the exit code is the job's."""
    import subprocess
    import sys

    smalt_script = str(Path(sys.executable).with_name("smalt"))
    lines = "; ".join(f"echo line-{i}" for i in range(200))
    ok = write(tmp_path / "ok.yml", f"""
        type: command
        command: {lines}
    """)  # fmt: skip
    failing = write(tmp_path / "failing.yml", """
        type: command
        command: echo before the failure; exit 3
    """)  # fmt: skip
    env = {**os.environ, "SMALT_URL": remote.url}
    done = subprocess.run([smalt_script, "job", "create", "-f", str(ok), "--stream"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"line-{i}" for i in range(200)]
    assert done.stderr.rstrip().endswith("finished: Completed")
    failed = subprocess.run([smalt_script, "job", "create", "-f", str(failing), "--stream"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert failed.returncode == 1 and "before the failure" in failed.stdout
    assert "finished: Failed" in failed.stderr and "exited with code 3" in failed.stderr


@pytest.mark.slow
def test_after_a_server_restart_no_job_stays_running(workspace_path: Path, tmp_path: Path) -> None:
    """A job's supervisor is its own process: a job that was running when the server stopped is
    adopted by the next server and finishes; one whose supervisor died meanwhile is marked Failed
    with the reason by the next server as it starts, before any command asks."""
    import io
    import signal
    import sqlite3
    import time
    from contextlib import closing

    from tests.e2e.test_jobs import gone, until

    from smalt import MLClient, command

    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    with MLClient(url=server.url) as client:
        adopted = client.jobs.create_or_update(command(command="sleep 4; echo adopted", name="adopted_one"))
        orphan = client.jobs.create_or_update(command(command="sleep 120", name="orphan_one"))
        until(lambda: all(client.jobs.get(j.name).status == "Running" for j in (adopted, orphan)), "both to run")
    server.stop()

    with closing(sqlite3.connect(f"file:{workspace_path / 'metadata.db'}?mode=ro", uri=True)) as db:
        (pid,) = db.execute("SELECT supervisor_pid FROM jobs WHERE name = 'orphan_one'").fetchone()
    os.kill(pid, signal.SIGKILL)  # while no server runs
    until(lambda: gone(pid), "the supervisor to die", 10)

    started = time.monotonic()
    server = start_server(workspace_path, tmp_path / "server2.log")
    try:
        with MLClient(url=server.url) as client:
            failed = client.jobs.get("orphan_one")
            assert failed.status == "Failed", failed.status
            assert failed.error is not None and "NotResponding" in failed.error["message"]
            out = io.StringIO()
            assert client.jobs.stream("adopted_one", out=out).status == "Completed"
            assert "adopted" in out.getvalue()
        assert time.monotonic() - started < 60
    finally:
        server.stop()
