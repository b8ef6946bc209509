"""Pipeline jobs as a user runs them: Azure ML pipelineJob YAML through the CLI (and the SDK), a real
driver process starting each step as a command job, real files passed from step to step."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import textwrap
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_jobs import SLEEPER, Smalt, finish, gone, read_pid, show, submit, until, wait, write

ACTIVE = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing", "CancelRequested")
HEADER = "$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\ntype: pipeline\n"


# -- helpers ----------------------------------------------------------------------------------
def pipeline(path: Path, body: str) -> Path:
    """A pipelineJob YAML file: the schema header (lines 1 and 2), then ``body`` from line 3."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + textwrap.dedent(body).lstrip("\n"))
    return path


def steps(smalt: Smalt, name: str) -> dict[str, dict[str, Any]]:
    """``smalt job list --parent NAME -o json``, keyed by each step's key in ``jobs``."""
    result = smalt("job", "list", "--parent", name, "-o", "json")
    assert result.exit_code == 0, result.stderr
    listed = result.json()
    assert isinstance(listed, list)
    for step in listed:
        for field in ("name", "display_name", "status", "reused_from", "run_reason"):
            assert field in step, (field, step)
    return {str(step["display_name"]): step for step in listed}


def run(smalt: Smalt, spec: Path, *extra: str, timeout: float = 60) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Submit a pipeline and wait for it to end; the pipeline and its steps as shown then."""
    name = submit(smalt, spec, *extra)
    job = wait(smalt, name, timeout=timeout)
    return job, steps(smalt, name)


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: str(step["status"]) for key, step in found.items()}


def times(step: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(step["start_time"]), datetime.fromisoformat(step["end_time"])


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def compute(smalt: Smalt, tmp_path: Path, name: str, max_instances: int) -> None:
    spec = write(tmp_path / f"{name}.yml", f"""
        name: {name}
        type: amlcompute
        max_instances: {max_instances}
    """)  # fmt: skip
    created = smalt("compute", "create", "-f", str(spec))
    assert created.exit_code == 0, created.stderr


def driver_pid(workspace: Path, name: str) -> int:
    """The pid of the process driving pipeline ``name``, as its record holds it (once it started)."""

    def recorded() -> int | None:
        with closing(sqlite3.connect(f"file:{workspace / 'metadata.db'}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT supervisor_pid FROM jobs WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row and row[0] else None

    pid: int = until(recorded, f"the driver of {name} to record its pid", 30)
    return pid


# -- data passing -----------------------------------------------------------------------------
def test_a_step_reads_what_the_previous_one_wrote_and_the_pipeline_output_is_the_last_steps(
    smalt: Smalt, tmp_path: Path
) -> None:
    spec = pipeline(tmp_path / "pipeline.yml", """
        display_name: passing
        experiment_name: pipes
        inputs:
          greeting: hello there
        outputs:
          final: {type: uri_folder, name: shouted, version: "1"}
        jobs:
          make:
            command: echo "${{inputs.word}}" > ${{outputs.words}}/words.txt
            inputs:
              word: ${{parent.inputs.greeting}}
            outputs:
              words: {type: uri_folder}
          shout:
            command: >-
              cat ${{inputs.words}}/words.txt && tr a-z A-Z < ${{inputs.words}}/words.txt > ${{outputs.loud}}/loud.txt
            inputs:
              words: ${{parent.jobs.make.outputs.words}}
            outputs:
              loud: ${{parent.outputs.final}}
    """)  # fmt: skip
    streamed = smalt("job", "create", "-f", str(spec), "--stream")
    assert streamed.exit_code == 0, streamed.stderr
    assert "Completed" in streamed.stderr
    # Every step's log, each line led by its step's name, and each step's end.
    assert "[shout] hello there\n" in streamed.stdout
    assert "[make] Completed" in streamed.stdout and "[shout] Completed" in streamed.stdout

    [job] = smalt("job", "list", "-o", "json").json()  # the steps are not top-level jobs
    assert (job["type"], job["status"], job["display_name"]) == ("pipeline", "Completed", "passing")
    found = steps(smalt, job["name"])
    assert list(found) == ["make", "shout"]
    assert statuses(found) == {"make": "Completed", "shout": "Completed"}
    for step in found.values():
        assert step["reused_from"] is None
        assert step["run_reason"].startswith("first run")
        assert step["experiment_name"] == "pipes"
    assert times(found["make"])[1] <= times(found["shout"])[0], "shout started before make ended"
    # The pipeline's output is the step output bound to it.
    shout = show(smalt, found["shout"]["name"])
    assert job["outputs"]["final"]["path"] == shout["outputs"]["loud"]["path"]

    downloaded = smalt("job", "download", "-n", job["name"], "--output-name", "final", "-p", str(tmp_path / "dl"))
    assert downloaded.exit_code == 0, downloaded.stderr
    assert (tmp_path / "dl" / "named-outputs" / "final" / "loud.txt").read_text() == "HELLO THERE\n"
    # Given a name and version, the pipeline output is registered as a data asset.
    asset = smalt("data", "show", "--name", "shouted", "--version", "1", "-o", "json")
    assert asset.exit_code == 0, asset.stderr
    assert asset.json()["path"] == shout["outputs"]["loud"]["path"]


def test_a_file_output_feeds_a_file_input_through_the_sdk(ml_client: Any, tmp_path: Path) -> None:
    from smalt import load_job

    spec = pipeline(tmp_path / "pipeline.yml", """
        inputs:
          rows: 4
        jobs:
          count:
            command: seq ${{inputs.n}} | wc -l > ${{outputs.total}}
            inputs:
              n: ${{parent.inputs.rows}}
            outputs:
              total: {type: uri_file}
          double:
            command: echo $(( $(cat ${{inputs.total}}) * 2 )) > ${{outputs.doubled}}/doubled.txt
            inputs:
              total: {type: uri_file, path: "${{parent.jobs.count.outputs.total}}"}
            outputs:
              doubled: {type: uri_folder}
    """)  # fmt: skip
    submitted = ml_client.jobs.create_or_update(load_job(spec))
    assert submitted.type == "pipeline"
    finished = finish(ml_client, submitted.name)
    assert finished.status == "Completed", finished.error

    children = {c.display_name: c for c in ml_client.jobs.list(parent_job_name=submitted.name)}
    assert {k: c.status for k, c in children.items()} == {"count": "Completed", "double": "Completed"}
    assert all(c.parent_job_name == submitted.name for c in children.values())
    ml_client.jobs.download(children["double"].name, download_path=tmp_path / "dl", output_name="doubled")
    assert (tmp_path / "dl" / "named-outputs" / "doubled" / "doubled.txt").read_text() == "8\n"


# -- scheduling -------------------------------------------------------------------------------
@pytest.mark.slow
def test_independent_steps_run_at_the_same_time_within_max_instances(smalt: Smalt, tmp_path: Path) -> None:
    compute(smalt, tmp_path, "pair", 2)
    spec = pipeline(tmp_path / "fanout.yml", """
        settings:
          default_compute: azureml:pair
        jobs:
          prepare:
            command: echo ready > ${{outputs.out}}/ready.txt
            outputs: {out: {type: uri_folder}}
          w1:
            command: cat ${{inputs.src}}/ready.txt && sleep 1
            inputs: {src: "${{parent.jobs.prepare.outputs.out}}"}
          w2:
            command: cat ${{inputs.src}}/ready.txt && sleep 1
            inputs: {src: "${{parent.jobs.prepare.outputs.out}}"}
          w3:
            command: cat ${{inputs.src}}/ready.txt && sleep 1
            inputs: {src: "${{parent.jobs.prepare.outputs.out}}"}
          join:
            command: echo joined
            run_after: [w1, w2, w3]
    """)  # fmt: skip
    job, found = run(smalt, spec)
    assert job["status"] == "Completed", job.get("error")
    assert set(statuses(found).values()) == {"Completed"}

    workers = [times(found[w]) for w in ("w1", "w2", "w3")]
    # Two of the three sleeps overlapped (they ran at the same time)...
    overlapping = [(a, b) for i, a in enumerate(workers) for b in workers[i + 1 :] if max(a[0], b[0]) < min(a[1], b[1])]
    assert overlapping, f"no two workers overlapped: {workers}"
    # ...but never all three: the compute has two instances.
    assert max(s for s, _ in workers) >= min(e for _, e in workers), f"three ran at once on two instances: {workers}"
    prepare_end = times(found["prepare"])[1]
    join_start = times(found["join"])[0]
    assert all(prepare_end <= s and e <= join_start for s, e in workers)


# -- reuse ------------------------------------------------------------------------------------
def test_an_unchanged_rerun_reuses_every_step_and_a_change_reruns_only_what_it_touches(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    trace = tmp_path / "ran.txt"  # each step that really runs appends its name
    write(tmp_path / "prep" / "prep.py", """
        import os, sys
        from pathlib import Path

        Path(sys.argv[2], "rows.txt").write_text("\\n".join(str(i) for i in range(int(sys.argv[1]))) + "\\n")
        with open(os.environ["TRACE"], "a") as trace:
            trace.write("prep\\n")
    """)  # fmt: skip
    write(tmp_path / "train" / "train.py", """
        import os, sys
        from pathlib import Path

        rows = Path(sys.argv[1], "rows.txt").read_text().split()
        Path(sys.argv[3], "model.txt").write_text(f"rows={len(rows)} lr={sys.argv[2]}\\n")
        with open(os.environ["TRACE"], "a") as trace:
            trace.write("train\\n")
    """)  # fmt: skip
    write(tmp_path / "train" / "helpers.py", "HELP = 1\n")
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        experiment_name: reuse
        inputs:
          rows: 3
          lr: 0.1
        outputs:
          model: {{type: uri_folder}}
        jobs:
          prep:
            code: ./prep
            command: python prep.py ${{{{inputs.rows}}}} ${{{{outputs.data}}}}
            environment_variables: {{TRACE: {trace}}}
            inputs: {{rows: "${{{{parent.inputs.rows}}}}"}}
            outputs: {{data: {{type: uri_folder}}}}
          train:
            code: ./train
            command: python train.py ${{{{inputs.data}}}} ${{{{inputs.lr}}}} ${{{{outputs.model}}}}
            environment_variables: {{TRACE: {trace}}}
            inputs:
              data: ${{{{parent.jobs.prep.outputs.data}}}}
              lr: ${{{{parent.inputs.lr}}}}
            outputs: {{model: "${{{{parent.outputs.model}}}}"}}
    """)  # fmt: skip

    def model_text(job: dict[str, Any]) -> str:
        folder = tmp_path / "dl" / job["name"]
        got = smalt("job", "download", "-n", job["name"], "--output-name", "model", "-p", str(folder))
        assert got.exit_code == 0, got.stderr
        return (folder / "named-outputs" / "model" / "model.txt").read_text()

    first, ran = run(smalt, spec)
    assert first["status"] == "Completed", first.get("error")
    assert lines(trace) == ["prep", "train"]
    assert [s["reused_from"] for s in ran.values()] == [None, None]
    assert model_text(first) == "rows=3 lr=0.1\n"

    # Nothing changed: every step is reused, nothing runs, and the outputs are the first run's.
    again, reused = run(smalt, spec)
    assert again["status"] == "Completed", again.get("error")
    assert lines(trace) == ["prep", "train"], "an unchanged step ran again"
    for key in ("prep", "train"):
        assert reused[key]["status"] == "Completed"
        assert reused[key]["reused_from"] == ran[key]["name"]
        assert reused[key]["run_reason"].startswith("reused"), reused[key]["run_reason"]
        assert ran[key]["name"] in reused[key]["run_reason"]
    assert again["outputs"]["model"]["path"] == first["outputs"]["model"]["path"]
    assert model_text(again) == "rows=3 lr=0.1\n"

    # Reuse needs the outputs it reuses: once they are gone, the step runs again and says so.
    lost = ran["train"]["name"]
    shutil.rmtree(workspace_path / "blobs" / "azureml" / lost)
    _, after_loss = run(smalt, spec)
    assert lines(trace)[2:] == ["train"]
    assert after_loss["prep"]["reused_from"] == ran["prep"]["name"]
    assert after_loss["train"]["run_reason"] == f"the outputs of the earlier run {lost} no longer exist"

    # One file of train's code changed: prep is reused, train runs and says which file.
    write(tmp_path / "train" / "helpers.py", "HELP = 2\n")
    coded, after_code = run(smalt, spec)
    assert coded["status"] == "Completed", coded.get("error")
    assert lines(trace)[3:] == ["train"]
    assert after_code["prep"]["reused_from"] == ran["prep"]["name"]
    assert after_code["train"]["reused_from"] is None
    assert after_code["train"]["run_reason"] == "code changed: helpers.py"

    # A literal input changed: only the step that reads it runs again.
    changed, after_input = run(smalt, spec, "--set", "inputs.lr=0.5")
    assert changed["status"] == "Completed", changed.get("error")
    assert lines(trace)[4:] == ["train"]
    assert after_input["prep"]["reused_from"] == ran["prep"]["name"]
    assert after_input["train"]["reused_from"] is None
    assert after_input["train"]["run_reason"].startswith("input lr changed: "), after_input["train"]["run_reason"]
    assert "0.5" in after_input["train"]["run_reason"]
    assert model_text(changed) == "rows=3 lr=0.5\n"

    # The first step's input changed: it runs, and so does the step reading its new output.
    _, after_rows = run(smalt, spec, "--set", "inputs.rows=5", "--set", "inputs.lr=0.5")
    assert lines(trace)[5:] == ["prep", "train"]
    assert after_rows["prep"]["run_reason"].startswith("input rows changed: "), after_rows["prep"]["run_reason"]
    assert after_rows["train"]["run_reason"].startswith("input data changed"), after_rows["train"]["run_reason"]


def test_force_rerun_and_a_nondeterministic_step_reuse_nothing(smalt: Smalt, tmp_path: Path) -> None:
    trace = tmp_path / "ran.txt"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        jobs:
          steady:
            command: echo steady >> {trace} && echo same > ${{{{outputs.out}}}}/same.txt
            outputs: {{out: {{type: uri_folder}}}}
          clock:
            command: echo clock >> {trace} && date +%s%N > ${{{{outputs.out}}}}/now.txt
            is_deterministic: false
            outputs: {{out: {{type: uri_folder}}}}
    """)  # fmt: skip
    first, ran = run(smalt, spec)
    assert first["status"] == "Completed", first.get("error")
    assert sorted(lines(trace)) == ["clock", "steady"]

    # A non-deterministic step runs every time; the other one is reused.
    _, rerun = run(smalt, spec)
    assert sorted(lines(trace)[2:]) == ["clock"]
    assert rerun["steady"]["reused_from"] == ran["steady"]["name"]
    assert rerun["clock"]["reused_from"] is None
    assert "is_deterministic" in rerun["clock"]["run_reason"]

    # force_rerun: every step runs, and says why.
    forced, found = run(smalt, spec, "--set", "settings.force_rerun=True")
    assert forced["status"] == "Completed", forced.get("error")
    assert forced["settings"]["force_rerun"] is True
    assert sorted(lines(trace)[3:]) == ["clock", "steady"]
    assert [s["reused_from"] for s in found.values()] == [None, None]
    assert found["steady"]["run_reason"] == "force_rerun is set"


# -- failures ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_failed_step_stops_the_pipeline_and_cancels_what_runs_and_what_waits(smalt: Smalt, tmp_path: Path) -> None:
    compute(smalt, tmp_path, "wide", 4)
    pid_file = tmp_path / "sleep.pid"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        settings:
          default_compute: azureml:wide
        jobs:
          long:
            command: {json.dumps(SLEEPER)}
            environment_variables: {{PID_FILE: {pid_file}}}
          bad:
            # Fails once `long` is surely running.
            command: >-
              while [ ! -s {pid_file} ]; do sleep 0.05; done;
              echo boom > ${{{{outputs.out}}}}/half.txt; echo "ValueError: bad rows" >&2; exit 3
            outputs: {{out: {{type: uri_folder}}}}
          after:
            command: echo never
            inputs: {{src: "${{{{parent.jobs.bad.outputs.out}}}}"}}
          last:
            command: echo never either
            run_after: [after]
    """)  # fmt: skip
    name = submit(smalt, spec)
    sleeper = read_pid(pid_file)
    try:
        job = wait(smalt, name, timeout=30)
        found = steps(smalt, name)
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)

    assert job["status"] == "Failed"
    assert "bad" in job["error"]["message"]
    assert statuses(found) == {"long": "Canceled", "bad": "Failed", "after": "Canceled", "last": "Canceled"}
    assert "code 3" in show(smalt, found["bad"]["name"])["error"]["message"]
    for key in ("after", "last"):
        assert found[key]["run_reason"].startswith("not run"), found[key]["run_reason"]
        assert found[key].get("start_time") is None
    until(lambda: gone(sleeper), "the canceled step's sleep to stop", 10)
    # The pipeline ended after every step it started.
    assert datetime.fromisoformat(job["end_time"]) >= times(found["long"])[1]


def test_continue_on_step_failure_lets_independent_steps_complete_and_a_resubmission_runs_what_failed(
    smalt: Smalt, tmp_path: Path
) -> None:
    compute(smalt, tmp_path, "wide", 4)
    failed_mark, fixed = tmp_path / "bad-failed", tmp_path / "fixed"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        settings:
          default_compute: azureml:wide
          continue_on_step_failure: true
        jobs:
          bad:
            command: touch {failed_mark}; [ -e {fixed} ] || exit 3; echo fine > ${{{{outputs.out}}}}/fine.txt
            outputs: {{out: {{type: uri_folder}}}}
          dependent:
            command: echo never
            inputs: {{src: "${{{{parent.jobs.bad.outputs.out}}}}"}}
          other:
            # Still running when `bad` fails.
            command: >-
              while [ ! -e {failed_mark} ]; do sleep 0.05; done; echo other > ${{{{outputs.out}}}}/other.txt
            outputs: {{out: {{type: uri_folder}}}}
          other_next:
            command: cat ${{{{inputs.src}}}}/other.txt
            inputs: {{src: "${{{{parent.jobs.other.outputs.out}}}}"}}
    """)  # fmt: skip
    job, found = run(smalt, spec, timeout=30)

    assert job["status"] == "Failed"
    assert job["error"]["failed_steps"] == ["bad"]
    assert statuses(found) == {"bad": "Failed", "dependent": "Canceled", "other": "Completed",
                               "other_next": "Completed"}  # fmt: skip
    assert found["dependent"]["run_reason"] == "not run: step bad did not complete"
    # Its steps' logs, replayed: the exit code says it failed.
    replay = smalt("job", "stream", "-n", job["name"])
    assert replay.exit_code == 1
    assert "[other_next] other\n" in replay.stdout and "[bad] Failed" in replay.stdout

    # What broke is fixed: the resubmission runs the failed step and what waited for it, no more.
    fixed.touch()
    again, rerun = run(smalt, spec, timeout=30)
    assert again["status"] == "Completed", again.get("error")
    assert rerun["other"]["reused_from"] == found["other"]["name"]
    assert rerun["other_next"]["reused_from"] == found["other_next"]["name"]
    assert (rerun["bad"]["reused_from"], rerun["dependent"]["reused_from"]) == (None, None)
    assert rerun["bad"]["run_reason"] == f"the earlier run {found['bad']['name']} did not complete (Failed)"


def test_a_step_with_retries_completes_on_a_later_try(smalt: Smalt, tmp_path: Path, workspace_path: Path) -> None:
    counters = tmp_path / "counters"  # outside the workspace: the tries share it
    counters.mkdir()
    count = 'n=$(( $(cat "$COUNTER" 2>/dev/null || echo 0) + 1 )); echo $n > "$COUNTER"; echo "try $n"'
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        settings:
          continue_on_step_failure: true
        jobs:
          flaky:
            command: {json.dumps(count + '; [ $n -ge 3 ] && echo "made it on try $n" > ${{outputs.out}}/result.txt')}
            environment_variables: {{COUNTER: {counters / "flaky"}}}
            retry_settings: {{max_retries: 2}}
            outputs: {{out: {{type: uri_folder}}}}
          reader:
            command: cat ${{{{inputs.src}}}}/result.txt
            inputs: {{src: "${{{{parent.jobs.flaky.outputs.out}}}}"}}
          hopeless:
            command: {json.dumps(count + "; exit 4")}
            environment_variables: {{COUNTER: {counters / "hopeless"}}}
            retry_settings: {{max_retries: 1}}
    """)  # fmt: skip
    job, found = run(smalt, spec, timeout=30)

    assert statuses(found) == {"flaky": "Completed", "reader": "Completed", "hopeless": "Failed"}
    assert job["status"] == "Failed" and job["error"]["failed_steps"] == ["hopeless"]
    assert (counters / "flaky").read_text() == "3\n"
    assert (counters / "hopeless").read_text() == "2\n", "max_retries: 1 is two tries in all"
    flaky_log = (workspace_path / "jobs" / found["flaky"]["name"] / "logs" / "std_log.txt").read_text()
    assert "try 1 of 3 failed" in flaky_log and "try 2 of 3 failed" in flaky_log
    reader_log = (workspace_path / "jobs" / found["reader"]["name"] / "logs" / "std_log.txt").read_text()
    assert reader_log == "made it on try 3\n"


@pytest.mark.slow
def test_cancel_stops_the_running_step_and_starts_no_other(smalt: Smalt, tmp_path: Path) -> None:
    pid_file, started = tmp_path / "sleep.pid", tmp_path / "later-started"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        jobs:
          first:
            command: echo one > ${{{{outputs.out}}}}/one.txt
            outputs: {{out: {{type: uri_folder}}}}
          long:
            command: {json.dumps(SLEEPER)}
            environment_variables: {{PID_FILE: {pid_file}}}
            inputs: {{src: "${{{{parent.jobs.first.outputs.out}}}}"}}
            outputs: {{out: {{type: uri_folder}}}}
          later:
            command: touch {started}
            inputs: {{src: "${{{{parent.jobs.long.outputs.out}}}}"}}
    """)  # fmt: skip
    name = submit(smalt, spec)
    sleeper = read_pid(pid_file)
    try:
        canceled = smalt("job", "cancel", "-n", name, "-o", "json")
        assert canceled.exit_code == 0, canceled.stderr
        assert canceled.json()["status"] == "CancelRequested"
        job = wait(smalt, name, timeout=30)
        found = steps(smalt, name)
    finally:
        if not gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)

    assert job["status"] == "Canceled"
    assert statuses(found) == {"first": "Completed", "long": "Canceled", "later": "Canceled"}
    assert not [k for k, s in statuses(found).items() if s in ACTIVE]
    assert found["later"]["run_reason"].startswith("not run"), found["later"]["run_reason"]
    until(lambda: gone(sleeper), "the canceled step's sleep to stop", 10)
    assert not started.exists(), "a step started after its pipeline was canceled"


def three_steps(tmp_path: Path, trace: Path, running: Path, release: Path) -> Path:
    """a -> b -> c; b runs until ``release`` exists, its shell's pid in ``running``."""
    return pipeline(tmp_path / "pipeline.yml", f"""
        jobs:
          a:
            command: echo a >> {trace}; echo a > ${{{{outputs.out}}}}/a.txt
            outputs: {{out: {{type: uri_folder}}}}
          b:
            command: >-
              echo b >> {trace}; echo $$ > {running};
              while [ ! -e {release} ]; do sleep 0.05; done; cat ${{{{inputs.src}}}}/a.txt > ${{{{outputs.out}}}}/b.txt
            inputs: {{src: "${{{{parent.jobs.a.outputs.out}}}}"}}
            outputs: {{out: {{type: uri_folder}}}}
          c:
            command: echo c >> {trace}; cat ${{{{inputs.src}}}}/b.txt
            inputs: {{src: "${{{{parent.jobs.b.outputs.out}}}}"}}
    """)  # fmt: skip


@pytest.mark.embedded_only  # the next local command reaps; a server reaps on its own clock
def test_a_killed_driver_is_replaced_and_the_pipeline_completes(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    trace, running, release = tmp_path / "ran.txt", tmp_path / "middle.pid", tmp_path / "release"
    spec = three_steps(tmp_path, trace, running, release)
    name = submit(smalt, spec)
    read_pid(running)
    driver = driver_pid(workspace_path, name)
    assert driver != os.getpid()
    assert (workspace_path / "jobs" / name / "driver.log").exists()
    os.kill(driver, signal.SIGKILL)
    until(lambda: gone(driver), "the driver to die", 10)

    # The next command finds the driver gone and gives the pipeline a new one, which carries on
    # from its steps' statuses: nothing is failed for a crash of smalt's own.
    job = show(smalt, name)
    assert job["status"] == "Running", job.get("error")
    found = steps(smalt, name)
    assert found["a"]["status"] == "Completed"
    assert found["b"]["status"] in ("Running", "Completed")  # its own supervisor never stopped
    assert driver_pid(workspace_path, name) != driver
    release.touch()
    until(lambda: show(smalt, name)["status"] == "Completed", "the pipeline to complete under its new driver", 30)
    found = steps(smalt, name)
    assert {step: found[step]["status"] for step in "abc"} == dict.fromkeys("abc", "Completed")
    assert lines(trace) == ["a", "b", "c"]

    # Resubmitted, it reuses every step that completed.
    again, rerun = run(smalt, spec, timeout=30)
    assert again["status"] == "Completed", again.get("error")
    assert [rerun[step]["reused_from"] for step in "abc"] == [found[step]["name"] for step in "abc"]
    assert lines(trace) == ["a", "b", "c"]


# -- nesting and conditions -------------------------------------------------------------------
def test_a_nested_pipeline_component_runs_its_steps_and_its_output_feeds_the_outer_pipeline(
    smalt: Smalt, ml_client: Any, tmp_path: Path
) -> None:
    from smalt import load_job

    write(tmp_path / "inner.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
        type: pipeline
        name: inner
        inputs:
          x: {type: string}
        outputs:
          result: {type: uri_folder}
        jobs:
          hello:
            command: echo "inner got ${{inputs.v}}" > ${{outputs.out}}/inner.txt
            inputs: {v: "${{parent.inputs.x}}"}
            outputs: {out: {type: uri_folder}}
          polish:
            command: (cat ${{inputs.src}}/inner.txt; echo polished) > ${{outputs.out}}/inner.txt
            inputs: {src: "${{parent.jobs.hello.outputs.out}}"}
            outputs: {out: "${{parent.outputs.result}}"}
    """)  # fmt: skip
    spec = pipeline(tmp_path / "outer.yml", """
        display_name: outer
        inputs:
          word: nested
        outputs:
          final: {type: uri_folder}
        jobs:
          inside:
            type: pipeline
            component: ./inner.yml
            inputs: {x: "${{parent.inputs.word}}"}
          read:
            command: (cat ${{inputs.src}}/inner.txt; echo outer) > ${{outputs.out}}/outer.txt
            inputs: {src: "${{parent.jobs.inside.outputs.result}}"}
            outputs: {out: "${{parent.outputs.final}}"}
    """)  # fmt: skip
    submitted = ml_client.jobs.create_or_update(load_job(spec))
    finished = finish(ml_client, submitted.name)
    assert finished.status == "Completed", finished.error

    found = steps(smalt, submitted.name)
    assert list(found) == ["inside.hello", "inside.polish", "read"]
    assert set(statuses(found).values()) == {"Completed"}
    got = smalt("job", "download", "-n", submitted.name, "--output-name", "final", "-p", str(tmp_path / "dl"))
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "dl" / "named-outputs" / "final" / "outer.txt").read_text() == (
        "inner got nested\npolished\nouter\n"
    )
    # `job show` draws the nested pipeline as a branch of the tree.
    tree = smalt("job", "show", "-n", submitted.name, "-o", "table")
    assert tree.exit_code == 0, tree.stderr
    assert "inside (pipeline)" in tree.stdout
    assert "inside.polish" in tree.stdout and "Completed" in tree.stdout


def test_both_branches_of_a_condition_and_what_depends_only_on_a_skipped_step(smalt: Smalt, tmp_path: Path) -> None:
    trace = tmp_path / "ran.txt"
    spec = pipeline(tmp_path / "pipeline.yml", f"""
        inputs:
          score: 9
        jobs:
          check:
            command: >-
              if [ ${{{{inputs.score}}}} -gt 5 ]; then echo True > ${{{{outputs.good}}}};
              else echo False > ${{{{outputs.good}}}}; fi
            inputs: {{score: "${{{{parent.inputs.score}}}}"}}
            outputs:
              good: {{type: boolean, is_control: true}}
          branch:
            type: if_else
            condition: ${{{{parent.jobs.check.outputs.good}}}}
            true_block: ${{{{parent.jobs.deploy}}}}
            false_block: ${{{{parent.jobs.retrain}}}}
          deploy:
            command: echo deploy >> {trace}; echo deployed > ${{{{outputs.out}}}}/d.txt
            outputs: {{out: {{type: uri_folder}}}}
          announce:
            command: echo announce >> {trace}; cat ${{{{inputs.src}}}}/d.txt
            inputs: {{src: "${{{{parent.jobs.deploy.outputs.out}}}}"}}
          retrain:
            command: echo retrain >> {trace}; echo retrained > ${{{{outputs.out}}}}/r.txt
            outputs: {{out: {{type: uri_folder}}}}
          evaluate:
            command: echo evaluate >> {trace}; cat ${{{{inputs.src}}}}/r.txt
            inputs: {{src: "${{{{parent.jobs.retrain.outputs.out}}}}"}}
    """)  # fmt: skip
    good, taken = run(smalt, spec)
    assert good["status"] == "Completed", good.get("error")
    assert statuses(taken) == {"check": "Completed", "deploy": "Completed", "announce": "Completed",
                               "retrain": "Skipped", "evaluate": "Skipped"}  # fmt: skip
    assert sorted(lines(trace)) == ["announce", "deploy"]
    assert "skipped" in taken["retrain"]["run_reason"] and "skipped" in taken["evaluate"]["run_reason"]

    bad, other = run(smalt, spec, "--set", "inputs.score=2")
    assert bad["status"] == "Completed", bad.get("error")
    assert statuses(other) == {"check": "Completed", "deploy": "Skipped", "announce": "Skipped",
                               "retrain": "Completed", "evaluate": "Completed"}  # fmt: skip
    assert sorted(lines(trace)[2:]) == ["evaluate", "retrain"]


# -- validation -------------------------------------------------------------------------------
def test_validate_reports_every_problem_with_its_line_and_create_records_nothing(smalt: Smalt, tmp_path: Path) -> None:
    write(tmp_path / "typed.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        type: command
        name: typed
        inputs:
          count: {type: integer}
        command: echo ${{inputs.count}}
    """)  # fmt: skip
    bad = pipeline(tmp_path / "bad.yml", """
        jobs:
          a:
            command: echo ${{inputs.x}} > ${{outputs.out}}/a.txt
            inputs: {x: "${{parent.jobs.b.outputs.out}}"}
            outputs: {out: {type: uri_folder}}
          b:
            command: echo ${{inputs.x}} > ${{outputs.out}}/b.txt
            inputs: {x: "${{parent.jobs.a.outputs.out}}"}
            outputs: {out: {type: uri_folder}}
          ghostly:
            command: echo ${{inputs.x}}
            inputs: {x: "${{parent.jobs.ghost.outputs.out}}"}
          portless:
            command: echo ${{inputs.x}}
            inputs: {x: "${{parent.jobs.a.outputs.nope}}"}
          mistyped:
            component: ./typed.yml
            inputs: {count: "${{parent.jobs.a.outputs.out}}"}
          missing:
            component: ./typed.yml
          homeless:
            command: echo hi
            compute: azureml:nowhere
    """)  # fmt: skip
    checked = smalt("job", "validate", "-f", str(bad))
    assert checked.exit_code != 0
    said = checked.stderr
    expected = {  # a problem: its line in bad.yml and words it must hold
        "cycle": (4, ["a -> b -> a", "cycle"]),
        "unknown step": (14, ["jobs.ghostly.inputs.x", "no step 'ghost'"]),
        "unknown port": (17, ["jobs.portless.inputs.x", "no output 'nope'"]),
        "type mismatch": (20, ["jobs.mistyped.inputs.count", "integer", "uri_folder"]),
        "missing input": (21, ["jobs.missing", "required input 'count'"]),
        "unknown compute": (25, ["jobs.homeless.compute", "compute 'nowhere' does not exist"]),
    }
    problem_lines = [line for line in said.splitlines() if "bad.yml:" in line]
    assert len(problem_lines) == len(expected), said
    for what, (line, words) in expected.items():
        matching = [p for p in problem_lines if f"bad.yml:{line}:" in p and all(w in p for w in words)]
        assert matching, f"{what}: no problem at bad.yml:{line} with {words} in:\n{said}"

    created = smalt("job", "create", "-f", str(bad))
    assert created.exit_code != 0
    assert "nothing was queued" in created.stderr
    assert smalt("job", "list", "-o", "json").json() == []

    good = pipeline(tmp_path / "good.yml", """
        jobs:
          one: {command: echo one}
          two: {command: echo two, run_after: [one]}
    """)  # fmt: skip
    valid = smalt("job", "validate", "-f", str(good))
    assert valid.exit_code == 0, valid.stderr
    assert "a pipeline of 2 steps" in valid.stdout
    assert smalt("job", "list", "-o", "json").json() == []
