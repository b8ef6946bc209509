"""Command jobs as a user runs them: YAML through the CLI and ``command(...)`` through the SDK, real
supervisor processes, real process trees, real outputs in the workspace's datastore."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

Smalt = Callable[..., Any]
TERMINAL = ("Completed", "Failed", "Canceled")


# -- helpers ----------------------------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def submit(smalt: Smalt, spec: Path, *extra: str) -> str:
    """``smalt job create -f spec``; the new job's name."""
    result = smalt("job", "create", "-f", str(spec), *extra, "-o", "json")
    assert result.exit_code == 0, result.stderr
    job = result.json()
    assert job["status"] in ("NotStarted", "Queued", "Preparing", "Running", *TERMINAL)
    return str(job["name"])


def show(smalt: Smalt, name: str) -> dict[str, Any]:
    result = smalt("job", "show", "--name", name, "-o", "json")
    assert result.exit_code == 0, result.stderr
    job: dict[str, Any] = result.json()
    return job


def until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``condition`` until it returns something truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait(smalt: Smalt, name: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
    """``smalt job show`` until the job is in one of ``statuses``; the job as shown then."""

    def reached() -> dict[str, Any] | None:
        job = show(smalt, name)
        return job if job["status"] in statuses else None

    job: dict[str, Any] = until(reached, f"job {name} to reach {'/'.join(statuses)}", timeout)
    return job


def finish(ml_client: Any, name: str, timeout: float = 60) -> Any:
    """``ml_client.jobs.get`` until the job has finished; the finished job."""

    def finished() -> Any:
        job = ml_client.jobs.get(name)
        return job if job.status in TERMINAL else None

    return until(finished, f"job {name} to finish", timeout)


def log(workspace: Path, name: str, file: str = "std_log.txt") -> str:
    return (workspace / "jobs" / name / "logs" / file).read_text()


def read_pid(file: Path) -> int:
    text = until(lambda: file.exists() and file.read_text().strip(), f"{file.name} to be written", 30)
    return int(text)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def interval(job: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(job["start_time"]), datetime.fromisoformat(job["end_time"])


def data_names(smalt: Smalt) -> list[str]:
    result = smalt("data", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return [d["name"] for d in result.json()]


# The script of jobs that must be stopped from outside: a background sleep whose pid is written where
# the test can read it, so that the test can check the whole process tree went away.
SLEEPER = 'sleep 30 & echo $! > "$PID_FILE"; wait'


def sleeping_job(smalt: Smalt, tmp_path: Path) -> tuple[str, int]:
    """A job whose command sleeps in the background and waits for it: its name, the sleep's pid."""
    pid_file = tmp_path / "sleep.pid"
    spec = write(tmp_path / "job.yml", f"""
        command: {json.dumps(SLEEPER)}
        environment_variables:
          PID_FILE: {pid_file}
    """)  # fmt: skip
    return submit(smalt, spec), read_pid(pid_file)


# -- the basics -------------------------------------------------------------------------------
def test_hello_world_completes_with_its_log_and_a_full_record(smalt: Smalt, tmp_path: Path,
                                                              workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "hello.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        command: echo hello
        display_name: greeting
        experiment_name: first-steps
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)

    assert job["status"] == "Completed", job.get("error")
    assert "hello" in log(workspace_path, name)
    for field in ("name", "display_name", "status", "experiment_name", "compute", "inputs", "outputs",
                  "creation_context", "start_time", "end_time"):  # fmt: skip
        assert field in job, field
    assert (job["name"], job["display_name"], job["experiment_name"]) == (name, "greeting", "first-steps")
    assert job["compute"] == "local"
    assert job["inputs"] == {} and job["outputs"] == {}
    assert job["creation_context"]["created_by"]
    start, end = interval(job)
    assert start <= end
    assert "error" not in job or job["error"] is None
    # `job list` has it, by the same name.
    listed = smalt("job", "list", "-o", "json").json()
    assert [j["name"] for j in listed] == [name]


def test_literal_inputs_are_rendered_and_an_absent_optional_segment_is_dropped(
    ml_client: Any, workspace_path: Path
) -> None:
    from smalt import Input, command

    job = command(
        command="printf '[%s]\\n' ${{inputs.epochs}} ${{inputs.lr}} ${{inputs.shuffle}} ${{inputs.verbose}} "
        "${{inputs.greeting}} $[[--limit ${{inputs.limit}}]] ${{inputs.seed}} end",
        inputs={
            "epochs": 3,
            "lr": 0.25,
            "shuffle": True,
            "verbose": Input(type="boolean", default=False),
            "greeting": "hello world",
            "limit": Input(type="integer", optional=True),
            "seed": Input(type="integer", default=42),
        },
        display_name="literals",
    )
    submitted = ml_client.jobs.create_or_update(job)
    finished = finish(ml_client, submitted.name)
    assert finished.status == "Completed", finished.error
    # One argument per input; the string with a space stays one argument; --limit is gone.
    assert log(workspace_path, submitted.name).splitlines() == [
        "[3]", "[0.25]", "[True]", "[False]", "[hello world]", "[42]", "[end]"
    ]  # fmt: skip


def test_a_binding_inside_quotes_renders_like_azure_ml(ml_client: Any, workspace_path: Path) -> None:
    """Azure ML components often quote their bindings ("${{inputs.x}}"); the value must arrive as written."""
    from smalt import command

    job = command(command='printf "[%s]\\n" "${{inputs.greeting}}"', inputs={"greeting": "hello world"})
    submitted = ml_client.jobs.create_or_update(job)
    finished = finish(ml_client, submitted.name)
    assert finished.status == "Completed", finished.error
    assert log(workspace_path, submitted.name).splitlines() == ["[hello world]"]


@pytest.mark.embedded_only  # a local datastore
def test_data_inputs_from_a_file_an_asset_a_datastore_uri_and_a_folder_are_readable(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    write(tmp_path / "local" / "a.txt", "alpha from a local file\n")
    write(tmp_path / "asset" / "b.txt", "bravo from a data asset\n")
    write(tmp_path / "store" / "raw" / "c.txt", "charlie from a datastore\n")
    write(tmp_path / "folder" / "one.txt", "delta one\n")
    write(tmp_path / "folder" / "nested" / "two.txt", "delta two\n")
    created = smalt(
        "data", "create", "--name", "bravo", "--type", "uri_file", "--path", str(tmp_path / "asset" / "b.txt")
    )
    assert created.exit_code == 0, created.stderr
    store = write(tmp_path / "store.yml", f"""
        name: rawstore
        type: local
        path: {tmp_path / "store"}
    """)  # fmt: skip
    assert smalt("datastore", "create", "-f", str(store)).exit_code == 0

    spec = write(tmp_path / "job" / "job.yml", """
        command: >-
          cat ${{inputs.a}} ${{inputs.b}} ${{inputs.c}} ${{inputs.d}}/one.txt ${{inputs.d}}/nested/two.txt
        inputs:
          a: {type: uri_file, path: ../local/a.txt}
          b: {type: uri_file, path: azureml:bravo@latest}
          c: {type: uri_file, path: azureml://datastores/rawstore/paths/raw/c.txt}
          d: {type: uri_folder, path: ../folder}
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)

    assert job["status"] == "Completed", job.get("error")
    assert log(workspace_path, name).splitlines() == [
        "alpha from a local file", "bravo from a data asset", "charlie from a datastore", "delta one", "delta two"
    ]  # fmt: skip
    # The record holds where each input was read from, not the user's local paths.
    assert all(not str(job["inputs"][port]["path"]).startswith(str(tmp_path)) for port in "abd")
    assert job["inputs"]["c"]["path"] == "azureml://datastores/rawstore/paths/raw/c.txt"


def test_the_job_environment_names_inputs_outputs_and_the_run(ml_client: Any, tmp_path: Path,
                                                              workspace_path: Path) -> None:  # fmt: skip
    from smalt import Input, Output, command

    data = write(tmp_path / "data.csv", "x,y\n1,2\n")
    job = command(
        command='echo "in=${{inputs.data}}"; echo "out=${{outputs.model}}"; env',
        inputs={"data": Input(type="uri_file", path=str(data)), "rate": 0.5},
        outputs={"model": Output(type="uri_folder")},
        environment_variables={"GREETING": "hi there", "TRAIN_MODE": "fast"},
    )
    submitted = ml_client.jobs.create_or_update(job)
    finished = finish(ml_client, submitted.name)
    assert finished.status == "Completed", finished.error

    lines = log(workspace_path, submitted.name).splitlines()
    seen = dict(line.split("=", 1) for line in lines if "=" in line)
    assert seen["AZUREML_RUN_ID"] == submitted.name
    assert seen["AZURE_ML_INPUT_data"] == seen["in"]
    assert Path(seen["in"]).name == "data.csv"
    assert seen["AZURE_ML_INPUT_rate"] == "0.5"
    assert seen["AZURE_ML_OUTPUT_model"] == seen["out"]
    assert (seen["GREETING"], seen["TRAIN_MODE"]) == ("hi there", "fast")


def test_a_named_output_is_registered_as_a_data_asset_holding_what_the_script_wrote(
    smalt: Smalt, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 4
    spec = write(tmp_path / "job.yml", """
        command: >-
          python -c "import sys, pathlib; pathlib.Path(sys.argv[1], 'result.bin').write_bytes(bytes(range(256)) * 4)"
          ${{outputs.results}}
        outputs:
          results:
            type: uri_folder
            name: scores
            version: "7"
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job.get("error")

    shown = smalt("data", "show", "--name", "scores", "--version", "7", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["path"] == job["outputs"]["results"]["path"]
    assert smalt("data", "download", "--name", "scores", "--version", "7", "-p", str(tmp_path / "dl")).exit_code == 0
    [downloaded] = (tmp_path / "dl").rglob("result.bin")
    assert downloaded.read_bytes() == payload
    # The job's own download gives the same bytes under named-outputs/<output>/.
    fetched = smalt("job", "download", "--name", name, "--output-name", "results", "-p", str(tmp_path / "jd"))
    assert fetched.exit_code == 0, fetched.stderr
    assert (tmp_path / "jd" / "named-outputs" / "results" / "result.bin").read_bytes() == payload


def test_a_uri_file_output_is_a_file_path_the_script_writes_to(smalt: Smalt, tmp_path: Path) -> None:
    """As in Azure ML, ``${{outputs.x}}`` of a uri_file output names the file itself."""
    spec = write(tmp_path / "job.yml", """
        command: echo 42 > ${{outputs.score}}
        outputs:
          score: {type: uri_file, name: score, version: "1"}
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job.get("error")

    shown = smalt("data", "show", "--name", "score", "--version", "1", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["type"] == "uri_file"
    assert smalt("data", "download", "--name", "score", "--version", "1", "-p", str(tmp_path / "dl")).exit_code == 0
    [downloaded] = [p for p in (tmp_path / "dl").rglob("*") if p.is_file()]
    assert downloaded.read_text() == "42\n"


def test_the_code_folder_is_the_working_directory_and_its_outputs_folder_is_collected(
    smalt: Smalt, tmp_path: Path
) -> None:
    write(tmp_path / "src" / "train.py", """
        import os
        from pathlib import Path

        settings = Path("settings.txt").read_text().strip()
        print(f"cwd has settings: {settings}")
        print(f"ignored file present: {Path('scratch.tmp').exists()}")
        Path("outputs").mkdir(exist_ok=True)
        Path("outputs", "metrics.json").write_text('{"accuracy": 0.93}')
        Path("outputs", "plots").mkdir(exist_ok=True)
        Path("outputs", "plots", "loss.txt").write_text("0.5 0.3 0.1")
    """)  # fmt: skip
    write(tmp_path / "src" / "settings.txt", "depth=4\n")
    write(tmp_path / "src" / "scratch.tmp", "not for the job\n")
    write(tmp_path / "src" / ".amlignore", "*.tmp\n")
    spec = write(tmp_path / "job.yml", """
        code: ./src
        command: python train.py
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job.get("error")

    result = smalt("job", "download", "--name", name, "--all", "--download-path", str(tmp_path / "dl"))
    assert result.exit_code == 0, result.stderr
    artifacts = tmp_path / "dl" / "artifacts"
    assert (artifacts / "outputs" / "metrics.json").read_text() == '{"accuracy": 0.93}'
    assert (artifacts / "outputs" / "plots" / "loss.txt").read_text() == "0.5 0.3 0.1"
    [std_log] = artifacts.rglob("std_log.txt")
    assert "cwd has settings: depth=4" in std_log.read_text()
    assert "ignored file present: False" in std_log.read_text()


# -- failures, limits, cancel -----------------------------------------------------------------
def test_a_failing_command_fails_as_a_user_error_and_publishes_nothing(smalt: Smalt, tmp_path: Path,
                                                                       workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: >-
          echo partial > ${{outputs.model}}/model.txt &&
          echo "loading the data" && echo "ValueError: bad column 'y'" >&2 && exit 3
        outputs:
          model: {type: uri_folder, name: half-model, version: "1"}
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)

    assert job["status"] == "Failed"
    error = job["error"]
    assert error["cause"] == "user"
    assert "code 3" in error["message"]
    assert "ValueError: bad column 'y'" in error["log_tail"]
    assert "loading the data" in error["log_tail"]
    # No half-written output: nothing registered, nothing at the planned path, nothing to download.
    assert data_names(smalt) == []
    planned = job["outputs"]["model"]["path"]
    relative = planned.split("/paths/", 1)[1].strip("/")
    assert not (workspace_path / "blobs" / relative).exists()
    refused = smalt("job", "download", "--name", name, "--output-name", "model", "-p", str(tmp_path / "dl"))
    assert refused.exit_code == 1
    assert "Failed" in refused.stderr
    assert not list((tmp_path).glob("dl/**/model.txt"))


@pytest.mark.slow
def test_a_job_past_its_timeout_fails_promptly_and_its_process_tree_is_gone(smalt: Smalt, tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    spec = write(tmp_path / "job.yml", f"""
        command: {json.dumps(SLEEPER)}
        environment_variables:
          PID_FILE: {pid_file}
        limits:
          timeout: 1
    """)  # fmt: skip
    started = time.monotonic()
    name = submit(smalt, spec)
    sleeper = read_pid(pid_file)
    job = wait(smalt, name, timeout=30)
    took = time.monotonic() - started

    assert job["status"] == "Failed"
    assert "timeout" in job["error"]["message"] and "1 s" in job["error"]["message"]
    assert took < 8, f"a 1 s timeout took {took:.1f} s to end the job"
    assert gone(sleeper), "the job's sleep outlived the timeout"


@pytest.mark.slow
def test_cancel_stops_a_running_job_and_its_process_tree(smalt: Smalt, tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    spec = write(tmp_path / "job.yml", f"""
        command: {json.dumps(SLEEPER)}
        environment_variables:
          PID_FILE: {pid_file}
        outputs:
          model: {{type: uri_folder, name: canceled-model}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    sleeper = read_pid(pid_file)
    assert show(smalt, name)["status"] == "Running"

    canceled = smalt("job", "cancel", "--name", name, "-o", "json")
    assert canceled.exit_code == 0, canceled.stderr
    assert canceled.json()["status"] == "CancelRequested"
    job = wait(smalt, name, timeout=30)

    assert job["status"] == "Canceled"
    assert gone(sleeper), "the job's sleep outlived the cancel"
    assert data_names(smalt) == []
    # Canceling it again changes nothing.
    again = smalt("job", "cancel", "--name", name, "-o", "json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["status"] == "Canceled"


@pytest.mark.embedded_only  # the next local command reaps; a server reaps on its own clock
def test_a_killed_supervisor_is_reported_not_responding_by_the_next_command(smalt: Smalt, tmp_path: Path) -> None:
    name, sleeper = sleeping_job(smalt, tmp_path)
    try:
        # The job's shell is the sleep's parent, and the supervisor is the shell's parent (the
        # supervisor may be forked from the submitter, so its command line need not name it).
        shell = psutil.Process(sleeper).parent()
        assert shell is not None and shell.name() == "bash"
        supervisor = shell.parent()
        assert supervisor is not None and supervisor.pid != os.getpid()
        supervisor.send_signal(signal.SIGKILL)
        until(lambda: gone(supervisor.pid), "the supervisor to die", 10)

        job = show(smalt, name)
        assert job["status"] == "Failed"
        assert job["error"]["cause"] == "platform"
        assert "NotResponding" in job["error"]["message"]
        assert job["end_time"] is not None
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)


@pytest.mark.embedded_only  # the next local command reaps; a server reaps on its own clock
def test_the_processes_of_a_job_whose_supervisor_died_are_stopped(smalt: Smalt, tmp_path: Path) -> None:
    """A job reported Failed must not go on running: its compute slot is free again for the next job."""
    name, sleeper = sleeping_job(smalt, tmp_path)
    try:
        supervisor = psutil.Process(sleeper).parent().parent()  # type: ignore[union-attr]
        supervisor.send_signal(signal.SIGKILL)
        until(lambda: gone(supervisor.pid), "the supervisor to die", 10)
        assert show(smalt, name)["status"] == "Failed"

        until(lambda: gone(sleeper), "the orphaned job process to be stopped", 5)
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)


def test_jobs_on_a_single_instance_compute_run_one_after_the_other(smalt: Smalt, tmp_path: Path) -> None:
    compute = write(tmp_path / "compute.yml", """
        name: single
        type: amlcompute
        max_instances: 1
    """)  # fmt: skip
    assert smalt("compute", "create", "-f", str(compute)).exit_code == 0
    spec = write(tmp_path / "job.yml", """
        command: sleep 1
        compute: azureml:single
    """)  # fmt: skip
    first, second = submit(smalt, spec), submit(smalt, spec)
    jobs = [wait(smalt, first), wait(smalt, second)]

    assert [j["status"] for j in jobs] == ["Completed", "Completed"]
    (a_start, a_end), (b_start, b_end) = sorted(interval(j) for j in jobs)
    assert a_end <= b_start, f"the jobs overlapped: {a_start}..{a_end} and {b_start}..{b_end}"


@pytest.mark.slow
def test_a_job_canceled_while_queued_never_starts(smalt: Smalt, tmp_path: Path) -> None:
    pid_file, started = tmp_path / "sleep.pid", tmp_path / "started"
    assert smalt("compute", "create", "--name", "one", "--max-instances", "1").exit_code == 0
    blocker = write(tmp_path / "blocker.yml", f"""
        command: {json.dumps(SLEEPER)}
        compute: azureml:one
        environment_variables:
          PID_FILE: {pid_file}
    """)  # fmt: skip
    waiter = write(tmp_path / "waiter.yml", f"""
        command: touch {started}
        compute: azureml:one
    """)  # fmt: skip
    first = submit(smalt, blocker)  # `one` runs one job at a time: the second one waits
    sleeper = read_pid(pid_file)
    second = submit(smalt, waiter)
    try:
        assert show(smalt, second)["status"] in ("NotStarted", "Queued")
        assert smalt("job", "cancel", "--name", second).exit_code == 0
        job = wait(smalt, second, timeout=30)
        assert job["status"] == "Canceled"
        assert job.get("start_time") is None
    finally:
        smalt("job", "cancel", "--name", first)
    assert wait(smalt, first, timeout=30)["status"] == "Canceled"
    assert gone(sleeper)
    assert not started.exists(), "a job canceled while queued ran its command"


def test_jobs_on_a_two_instance_compute_run_at_the_same_time(smalt: Smalt, tmp_path: Path) -> None:
    compute = write(tmp_path / "compute.yml", """
        name: pair
        type: amlcompute
        max_instances: 2
    """)  # fmt: skip
    assert smalt("compute", "create", "-f", str(compute)).exit_code == 0
    # Each job announces itself, then waits (up to 20 s) for the other: both complete only together.
    meet = tmp_path / "meet"
    meet.mkdir()
    specs = []
    for me, other in (("a", "b"), ("b", "a")):
        specs.append(write(tmp_path / f"{me}.yml", f"""
            command: >-
              touch {meet / me}; for i in $(seq 200); do [ -e {meet / other} ] && exit 0; sleep 0.1; done; exit 1
            compute: azureml:pair
        """))  # fmt: skip
    names = [submit(smalt, spec) for spec in specs]
    assert [wait(smalt, n)["status"] for n in names] == ["Completed", "Completed"]


# -- following and finding jobs ---------------------------------------------------------------
def test_stream_follows_the_log_and_exits_0_only_when_the_job_completed(smalt: Smalt, tmp_path: Path) -> None:
    ok = write(tmp_path / "ok.yml", """
        command: echo step one && echo step two
    """)  # fmt: skip
    bad = write(tmp_path / "bad.yml", """
        command: echo about to fail && exit 3
    """)  # fmt: skip

    passed = smalt("job", "create", "-f", str(ok), "--stream")
    assert passed.exit_code == 0, passed.stderr
    assert "step one\nstep two" in passed.stdout
    assert "Completed" in passed.stderr

    failed = smalt("job", "create", "-f", str(bad), "--stream")
    assert failed.exit_code == 1
    assert "about to fail" in failed.stdout
    assert "Failed" in failed.stderr and "user error" in failed.stderr

    # Streaming a finished job replays its log with the same exit code.
    [failed_job] = smalt("job", "list", "--status", "Failed", "-o", "json").json()
    replay = smalt("job", "stream", "--name", failed_job["name"])
    assert replay.exit_code == 1
    assert "about to fail" in replay.stdout


def test_job_list_filters_by_status_and_experiment(smalt: Smalt, tmp_path: Path) -> None:
    def run(experiment: str, command: str) -> str:
        spec = write(tmp_path / f"{experiment}-{len(command)}.yml", f"""
            command: {command}
            experiment_name: {experiment}
        """)  # fmt: skip
        name = submit(smalt, spec)
        wait(smalt, name)
        return name

    a_ok, a_bad, b_ok = run("alpha", "echo ok"), run("alpha", "exit 1"), run("beta", "echo fine")

    def listed(*args: str) -> list[str]:
        result = smalt("job", "list", *args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return [j["name"] for j in result.json()]

    assert listed() == [b_ok, a_bad, a_ok]  # newest first
    assert listed("--status", "Completed") == [b_ok, a_ok]
    assert listed("--experiment", "alpha") == [a_bad, a_ok]
    assert listed("--status", "Completed", "--experiment", "alpha") == [a_ok]
    assert listed("--experiment", "gamma") == []


# -- distributed and environments -------------------------------------------------------------
def test_pytorch_distribution_runs_one_process_per_rank(smalt: Smalt, tmp_path: Path, workspace_path: Path) -> None:
    spec = write(tmp_path / "job.yml", """
        command: >-
          echo "RANK=$RANK LOCAL_RANK=$LOCAL_RANK WORLD_SIZE=$WORLD_SIZE"
          "MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT"
        distribution:
          type: pytorch
          process_count_per_instance: 2
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job.get("error")

    logs = workspace_path / "jobs" / name / "logs"
    assert sorted(p.name for p in logs.glob("std_log*.txt")) == ["std_log_process_0.txt", "std_log_process_1.txt"]
    seen = []
    for rank in (0, 1):
        line = log(workspace_path, name, f"std_log_process_{rank}.txt").strip()
        seen.append(dict(pair.split("=", 1) for pair in line.split()))
    assert [(s["RANK"], s["LOCAL_RANK"], s["WORLD_SIZE"]) for s in seen] == [("0", "0", "2"), ("1", "1", "2")]
    assert seen[0]["MASTER_ADDR"] and seen[0]["MASTER_ADDR"] == seen[1]["MASTER_ADDR"]
    assert seen[0]["MASTER_PORT"].isdigit() and seen[0]["MASTER_PORT"] == seen[1]["MASTER_PORT"]


def test_a_registered_image_environment_runs_in_the_base_environment_with_a_warning(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    environment = write(tmp_path / "env.yml", """
        name: slim
        version: "1"
        image: python:3.11-slim
    """)  # fmt: skip
    assert smalt("environment", "create", "-f", str(environment)).exit_code == 0
    spec = write(tmp_path / "job.yml", """
        command: python -c "import sys; print('python', sys.version_info[0])"
        environment: azureml:slim:1
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)

    assert job["status"] == "Completed", job.get("error")
    assert "python 3" in log(workspace_path, name)
    assert "image 'python:3.11-slim' is not run on local compute" in log(workspace_path, name, "build_log.txt")


@pytest.mark.slow
def test_a_conda_environment_is_built_once_and_reused_by_the_next_job(smalt: Smalt, tmp_path: Path,
                                                                      workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: python -c "import six, sys; print('six', six.__version__, 'in', sys.prefix)"
        environment:
          conda_file:
            name: tiny
            dependencies:
              - python
              - pip:
                  - six==1.16.0
    """)  # fmt: skip
    first = submit(smalt, spec)
    job = wait(smalt, first, timeout=180)
    assert job["status"] == "Completed", job.get("error")
    envs = workspace_path / "envs"
    [built] = [p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert f"six 1.16.0 in {built}" in log(workspace_path, first)
    assert "Building environment" in log(workspace_path, first, "build_log.txt")
    marker = (built / ".smalt-environment.json").read_text()

    second = submit(smalt, spec)
    job = wait(smalt, second, timeout=60)
    assert job["status"] == "Completed", job.get("error")
    assert f"six 1.16.0 in {built}" in log(workspace_path, second)
    build_log = log(workspace_path, second, "build_log.txt")
    assert "is ready" in build_log
    assert "Building environment" not in build_log and "$ uv" not in build_log
    assert [p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")] == [built]
    assert (built / ".smalt-environment.json").read_text() == marker  # not rebuilt
