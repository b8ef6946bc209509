"""``from smalt import dsl``: pipelines written as Python functions, as with Azure ML's SDK v2."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import pytest

from smalt import Input, MLClient, Output, PipelineJob, dsl, load_component
from smalt.entities import CommandComponent, JobStatus, LocalDatastore
from smalt.errors import InvalidSpecError
from smalt.services.tracking import TrackingService

STEP = """\
import argparse, pathlib
p = argparse.ArgumentParser()
p.add_argument("--inp"); p.add_argument("--out"); p.add_argument("--lr", default="")
a = p.parse_args()
before = pathlib.Path(a.inp, "data.txt").read_text() if a.inp else ""
pathlib.Path(a.out).mkdir(parents=True, exist_ok=True)
pathlib.Path(a.out, "data.txt").write_text(before + f"step lr={a.lr}\\n")
"""


@pytest.fixture
def components(tmp_path: Path) -> tuple[CommandComponent, CommandComponent]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "step.py").write_text(STEP)
    (tmp_path / "train.yml").write_text(textwrap.dedent(f"""\
        type: command
        name: train
        code: {src}
        inputs:
          data: {{type: uri_folder}}
          lr: {{type: number, default: 0.1}}
        outputs:
          model: {{type: uri_folder}}
        command: python step.py --inp ${{{{inputs.data}}}} --lr ${{{{inputs.lr}}}} --out ${{{{outputs.model}}}}
        """))  # fmt: skip
    prep = CommandComponent(name="prep", code=str(src), command="python step.py --out ${{outputs.out}}",
                            outputs={"out": Output(type="uri_folder")})  # fmt: skip
    train = load_component(tmp_path / "train.yml")
    assert isinstance(train, CommandComponent)
    return prep, train


def test_a_pipeline_function_becomes_a_pipeline_job(components: tuple[CommandComponent, CommandComponent]) -> None:
    prep, train = components

    @dsl.pipeline(default_compute="local", experiment_name="dsl")
    def training(lr: float = 0.1) -> dict[str, Any]:
        prepared = prep()
        trained = train(data=prepared.outputs.out, lr=lr)
        trained.outputs.model.name = "dsl-model"
        return {"model": trained.outputs.model}

    job = training(lr=0.5)
    assert isinstance(job, PipelineJob)
    assert list(job.jobs) == ["prepared", "trained"]  # named after their variables
    assert job.inputs == {"lr": 0.5}
    assert job.settings.default_compute == "local" and job.experiment_name == "dsl"
    trained = job.jobs["trained"].model_dump()
    assert trained["inputs"] == {"data": "${{parent.jobs.prepared.outputs.out}}", "lr": "${{parent.inputs.lr}}"}
    assert trained["outputs"] == {"model": "${{parent.outputs.model}}"}
    assert job.outputs["model"].name == "dsl-model"


def test_unnamed_steps_of_one_component_get_distinct_names(
    components: tuple[CommandComponent, CommandComponent],
) -> None:
    prep, _ = components

    @dsl.pipeline()
    def twice() -> None:
        prep()
        prep()

    assert list(twice().jobs) == ["prep", "prep_1"]


def test_calling_a_component_outside_a_pipeline_says_where_to_call_it(
    components: tuple[CommandComponent, CommandComponent],
) -> None:
    _, train = components
    with pytest.raises(TypeError, match="inside a function decorated with @dsl.pipeline"):
        train(lr=1.0)
    with pytest.raises(TypeError, match="has no input 'rate'"):

        @dsl.pipeline()
        def wrong() -> None:
            train(rate=1.0)

        wrong()


def test_a_dsl_pipeline_runs_nested_with_run_after_and_is_reused(
    ml_client: MLClient, components: tuple[CommandComponent, CommandComponent]
) -> None:
    prep, train = components

    @dsl.pipeline()
    def inner(data: Input, lr: float = 0.2) -> dict[str, Any]:
        fit = train(data=data, lr=lr)
        return {"model": fit.outputs.model}

    @dsl.pipeline(default_compute="local")
    def outer(lr: float = 0.3) -> dict[str, Any]:
        prepared = prep()
        nested = inner(data=prepared.outputs.out)
        trained = train(data=prepared.outputs.out, lr=lr)
        trained.run_after(nested)
        return {"model": trained.outputs.model}

    def run() -> list[Any]:
        submitted = ml_client.jobs.create_or_update(outer(lr=0.7))
        done = ml_client.jobs.stream(submitted.name or "", out=io.StringIO())
        assert done.status == JobStatus.COMPLETED, done.error
        return ml_client.jobs.list(parent_job_name=submitted.name)

    steps = {s.display_name: s for s in run()}
    assert set(steps) == {"prepared", "nested.fit", "trained"}
    # Steps are child runs of the pipeline's run, as MLflow's nested runs are.
    pipeline = steps["trained"].parent_job_name
    found = TrackingService(ml_client._context).search_runs(
        [0], filter_string=f"tags.mlflow.parentRunId = '{pipeline}'"
    )
    assert {r.info.run_name for r in found.items} == set(steps)
    assert steps["trained"].start_time >= steps["nested.fit"].end_time  # run_after
    assert steps["trained"].inputs["lr"] == 0.7 and steps["nested.fit"].inputs["lr"] == 0.2
    again = {s.display_name: s for s in run()}
    assert {k: s.reused_from for k, s in again.items()} == {k: s.name for k, s in steps.items()}


def test_a_bad_binding_in_a_dsl_pipeline_is_refused_before_anything_runs(
    ml_client: MLClient, components: tuple[CommandComponent, CommandComponent]
) -> None:
    _, train = components

    @dsl.pipeline()
    def missing_data() -> None:
        train(lr=0.1)

    with pytest.raises(InvalidSpecError, match="required input 'data' has no value"):
        ml_client.jobs.create_or_update(missing_data())
    assert ml_client.jobs.list() == []


def test_dsl_condition_skips_the_branch_not_taken_and_outputs_go_to_the_default_datastore(
    ml_client: MLClient, tmp_path: Path
) -> None:
    ml_client.datastores.create_or_update(LocalDatastore(name="second", path=str(tmp_path / "second")))
    check = CommandComponent(name="check", command="echo ${{inputs.flag}} > ${{outputs.ok}}",
                             inputs={"flag": Input(type="string")},
                             outputs={"ok": Output(type="boolean", is_control=True)})  # fmt: skip
    yes = CommandComponent(name="yes", command="echo yes > ${{outputs.out}}/said.txt",
                           outputs={"out": Output(type="uri_folder")})  # fmt: skip
    no = CommandComponent(name="no", command="echo no")

    @dsl.pipeline(default_datastore="azureml:second")
    def decide(flag: str = "True") -> None:
        checked = check(flag=flag)
        said_yes = yes()
        said_no = no()
        dsl.condition(checked.outputs.ok, true_block=said_yes, false_block=said_no)

    for flag, ran, skipped in (("True", "said_yes", "said_no"), ("False", "said_no", "said_yes")):
        submitted = ml_client.jobs.create_or_update(decide(flag=flag))
        done = ml_client.jobs.stream(submitted.name or "", out=io.StringIO())
        assert done.status == JobStatus.COMPLETED, done.error
        steps = {s.display_name: s for s in ml_client.jobs.list(parent_job_name=submitted.name)}
        assert (steps[ran].status, steps[skipped].status) == (JobStatus.COMPLETED, JobStatus.SKIPPED)
        assert steps[skipped].run_reason is not None and "skipped" in steps[skipped].run_reason
        if flag == "True":
            said = steps["said_yes"].outputs["out"].path
            assert said is not None and said.startswith("azureml://datastores/second/")
            assert (tmp_path / "second" / said.split("/paths/", 1)[1] / "said.txt").read_text() == "yes\n"


def test_steps_that_share_a_code_folder_snapshot_it_once(
    components: tuple[CommandComponent, CommandComponent], workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline is resolved as one submission: its steps' shared code folder is hashed and
    uploaded once, and every step records the same snapshot."""
    import smalt.artifacts.content as content
    from smalt.services.jobs import JobService
    from smalt.services.workspace import open_workspace

    prep, train = components
    hashed: list[Path] = []
    real_manifest = content.manifest

    def counting_manifest(folder: Path, *args: Any, **kwargs: Any) -> Any:
        hashed.append(Path(folder))
        return real_manifest(folder, *args, **kwargs)

    monkeypatch.setattr(content, "manifest", counting_manifest)

    @dsl.pipeline(default_compute="local", experiment_name="dsl-shared-code")
    def three() -> None:
        first = prep()
        second = train(data=first.outputs.out)
        train(data=second.outputs.model)

    context = open_workspace(workspace_path, create=True)
    try:
        jobs = JobService(context)
        submitted = jobs.create_or_update(three(), start=False)
        steps = jobs.list(parent_job_name=submitted.name)
    finally:
        context.close()
    assert len(hashed) == 1, hashed
    assert len(steps) == 3 and len({step.code for step in steps}) == 1


def test_a_command_called_inside_a_pipeline_is_a_step_mixed_with_loaded_components(
    ml_client: MLClient, components: tuple[CommandComponent, CommandComponent], tmp_path: Path
) -> None:
    """As in azure-ai-ml: ``command(...)`` with inputs and outputs, called like a component; the
    call's inputs override its own, and its compute and variables stay on the step."""
    from smalt import command

    prep, train = components
    src = tmp_path / "src"
    finish = command(
        code=str(src), command="python step.py --inp ${{inputs.model}} --lr ${{inputs.lr}} --out ${{outputs.report}}",
        inputs={"model": Input(type="uri_folder"), "lr": 0.5}, outputs={"report": Output(type="uri_folder")},
        compute="serverless", environment_variables={"STAGE": "finish"},
    )  # fmt: skip

    @dsl.pipeline(default_compute="local")
    def mixed() -> dict[str, Any]:
        prepared = prep()
        trained = train(data=prepared.outputs.out)
        reported = finish(model=trained.outputs.model)
        tuned = finish(model=trained.outputs.model, lr=0.9)
        return {"report": reported.outputs.report, "tuned": tuned.outputs.report}

    job = mixed()
    assert set(job.jobs) == {"prepared", "trained", "reported", "tuned"}
    reported = job.jobs["reported"]
    assert (reported.compute, reported.environment_variables) == ("local", {"STAGE": "finish"})  # type: ignore[union-attr]
    submitted = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.stream(submitted.name or "", out=io.StringIO())
    assert done.status == JobStatus.COMPLETED, done.error
    steps = {s.display_name: s for s in ml_client.jobs.list(parent_job_name=submitted.name)}
    assert (steps["reported"].inputs["lr"], steps["tuned"].inputs["lr"]) == (0.5, 0.9)
    folder = tmp_path / "report"
    ml_client.jobs.download(submitted.name or "", output_name="tuned", download_path=str(folder))
    assert [p.read_text() for p in folder.rglob("data.txt")] == ["step lr=\nstep lr=0.1\nstep lr=0.9\n"]
