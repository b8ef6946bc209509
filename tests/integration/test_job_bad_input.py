"""Jobs that cannot run: `smalt job create` refuses them with one clear message and exit 1, before
anything is queued, uploaded for the job or started (`smalt job list` stays empty)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Smalt = Callable[..., Any]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def refused(smalt: Smalt, spec: Path, workspace: Path) -> str:
    """Submit ``spec``, which must be refused as a known error; its stderr. Nothing may be queued."""
    result = smalt("job", "create", "-f", str(spec))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
    listed = smalt("job", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert listed.json() == [], "a refused job was recorded"
    jobs = workspace / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir()), "a refused job was started"
    return str(result.stderr)


def test_a_missing_code_folder_names_the_file_line_and_field(smalt: Smalt, tmp_path: Path,
                                                             workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: python train.py
        code: ./src-that-is-not-there
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert f"{spec}:2: code: path '{tmp_path / 'src-that-is-not-there'}' does not exist" in err


def test_a_binding_to_an_undeclared_input_or_output_is_refused(smalt: Smalt, tmp_path: Path,
                                                               workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: python train.py --data ${{inputs.x}} --out ${{outputs.y}}
        inputs:
          rate: 0.1
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert "the command uses ${{inputs.x}} but there is no input 'x'" in err
    assert "the command uses ${{outputs.y}} but there is no output 'y'" in err


def test_a_problem_found_after_loading_still_names_the_file(smalt: Smalt, tmp_path: Path,
                                                            workspace_path: Path) -> None:  # fmt: skip
    """Like every other YAML error, a job's binding problem says which file (and line) to fix."""
    spec = write(tmp_path / "job.yml", """
        command: echo ${{inputs.x}}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert f"{spec}:1: command:" in err
    assert "<input>" not in err


def test_a_required_data_input_without_a_path_is_refused(smalt: Smalt, tmp_path: Path,
                                                         workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: cat ${{inputs.data}}
        inputs:
          data:
            type: uri_file
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert "inputs.data.path: required input has no path" in err


def test_a_data_input_whose_local_path_is_missing_is_refused(smalt: Smalt, tmp_path: Path,
                                                             workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: cat ${{inputs.data}}
        inputs:
          data:
            type: uri_file
            path: ./missing.csv
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert f"{spec}:5: inputs.data.path: path '{tmp_path / 'missing.csv'}' does not exist" in err


def test_a_literal_input_of_the_wrong_type_is_refused(smalt: Smalt, tmp_path: Path, workspace_path: Path) -> None:
    spec = write(tmp_path / "job.yml", """
        command: python train.py --epochs ${{inputs.epochs}}
        inputs:
          epochs: {type: integer, default: "a"}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert f"{spec}:3: inputs.epochs.default: default 'a' is not of type integer" in err


def test_an_optional_input_without_a_value_outside_an_optional_segment_is_refused(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    """Rendering would leave nothing to put in the command: the user must hear it now, not as a
    platform failure of a queued job."""
    spec = write(tmp_path / "job.yml", """
        command: python train.py --limit ${{inputs.limit}}
        inputs:
          limit: {type: integer, optional: true}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert "inputs.limit" in err and "$[[" in err


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("environment", "azureml:nope:1", "Environment 'nope:1' not found."),
        ("compute", "azureml:nope", "Compute 'nope' not found."),
        ("compute", "nope", "Compute 'nope' not found."),
    ],
    ids=["environment", "compute-ref", "compute-name"],
)
def test_an_unknown_environment_or_compute_is_refused_with_a_hint(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, field: str, value: str, message: str
) -> None:
    spec = write(tmp_path / "job.yml", f"""
        command: echo hi
        {field}: {value}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert message in err
    assert "Hint: smalt" in err


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("azureml:nodata:1", "Data asset 'nodata:1' not found."),
        ("azureml:nodata@latest", "Data asset 'nodata' not found."),
        ("azureml://datastores/nostore/paths/a.csv", "Datastore 'nostore' not found."),
    ],
    ids=["asset-version", "asset-latest", "datastore"],
)
def test_an_unknown_data_reference_is_refused(
    smalt: Smalt, tmp_path: Path, workspace_path: Path, path: str, message: str
) -> None:
    spec = write(tmp_path / "job.yml", f"""
        command: cat ${{{{inputs.data}}}}
        inputs:
          data: {{type: uri_file, path: "{path}"}}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert message in err


def test_every_unresolvable_reference_is_reported_at_once(smalt: Smalt, tmp_path: Path,
                                                          workspace_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: cat ${{inputs.data}}
        compute: azureml:nope
        environment: azureml:noenv:1
        inputs:
          data: {type: uri_file, path: "azureml:nodata:1"}
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert "'nope'" in err and "'noenv" in err and "'nodata" in err


def test_a_job_name_in_use_is_refused_and_the_first_job_is_untouched(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    spec = write(tmp_path / "job.yml", """
        command: echo first
        display_name: first
    """)  # fmt: skip
    created = smalt("job", "create", "-f", str(spec), "--name", "my_job", "-o", "json")
    assert created.exit_code == 0, created.stderr

    again = smalt("job", "create", "-f", str(spec), "--name", "my_job")

    assert again.exit_code == 1
    assert "Job 'my_job' already exists." in again.stderr
    listed = smalt("job", "list", "-o", "json").json()
    assert [(j["name"], j["display_name"]) for j in listed] == [("my_job", "first")]


def test_the_sdk_refuses_the_same_way(ml_client: Any, workspace_path: Path) -> None:
    from smalt import Input, command
    from smalt.errors import InvalidSpecError

    with pytest.raises(InvalidSpecError, match="Compute 'nope' not found"):
        ml_client.jobs.create_or_update(command(command="echo hi", compute="nope"))
    with pytest.raises(InvalidSpecError) as caught:
        ml_client.jobs.create_or_update(
            command(command="cat ${{inputs.data}} ${{inputs.other}}", inputs={"data": Input(type="uri_file")})
        )
    # The binding is refused as the job is built; a required input with no path when it is submitted.
    assert [p.field for p in caught.value.problems] == ["command"]
    with pytest.raises(InvalidSpecError) as caught:
        ml_client.jobs.create_or_update(
            command(command="cat ${{inputs.data}}", inputs={"data": Input(type="uri_file")})
        )
    assert [p.field for p in caught.value.problems] == ["inputs.data.path"]
    assert ml_client.jobs.list() == []
    assert not (workspace_path / "jobs").exists() or not any((workspace_path / "jobs").iterdir())


def test_a_reference_that_does_not_resolve_names_the_file_and_line(smalt: Smalt, tmp_path: Path,
                                                                   workspace_path: Path) -> None:  # fmt: skip
    """Found while resolving (a compute, an environment, a data asset): the file and line, never
    an anonymous field."""
    spec = write(tmp_path / "job.yml", """
        command: cat ${{inputs.data}}
        compute: azureml:gpu-cluster
        environment: azureml:tools:4
        inputs:
          data:
            path: azureml:iris:1
    """)  # fmt: skip

    err = refused(smalt, spec, workspace_path)

    assert f"{spec}:2: compute: Compute 'gpu-cluster' not found." in err
    assert f"{spec}:3: environment: Environment 'tools:4' not found." in err
    assert f"{spec}:6: inputs.data.path: Data asset 'iris:1' not found." in err


def test_a_step_setting_bound_to_a_pipeline_input_takes_its_value(smalt: Smalt, tmp_path: Path) -> None:
    """`compute: ${{parent.inputs.train_compute}}`, as Azure ML binds a node's settings."""
    spec = write(tmp_path / "pipe.yml", """
        type: pipeline
        inputs:
          train_compute: cpu-cluster
          workers: 2
        jobs:
          train:
            command: echo $RANK_COUNT
            compute: ${{parent.inputs.train_compute}}
            environment_variables:
              RANK_COUNT: ${{parent.inputs.workers}}
            resources:
              instance_count: ${{parent.inputs.workers}}
    """)  # fmt: skip
    refused_ = smalt("job", "validate", "-f", str(spec))
    assert refused_.exit_code == 1
    assert f"{spec}:8: jobs.train.compute: compute 'cpu-cluster' does not exist" in refused_.stderr
    assert smalt("compute", "create", "--name", "cpu-cluster", "--type", "amlcompute").exit_code == 0
    accepted = smalt("job", "validate", "-f", str(spec))
    assert accepted.exit_code == 0, accepted.stderr
    unbound = write(tmp_path / "unbound.yml", """
        type: pipeline
        jobs:
          train:
            command: echo
            compute: ${{parent.inputs.nowhere}}
    """)  # fmt: skip
    result = smalt("job", "validate", "-f", str(unbound))
    assert result.exit_code == 1
    assert f"{unbound}:5: jobs.train.compute: the pipeline has no input 'nowhere'" in result.stderr


@pytest.mark.parametrize(("noun", "text", "where"), [
    ("component", "name: comp\ncommand: echo\nenvironment: azureml:noenv:2\n",
     "3: environment: Environment 'noenv:2' not found."),
    ("data", "name: d\ntype: uri_file\npath: azureml://datastores/nostore/paths/x.csv\n",
     "3: path: Datastore 'nostore' not found."),
    ("data", "name: d\ntype: uri_file\npath: ./x.csv\ndatastore: azureml:nostore\n",
     "4: datastore: Datastore 'nostore' not found."),
])  # fmt: skip
def test_a_reference_of_an_asset_file_that_does_not_resolve_names_its_line(
    smalt: Smalt, tmp_path: Path, noun: str, text: str, where: str
) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    spec = write(tmp_path / "spec.yml", text)
    result = smalt(noun, "create", "-f", str(spec))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {spec}:{where}"), result.stderr
    listed = smalt(noun, "list", "-o", "json")
    assert listed.json() == [], "nothing is created"
