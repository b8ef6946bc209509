"""specs.pipeline: pipeline YAML planned into steps; every problem of the graph at once, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.specs.test_specs_loader import line_of, write

from smalt import specs
from smalt.entities import CommandComponent, PipelineJob
from smalt.errors import InvalidSpecError, NotFoundError, SpecProblem
from smalt.specs.pipeline import Plan, Upstream, plan


def registered(ref: str) -> CommandComponent:
    if ref == "azureml:score:1":
        return CommandComponent(
            name="score", command="echo ${{inputs.model}}", inputs={"model": {"type": "uri_folder"}}
        )
    raise NotFoundError(f"Component '{ref}' not found.")


def planned(path: Path, computes: tuple[str, ...] = ("local",)) -> Plan:
    job = specs.load("job", path)
    assert isinstance(job, PipelineJob)
    return plan(job, registered, computes)


def problems(path: Path, computes: tuple[str, ...] = ("local",)) -> list[SpecProblem]:
    with pytest.raises(InvalidSpecError) as info:
        planned(path, computes)
    return info.value.problems


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "src", "train.py", "print('train')\n")
    write(
        tmp_path,
        "train.yml",
        """
        type: command
        name: train
        code: ./src
        inputs:
          data: {type: uri_folder}
          lr: {type: number, default: 0.1}
          note: {type: string, optional: true}
        outputs:
          model: {type: uri_folder}
        command: >-
          python train.py --data ${{inputs.data}} --lr ${{inputs.lr}}
          $[[--note ${{inputs.note}}]] --out ${{outputs.model}}
        """,
    )
    return tmp_path


def test_steps_bindings_and_outputs_are_planned(folder: Path) -> None:
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        inputs:
          lr: 0.5
        outputs:
          final: {type: uri_folder, name: trained-model, version: "3"}
        jobs:
          prep:
            command: echo prep > ${{outputs.out}}/x
            outputs:
              out: {type: uri_folder}
          train:
            component: ./train.yml
            inputs:
              data: ${{parent.jobs.prep.outputs.out}}
              lr: ${{parent.inputs.lr}}
            outputs:
              model: ${{parent.outputs.final}}
          score:
            component: azureml:score:1
            inputs:
              model: ${{parent.jobs.train.outputs.model}}
        """,
    )
    result = planned(path)
    assert list(result.steps) == ["prep", "train", "score"]
    train = result.steps["train"]
    assert train.inputs == {"data": Upstream("prep", "out"), "lr": 0.5, "note": None}
    assert train.after == {"prep"} and result.steps["score"].after == {"train"}
    assert train.publishes == {"model": "final"}
    # The pipeline output's settings (register as trained-model:3) are the step output's.
    assert (train.outputs["model"].name, train.outputs["model"].version) == ("trained-model", "3")
    assert result.outputs == {"final": Upstream("train", "model")}
    assert train.component.code == str(folder / "src")


def test_every_problem_of_the_graph_is_reported_at_once_with_its_line(folder: Path) -> None:
    path = write(
        folder,
        "bad.yml",
        """
        type: pipeline
        jobs:
          a:
            command: echo ${{inputs.x}}
            inputs:
              x: ${{parent.jobs.b.outputs.o}}
            outputs:
              o: {type: uri_folder}
          b:
            command: echo ${{inputs.y}}
            compute: gpu
            inputs:
              y: ${{parent.jobs.a.outputs.o}}
              z: ${{parent.jobs.nope.outputs.o}}
              w: ${{parent.jobs.a.outputs.missing}}
            outputs:
              o: {type: uri_folder}
          c:
            component: ./train.yml
            inputs:
              data: 3
              foo: 1
          d:
            component: ./train.yml
          e:
            component: azureml:absent:1
        """,
    )
    found = {(p.field, p.line): p.message for p in problems(path)}
    assert all(p.file == str(path) for p in problems(path))
    expected = {
        ("jobs.b.compute", line_of(path, "compute: gpu")): "compute 'gpu' does not exist",
        ("jobs.b.inputs.z", line_of(path, "z: ")): "there is no step 'nope'",
        ("jobs.b.inputs.w", line_of(path, "w: ")): "step 'a' has no output 'missing'",
        ("jobs.c.inputs.data", line_of(path, "data: 3")): "is a uri_folder and needs a path",
        ("jobs.c.inputs.foo", line_of(path, "foo: 1")): "the component has no input 'foo'",
        ("jobs.d.inputs", line_of(path, "  d:")): "required input 'data' has no value",
        ("jobs.e.component", line_of(path, "azureml:absent")): "not found",
        ("jobs.a", line_of(path, "  a:")): "steps a -> b -> a form a cycle",
    }
    for where, message in expected.items():
        assert where in found, (where, found)
        assert message in found[where]


def test_type_mismatch_between_an_output_and_an_input_is_found(folder: Path) -> None:
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        jobs:
          check:
            command: echo True > ${{outputs.ok}}
            outputs:
              ok: {type: boolean, is_control: true}
          train:
            component: ./train.yml
            inputs:
              data: ${{parent.jobs.check.outputs.ok}}
        """,
    )
    (problem,) = problems(path)
    assert problem.field == "jobs.train.inputs.data"
    assert "input 'data' is a uri_folder but check.outputs.ok is a boolean" in problem.message


def test_run_after_and_nested_pipelines_unfold_into_steps(folder: Path) -> None:
    write(
        folder,
        "inner.yml",
        """
        type: pipeline
        name: inner
        inputs:
          data: {type: uri_folder}
        outputs:
          model: {type: uri_folder}
        jobs:
          fit:
            component: ./train.yml
            inputs:
              data: ${{parent.inputs.data}}
              lr: 0.2
            outputs:
              model: ${{parent.outputs.model}}
        """,
    )
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        jobs:
          prep:
            command: echo > ${{outputs.out}}/x
            outputs:
              out: {type: uri_folder}
          nested:
            type: pipeline
            component: ./inner.yml
            inputs:
              data: ${{parent.jobs.prep.outputs.out}}
          report:
            command: echo ${{inputs.m}}
            inputs:
              m: ${{parent.jobs.nested.outputs.model}}
          last:
            command: echo done
            run_after: [report]
        """,
    )
    result = planned(path)
    assert list(result.steps) == ["prep", "nested.fit", "report", "last"]
    assert result.steps["nested.fit"].inputs["data"] == Upstream("prep", "out")
    assert result.steps["nested.fit"].inputs["lr"] == 0.2
    assert result.steps["report"].inputs["m"] == Upstream("nested.fit", "model")
    assert result.steps["last"].after == {"report"}


def test_if_else_guards_the_steps_of_each_block(folder: Path) -> None:
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        jobs:
          check:
            command: echo True > ${{outputs.ok}}
            outputs:
              ok: {type: boolean, is_control: true}
          yes:
            command: echo yes
          no:
            command: echo no
          branch:
            type: if_else
            condition: ${{parent.jobs.check.outputs.ok}}
            true_block: ${{parent.jobs.yes}}
            false_block: ["${{parent.jobs.no}}"]
        """,
    )
    result = planned(path)
    assert result.steps["yes"].when == [(Upstream("check", "ok"), True)]
    assert result.steps["no"].when == [(Upstream("check", "ok"), False)]
    assert result.steps["yes"].after == {"check"}


def test_a_condition_on_a_non_boolean_output_is_refused(folder: Path) -> None:
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        jobs:
          prep:
            command: echo > ${{outputs.out}}/x
            outputs:
              out: {type: uri_folder}
          yes:
            command: echo yes
          branch:
            type: if_else
            condition: ${{parent.jobs.prep.outputs.out}}
            true_block: ${{parent.jobs.yes}}
        """,
    )
    (problem,) = problems(path)
    assert (problem.field, problem.line) == ("jobs.branch.condition", line_of(path, "condition:"))
    assert "must be a boolean output" in problem.message


def test_a_missing_component_file_is_reported_where_it_is_named(folder: Path) -> None:
    path = write(
        folder,
        "p.yml",
        """
        type: pipeline
        jobs:
          train:
            component: ./nope.yml
        """,
    )
    with pytest.raises(InvalidSpecError) as info:
        specs.load("job", path)
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("jobs.train.component", line_of(path, "nope.yml"))
    assert "does not exist" in problem.message


def test_a_problem_inside_a_component_file_names_that_file(folder: Path) -> None:
    component = write(folder, "broken.yml", "type: command\nname: broken\ncomand: echo\n")
    path = write(folder, "p.yml", "type: pipeline\njobs:\n  a:\n    component: ./broken.yml\n")
    with pytest.raises(InvalidSpecError) as info:
        specs.load("job", path)
    files = {p.file for p in info.value.problems}
    assert files == {str(component)}
