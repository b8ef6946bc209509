"""``kill -9`` of a smalt process at a chosen moment, and what every job ends as.

Each smalt process is killed where a crash hurts: a pipeline's driver while its steps run or just as
it starts one, a job's supervisor while its command runs or while it publishes the outputs, the fork
server of ``smalt server``. Afterwards no job may stay active, a pipeline whose steps all completed
is Completed, no process of a job whose supervisor died runs on, and no output is published for a
step recorded Failed. The exact moments come from a test seam (``SMALT_CRASH_AT``, see
``smalt.execution.detached.crash_point``); waiting is polling with deadlines.

Where a test must show that a resident process (a driver, a server) recovers on its own, it reads
the metadata database directly: any smalt command would reap the jobs itself.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.conftest import RunningServer, start_server
from tests.e2e.test_jobs import SLEEPER, Smalt, gone, read_pid, show, sleeping_job, submit, until, wait, write
from tests.e2e.test_pipelines import ACTIVE, driver_pid, lines, pipeline, statuses, steps, three_steps

TERMINAL = ("Completed", "Failed", "Canceled", "Skipped")


# -- helpers ----------------------------------------------------------------------------------
def recorded(workspace: Path) -> dict[str, dict[str, Any]]:
    """Every job's row as the metadata database holds it, read without any smalt code (which would
    reap): name -> status, pid, parent, error."""
    with closing(sqlite3.connect(f"file:{workspace / 'metadata.db'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT name, status, supervisor_pid, parent_name, error, display_name FROM jobs").fetchall()
    return {
        name: {"status": status, "pid": pid, "parent": parent, "error": json.loads(error) if error else None,
               "display_name": display}
        for name, status, pid, parent, error, display in rows
    }  # fmt: skip


def settled(workspace: Path, name: str, timeout: float) -> dict[str, Any]:
    """Until job ``name`` is final in the database (no smalt command runs meanwhile); its row."""

    def final() -> dict[str, Any] | None:
        row = recorded(workspace).get(name)
        return row if row is not None and row["status"] in TERMINAL else None

    row: dict[str, Any] = until(final, f"job {name} to end on its own", timeout)
    return row


def no_job_active(workspace: Path) -> None:
    active = {n: r["status"] for n, r in recorded(workspace).items() if r["status"] in ACTIVE}
    assert not active, f"jobs left active: {active}"


def crash_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, point: str) -> Path:
    """Have the first smalt process that reaches ``point`` die there; the flag file it leaves."""
    flag = tmp_path / f"crashed-at-{point}"
    monkeypatch.setenv("SMALT_CRASH_AT", point)
    monkeypatch.setenv("SMALT_CRASH_FLAG", str(flag))
    return flag


def published(workspace: Path, job: str, port: str) -> Path:
    """Where a job's output is published in the workspace's own datastore."""
    return workspace / "blobs" / "azureml" / job / port


def kill(pid: int, what: str) -> None:
    os.kill(pid, signal.SIGKILL)
    until(lambda: gone(pid), f"{what} to die", 10)


# -- a pipeline's driver ----------------------------------------------------------------------
def test_a_driver_killed_while_a_step_runs_is_replaced_and_the_pipeline_completes(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    trace, running, release = tmp_path / "ran.txt", tmp_path / "b.pid", tmp_path / "release"
    name = submit(smalt, three_steps(tmp_path, trace, running, release))
    try:
        read_pid(running)
        driver = driver_pid(workspace_path, name)
        kill(driver, "the driver")

        # The next command finds the driver gone; the pipeline goes on under a new one.
        job = show(smalt, name)
        assert job["status"] == "Running", job.get("error")
        until(lambda: recorded(workspace_path)[name]["pid"] not in (None, driver), "a new driver to take it", 10)
    finally:
        release.touch()

    job = wait(smalt, name, timeout=60)
    assert job["status"] == "Completed", job.get("error")
    assert statuses(steps(smalt, name)) == {"a": "Completed", "b": "Completed", "c": "Completed"}
    assert lines(trace) == ["a", "b", "c"]
    no_job_active(workspace_path)


@pytest.mark.slow
def test_a_driver_killed_as_it_starts_a_step_leaves_no_step_queued_forever(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver dies after recording step a Queued and before a supervisor exists for it."""
    flag = crash_at(monkeypatch, tmp_path, "start:smalt.services.supervisor")
    trace = tmp_path / "ran.txt"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        jobs:
          a:
            command: echo a >> {trace}; echo a > ${{{{outputs.out}}}}/a.txt
            outputs: {{out: {{type: uri_folder}}}}
          b:
            command: echo b >> {trace}; cat ${{{{inputs.src}}}}/a.txt
            inputs: {{src: "${{{{parent.jobs.a.outputs.out}}}}"}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    until(flag.exists, "the driver to crash as it starts step a", 30)
    found = {r["display_name"]: r for r in recorded(workspace_path).values() if r["parent"] == name}
    assert found["a"]["status"] == "Queued" and found["a"]["pid"] is None, found["a"]

    job = wait(smalt, name, timeout=60)  # each `job show` is a smalt command: it reaps
    assert job["status"] == "Completed", job.get("error")
    assert statuses(steps(smalt, name)) == {"a": "Completed", "b": "Completed"}
    assert lines(trace) == ["a", "b"]
    no_job_active(workspace_path)


# -- a job's supervisor -----------------------------------------------------------------------
def test_the_process_of_a_job_whose_supervisor_was_killed_is_stopped_without_any_command(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    name, sleeper = sleeping_job(smalt, tmp_path)
    try:
        supervisor = recorded(workspace_path)[name]["pid"]
        assert supervisor and psutil.Process(supervisor).is_running()
        kill(supervisor, "the supervisor")
        # No smalt command runs: the job's own process tree notices its supervisor is gone.
        until(lambda: gone(sleeper), "the orphaned job process to be stopped", 10)

        job = show(smalt, name)
        assert job["status"] == "Failed"
        assert job["error"]["cause"] == "platform" and "NotResponding" in job["error"]["message"]
        no_job_active(workspace_path)
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)


def test_a_step_whose_supervisor_was_killed_fails_its_pipeline_without_any_command(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    """The pipeline's driver is a resident smalt process: it finds its step's supervisor dead."""
    pid_file, trace = tmp_path / "sleep.pid", tmp_path / "ran.txt"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        jobs:
          long:
            command: {json.dumps(SLEEPER)}
            environment_variables: {{PID_FILE: {pid_file}}}
            outputs: {{out: {{type: uri_folder}}}}
          later:
            command: echo later >> {trace}
            inputs: {{src: "${{{{parent.jobs.long.outputs.out}}}}"}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    sleeper = read_pid(pid_file)
    try:
        step = next(n for n, r in recorded(workspace_path).items() if r["display_name"] == "long")
        kill(recorded(workspace_path)[step]["pid"], "the step's supervisor")

        row = settled(workspace_path, name, 30)
        assert row["status"] == "Failed", row
        rows = recorded(workspace_path)
        assert rows[step]["status"] == "Failed" and "NotResponding" in rows[step]["error"]["message"]
        until(lambda: gone(sleeper), "the orphaned step process to be stopped", 10)
        assert not trace.exists(), "a step ran after the one it reads from failed"
        no_job_active(workspace_path)
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)


def test_a_second_supervisor_started_for_a_running_job_leaves_it_alone(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    """What a reaper that restarts a job it took for never started relies on: a late or extra
    supervisor finds the job taken and leaves without touching it."""
    running, release = tmp_path / "job.pid", tmp_path / "release"
    spec = write(tmp_path / "job.yml", f"""
        command: echo $$ > {running}; while [ ! -e {release} ]; do sleep 0.05; done; echo done
    """)  # fmt: skip
    name = submit(smalt, spec)
    try:
        read_pid(running)
        first = recorded(workspace_path)[name]["pid"]
        extra = subprocess.run([sys.executable, "-m", "smalt.services.supervisor", str(workspace_path), name],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert extra.returncode == 0, extra.stderr
        row = recorded(workspace_path)[name]
        assert (row["status"], row["pid"]) == ("Running", first), row
    finally:
        release.touch()
    job = wait(smalt, name, timeout=30)
    assert job["status"] == "Completed", job.get("error")


@pytest.mark.parametrize("point", ["supervisor.finalizing", "supervisor.published"])
def test_a_supervisor_killed_while_finalizing_ends_completed_with_its_output_published_once(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    flag = crash_at(monkeypatch, tmp_path, point)
    spec = write(tmp_path / "job.yml", """
        command: echo 42 > ${{outputs.out}}/answer.txt
        outputs:
          out: {type: uri_folder, name: answer}
    """)  # fmt: skip
    name = submit(smalt, spec)
    until(flag.exists, f"the supervisor to crash at {point}", 30)
    until(lambda: (pid := recorded(workspace_path)[name]["pid"]) and gone(pid), "the supervisor to be dead", 10)
    assert recorded(workspace_path)[name]["status"] == "Finalizing"

    job = wait(smalt, name, timeout=30)
    assert job["status"] == "Completed", job.get("error")
    assert (published(workspace_path, name, "out") / "answer.txt").read_text() == "42\n"
    versions = smalt("data", "list", "--name", "answer", "-o", "json")
    assert versions.exit_code == 0, versions.stderr
    assert [v["version"] for v in versions.json()] == ["1"], "the output was registered more than once"
    no_job_active(workspace_path)


def test_a_step_whose_supervisor_was_killed_while_finalizing_completes_its_pipeline_without_any_command(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = crash_at(monkeypatch, tmp_path, "supervisor.published")
    spec = pipeline(tmp_path / "pipeline.yml", """
        jobs:
          first:
            command: echo one > ${{outputs.out}}/one.txt
            outputs: {out: {type: uri_folder}}
          second:
            command: cat ${{inputs.src}}/one.txt > ${{outputs.out}}/two.txt
            inputs: {src: "${{parent.jobs.first.outputs.out}}"}
            outputs: {out: {type: uri_folder}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    row = settled(workspace_path, name, 30)
    assert flag.exists(), "no supervisor crashed while publishing"
    assert row["status"] == "Completed", row
    found = {r["display_name"]: n for n, r in recorded(workspace_path).items() if r["parent"] == name}
    assert (published(workspace_path, found["second"], "out") / "two.txt").read_text() == "one\n"
    no_job_active(workspace_path)


def test_a_step_that_fails_while_publishing_leaves_no_output_published(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    """Registering the output fails after the folder was published (its version exists with other
    content): the job is Failed, so what it published is taken back."""
    taken = write(tmp_path / "data.yml", f"""
        name: answer
        version: "1"
        type: uri_folder
        path: {tmp_path / "other"}
    """)  # fmt: skip
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    created = smalt("data", "create", "-f", str(taken))
    assert created.exit_code == 0, created.stderr
    spec = write(tmp_path / "job.yml", """
        command: echo 42 > ${{outputs.out}}/answer.txt
        outputs:
          out: {type: uri_folder, name: answer, version: "1"}
    """)  # fmt: skip
    name = submit(smalt, spec)

    job = wait(smalt, name, timeout=30)
    assert job["status"] == "Failed"
    assert "answer" in job["error"]["message"], job["error"]
    assert not published(workspace_path, name, "out").exists(), "a failed job's output is published"
    no_job_active(workspace_path)


# -- a resident smalt server ------------------------------------------------------------------
@pytest.mark.slow
def test_a_server_recovers_a_pipeline_whose_driver_and_fork_server_were_killed_without_any_command(
    smalt: Smalt, remote: RunningServer, tmp_path: Path, workspace_path: Path
) -> None:
    trace, running, release = tmp_path / "ran.txt", tmp_path / "b.pid", tmp_path / "release"
    name = submit(smalt, three_steps(tmp_path, trace, running, release))
    try:
        read_pid(running)
        forks = [p for p in psutil.Process(remote.process.pid).children() if "smalt.execution.detached" in p.cmdline()]
        assert len(forks) == 1, "the server has one fork server"
        kill(forks[0].pid, "the fork server")
        kill(driver_pid(workspace_path, name), "the driver")
    finally:
        release.touch()

    # No smalt command from here on: the server's own reaper finds the driver gone, within 30 s.
    row = settled(workspace_path, name, 30)
    assert row["status"] == "Completed", row
    assert lines(trace) == ["a", "b", "c"]
    no_job_active(workspace_path)


@pytest.mark.slow
def test_a_server_killed_as_it_starts_a_job_leaves_it_to_the_next_command_which_runs_it(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``smalt server`` dies after recording the job Queued and before a supervisor exists for it."""
    flag = tmp_path / "crashed"
    crash = {"SMALT_CRASH_AT": "start:smalt.services.supervisor", "SMALT_CRASH_FLAG": str(flag)}
    crashing = start_server(workspace_path, tmp_path / "server.log", env=crash)
    try:
        monkeypatch.setenv("SMALT_URL", crashing.url)
        smalt("job", "create", "-f", str(write(tmp_path / "job.yml", "command: echo hello\n")), "-o", "json")
        until(flag.exists, "the server to crash as it starts the job", 30)
        until(lambda: crashing.process.poll() is not None, "the server to die", 10)
    finally:
        crashing.stop()
        monkeypatch.delenv("SMALT_URL")
    [(name, row)] = recorded(workspace_path).items()
    assert row["status"] == "Queued" and row["pid"] is None, row

    job = wait(smalt, name, timeout=60)  # each `job show` is a smalt command: it reaps
    assert job["status"] == "Completed", job.get("error")
    assert "hello" in (workspace_path / "jobs" / name / "logs" / "std_log.txt").read_text()
    no_job_active(workspace_path)


def test_a_reaper_with_a_stale_view_leaves_a_job_that_completed_meanwhile_alone(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    """A reaper reads the active jobs, then acts: a job it saw Finalizing whose supervisor has
    since recorded Completed and exited (so its pid is dead) must keep its published output."""
    import dataclasses

    from smalt.services.jobs import JobService
    from smalt.services.workspace import open_workspace

    spec = write(tmp_path / "job.yml", """
        command: echo kept > ${{outputs.out}}/kept.txt
        outputs: {out: {type: uri_folder}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    assert wait(smalt, name)["status"] == "Completed"
    output = published(workspace_path, name, "out") / "kept.txt"
    assert output.read_text() == "kept\n"

    ws = open_workspace(workspace_path)
    try:
        with ws.store.transaction() as tx:
            record = tx.jobs.get(name)
        assert record is not None
        dead = subprocess.Popen(["true"])
        dead.wait()
        seen = dataclasses.replace(record, status="Finalizing", supervisor_pid=dead.pid)  # the view it read
        with ws.store.transaction(write=True) as tx:  # the supervisor's pid as it was while it ran
            tx.jobs.touch(name, supervisor_pid=dead.pid)
        assert JobService(ws).reap_stale([seen]) == []
    finally:
        ws.close()
    assert show(smalt, name)["status"] == "Completed"
    assert output.read_text() == "kept\n"
