"""specs.load: YAML files to entities, every problem at once with file, line and field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from smalt import specs
from smalt.entities import CommandComponent, CommandJob, Compute, Data, Datastore, Environment, Input, Model
from smalt.errors import InvalidSpecError, SpecProblem

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` that contains ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems_of(kind: str, path: Path, **kwargs: object) -> list[SpecProblem]:
    with pytest.raises(InvalidSpecError) as info:
        specs.load(kind, path, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def only(problems: list[SpecProblem]) -> SpecProblem:
    assert len(problems) == 1, problems
    return problems[0]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A folder for spec files that is not the working directory (conftest chdirs to tmp/cwd)."""
    folder = tmp_path / "specs"
    folder.mkdir()
    assert Path.cwd() != folder
    return folder


# --- the examples shipped with smalt -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "file", "cls"),
    [
        ("data", "data.yml", Data),
        ("environment", "environment.yml", Environment),
        ("component", "component.yml", CommandComponent),
        ("model", "model.yml", Model),
        ("compute", "compute.yml", Compute),
        ("datastore", "datastore.yml", Datastore),
    ],
)
def test_examples_load_with_schema_key_ignored(kind: str, file: str, cls: type) -> None:
    entity = specs.load(kind, EXAMPLES / file)
    assert isinstance(entity, cls)
    assert "$schema" in (EXAMPLES / file).read_text()


def test_example_component_paths_resolve_against_the_examples_folder() -> None:
    component = specs.load_component(EXAMPLES / "component.yml")
    assert component.code == str((EXAMPLES / "train-src").resolve())
    assert component.version == "1"
    assert component.inputs["max_depth"] == Input(type="integer", default=3, min=1, max=20, optional=True)
    assert component.environment == "azureml:sklearn@latest"


def test_example_environment_conda_file_is_made_absolute() -> None:
    environment = specs.load_environment(EXAMPLES / "environment.yml")
    assert environment.conda_file == str((EXAMPLES / "conda.yml").resolve())


def test_schema_key_is_accepted_anywhere_valid(spec_dir: Path) -> None:
    path = write(
        spec_dir,
        "data.yml",
        """
        $schema: https://azuremlschemas.azureedge.net/latest/data.schema.json
        name: iris
        path: https://example.com/iris.csv
        """,
    )
    data = specs.load_data(path)
    assert data.path == "https://example.com/iris.csv"
    assert "$schema" not in data.to_dict()


# --- unknown keys and 'did you mean' -------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_close_field(spec_dir: Path) -> None:
    path = write(
        spec_dir,
        "data.yml",
        """
        name: iris
        path: https://example.com/iris.csv
        descripton: typo
        """,
    )
    problem = only(problems_of("data", path))
    assert problem.field == "descripton"
    assert problem.line == line_of(path, "descripton")
    assert problem.file == str(path)
    assert "did you mean 'description'" in problem.message


@pytest.mark.parametrize(
    ("kind", "text", "field", "suggestion"),
    [
        (
            "component",
            """
            name: train
            command: python train.py ${{inputs.lr}}
            inputs:
              lr:
                type: number
                defualt: 0.1
            """,
            "inputs.lr.defualt",
            "default",
        ),
        (
            "component",
            """
            name: train
            command: python train.py
            environment:
              image: python:3.11
              conda_fle: conda.yml
            """,
            "environment.conda_fle",
            "conda_file",
        ),
        (
            "datastore",
            """
            name: blob
            type: azure_blob
            account_name: acct
            container_name: raw
            credentials:
              acount_key: c2VjcmV0
            """,
            "credentials.acount_key",
            "account_key",
        ),
    ],
)
def test_unknown_nested_key_has_dotted_path_line_and_suggestion(
    spec_dir: Path, kind: str, text: str, field: str, suggestion: str
) -> None:
    path = write(spec_dir, "spec.yml", text)
    problem = only(problems_of(kind, path))
    assert problem.field == field
    assert problem.line == line_of(path, field.rsplit(".", 1)[-1] + ":")
    assert f"did you mean {suggestion!r}" in problem.message


def test_unknown_key_with_nothing_close_says_only_unknown(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "name: iris\npath: https://example.com/x\nzzzzqqq: 1\n")
    problem = only(problems_of("data", path))
    assert problem.message == "unknown key"
    assert problem.line == 3


# --- field paths and lines of nested problems ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "field", "needle"),
    [
        (
            "component",
            """
            name: train
            command: python train.py ${{inputs.lr}}
            inputs:
              lr:
                type: numbr
            """,
            "inputs.lr.type",
            "type: numbr",
        ),
        (
            "component",
            """
            name: train
            command: python train.py ${{inputs.lr}}
            inputs:
              lr:
                type: number
                description: learning rate
                default: fast
            """,
            "inputs.lr.default",
            "default: fast",
        ),
        (
            "component",
            """
            name: train
            command: python train.py
            environment:
              image: python:3.11
              conda_file: ./no-such-conda.yml
            """,
            "environment.conda_file",
            "conda_file:",
        ),
        (
            "datastore",
            """
            name: blob
            type: azure_blob
            account_name: acct
            container_name: raw
            credentials:
              account_key: 12345
            """,
            "credentials.account_key",
            "account_key:",
        ),
        (
            "job",
            """
            command: python train.py --data ${{inputs.data}}
            inputs:
              data:
                type: uri_file
                path: ./no-such-file.csv
            """,
            "inputs.data.path",
            "path:",
        ),
        (
            "compute",
            """
            name: cpu
            type: amlcompute
            max_instances: -1
            """,
            "max_instances",
            "max_instances",
        ),
    ],
)
def test_nested_problem_names_dotted_field_and_its_line(
    spec_dir: Path, kind: str, text: str, field: str, needle: str
) -> None:
    path = write(spec_dir, "spec.yml", text)
    problem = only(problems_of(kind, path))
    assert (problem.file, problem.line, problem.field) == (str(path), line_of(path, needle), field)


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        (
            """
            name: train
            command: python train.py ${{inputs.LR}}
            inputs:
              LR:
                type: numbr
            """,
            "inputs.LR.type",
            "type: numbr",
        ),
        (
            """
            name: train
            command: python train.py
            tags:
              Stage: [dev, prod]
            """,
            "tags.Stage",
            "Stage:",
        ),
    ],
)
def test_keys_that_start_with_a_capital_stay_in_the_field_path(
    spec_dir: Path, text: str, field: str, needle: str
) -> None:
    # Port names and tag keys are the user's own; a capital letter must not drop them from the path.
    path = write(spec_dir, "component.yml", text)
    problem = only(problems_of("component", path))
    assert (problem.field, problem.line) == (field, line_of(path, needle))


def test_every_problem_in_a_file_is_reported_at_once_sorted_by_line(spec_dir: Path) -> None:
    (spec_dir / "src").mkdir()
    path = write(
        spec_dir,
        "component.yml",
        """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: train
        commnd: python train.py
        code: ./src
        inputs:
          epochs:
            type: integer
            min: 5
            max: 1
        environment:
          image: python:3.11
          conda_file: ./missing-conda.yml
        is_deterministic: perhaps
        """,
    )
    problems = problems_of("component", path)
    fields = [p.field for p in problems]
    for expected in ("commnd", "inputs.epochs", "environment.conda_file", "is_deterministic", "command"):
        assert any(f.startswith(expected) for f in fields), (expected, fields)
    lines = [p.line for p in problems]
    assert all(line is not None for line in lines)
    assert lines == sorted(lines)  # type: ignore[type-var]
    assert all(p.file == str(path) for p in problems)
    conda = next(p for p in problems if p.field == "environment.conda_file")
    assert conda.line == line_of(path, "conda_file")
    assert str(spec_dir / "missing-conda.yml") in conda.message


def test_error_text_names_file_line_and_field(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "name: iris\ntype: folder\npath: https://example.com/x\n")
    with pytest.raises(InvalidSpecError) as info:
        specs.load("data", path)
    text = str(info.value)
    assert f"{path}:2: type:" in text
    assert "'folder'" in text
    assert str(path) in text.splitlines()[0]


# --- local paths ---------------------------------------------------------------------------------


def test_relative_local_path_resolves_against_the_yaml_folder_not_cwd(spec_dir: Path) -> None:
    (spec_dir / "data").mkdir()
    (spec_dir / "data" / "iris.csv").write_text("a,b\n1,2\n")
    for written in ("data/iris.csv", "./data/iris.csv"):
        path = write(spec_dir, "data.yml", f"name: iris\ntype: uri_file\npath: {written}\n")
        assert specs.load_data(path).path == str((spec_dir / "data" / "iris.csv").resolve())


def test_file_uri_and_absolute_paths_are_local(spec_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "model"
    target.mkdir(parents=True)
    for written in (str(target), f"file://{target}"):
        path = write(spec_dir, "model.yml", f"name: m\npath: {written}\n")
        assert specs.load_model(path).path == str(target)


@pytest.mark.parametrize(
    "uri",
    [
        "azureml://datastores/workspaceblobstore/paths/iris/",
        "https://example.com/iris.csv",
        "azureml:iris:1",
        "s3://bucket/key",
    ],
)
def test_uris_are_kept_as_written(spec_dir: Path, uri: str) -> None:
    path = write(spec_dir, "data.yml", f"name: iris\npath: {uri}\n")
    assert specs.load_data(path).path == uri


def test_missing_local_path_is_reported_with_its_line(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "name: iris\ndescription: x\npath: ./nope.csv\n")
    problem = only(problems_of("data", path))
    assert (problem.field, problem.line) == ("path", 3)
    assert str(spec_dir / "nope.csv") in problem.message
    assert "does not exist" in problem.message


# --- files that are not specs at all -------------------------------------------------------------


def test_invalid_yaml_syntax_gives_the_line(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "name: iris\npath: x\ntags: [a, b\ndescription: y\n")
    with pytest.raises(InvalidSpecError) as info:
        specs.load("data", path)
    problem = only(info.value.problems)
    assert problem.file == str(path)
    assert problem.line is not None and 3 <= problem.line <= 5
    assert "invalid YAML" in problem.message
    assert "not valid YAML" in str(info.value)


def test_duplicate_key_is_invalid_yaml_at_its_line(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "name: a\npath: https://example.com/x\nname: b\n")
    problem = only(problems_of("data", path))
    assert problem.line == 3
    assert "duplicate" in problem.message


def test_a_file_that_is_not_a_mapping_is_rejected(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "- name: iris\n- path: x\n")
    problem = only(problems_of("data", path))
    assert "mapping" in problem.message
    assert problem.file == str(path)


def test_an_empty_file_reports_the_missing_keys(spec_dir: Path) -> None:
    path = write(spec_dir, "data.yml", "# nothing here yet\n")
    problems = problems_of("data", path)
    assert {p.field for p in problems} == {"name", "path"}
    assert all(p.message == "required key is missing" for p in problems)


def test_a_missing_file_is_an_invalid_spec_with_a_hint(spec_dir: Path) -> None:
    with pytest.raises(InvalidSpecError) as info:
        specs.load("data", spec_dir / "nope.yml")
    assert info.value.hint is not None and "--file" in info.value.hint
    assert str(spec_dir / "nope.yml") in str(info.value)


@pytest.mark.parametrize("kind", ["component", "job"])
def test_unsupported_type_says_which_types_are_supported(spec_dir: Path, kind: str) -> None:
    path = write(spec_dir, "spec.yml", "name: p\ndescription: d\ntype: spark\njobs: {}\n")
    problem = only(problems_of(kind, path))
    assert (problem.field, problem.line) == ("type", 3)
    assert "'spark'" in problem.message
    assert "not supported" in problem.message
    assert "command" in problem.message


def test_unknown_kind_is_an_invalid_spec(spec_dir: Path) -> None:
    path = write(spec_dir, "x.yml", "name: x\n")
    with pytest.raises(InvalidSpecError, match="unknown kind 'widget'"):
        specs.load("widget", path)


# --- YAML typing ---------------------------------------------------------------------------------


def test_numeric_version_and_tag_values_become_strings(spec_dir: Path) -> None:
    path = write(
        spec_dir,
        "data.yml",
        """
        name: iris
        version: 1
        path: https://example.com/x
        tags:
          epochs: 10
          lr: 0.5
          shuffle: true
          owner: ada
        """,
    )
    data = specs.load_data(path)
    assert data.version == "1"
    assert data.tags == {"epochs": "10", "lr": "0.5", "shuffle": "true", "owner": "ada"}


# --- --set overrides and flags -------------------------------------------------------------------


@pytest.fixture
def component_file(spec_dir: Path) -> Path:
    return write(
        spec_dir,
        "component.yml",
        """
        name: train
        version: 1
        command: python train.py --lr ${{inputs.lr}}
        inputs:
          lr:
            type: number
            default: 0.1
        tags:
          team: vision
        """,
    )


def test_set_overrides_nested_keys_with_yaml_typed_values(component_file: Path) -> None:
    component = specs.load_component(
        component_file,
        overrides=["inputs.lr.default=0.5", "is_deterministic=false", "tags.stage=dev", "version=2"],
    )
    assert component.inputs["lr"].default == 0.5
    assert isinstance(component.inputs["lr"].default, float)
    assert component.is_deterministic is False
    assert component.tags == {"team": "vision", "stage": "dev"}
    assert component.version == "2"


def test_set_creates_missing_parents(component_file: Path) -> None:
    component = specs.load_component(component_file, overrides=["environment_variables.MODE=fast"])
    assert component.environment_variables == {"MODE": "fast"}


def test_set_value_keeps_text_that_is_not_yaml(component_file: Path) -> None:
    component = specs.load_component(component_file, overrides=["description=a: b: c", "display_name="])
    assert component.description == "a: b: c"
    assert component.display_name == ""


def test_params_win_over_the_file_and_over_set(component_file: Path) -> None:
    component = specs.load_component(
        component_file, overrides=["version=7"], params={"name": "train_v2", "version": "9", "description": None}
    )
    assert (component.name, component.version) == ("train_v2", "9")
    assert component.description is None


def test_bad_set_text_is_reported_all_at_once_as_set(component_file: Path) -> None:
    with pytest.raises(InvalidSpecError) as info:
        specs.load("component", component_file, overrides=["novalue", "=x", "name.first=a", "tags.ok=1"])
    problems = info.value.problems
    assert len(problems) == 3
    assert "'novalue'" in problems[0].message and "key=value" in problems[0].message
    assert "'=x'" in problems[1].message
    assert problems[2].field == "name.first" and "not a mapping" in problems[2].message
    for problem in problems:
        assert problem.line is None
        assert str(problem).startswith("--set"), str(problem)


@pytest.mark.parametrize(
    ("overrides", "params", "field"),
    [
        (["inputs.lr.type=numbr"], {}, "inputs.lr.type"),
        (["code=./no-such-src"], {}, "code"),
        ([], {"name": "not a name"}, "name"),
        (["version=1 2"], {}, "version"),
    ],
)
def test_problems_in_set_values_and_params_are_reported_as_set(
    component_file: Path, overrides: list[str], params: dict[str, str], field: str
) -> None:
    problem = only(problems_of("component", component_file, overrides=overrides, params=params))
    assert (problem.file, problem.line, problem.field) == ("--set", None, field)
    assert str(problem).startswith(f"--set: {field}:")


def test_set_path_resolves_against_the_yaml_folder(component_file: Path) -> None:
    (component_file.parent / "src").mkdir()
    component = specs.load_component(component_file, overrides=["code=src"])
    assert component.code == str((component_file.parent / "src").resolve())


# --- flags alone and SDK objects -----------------------------------------------------------------


def test_from_values_builds_from_flags_and_resolves_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "iris.csv").write_text("a\n")
    data = specs.from_values(
        "data", {"name": "iris", "path": "iris.csv", "type": "uri_file", "version": None}, base_dir=tmp_path
    )
    assert isinstance(data, Data)
    assert data.path == str((tmp_path / "iris.csv").resolve())
    assert data.version is None


def test_from_values_problems_have_no_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError) as info:
        specs.from_values("data", {"name": "iris"}, base_dir=tmp_path)
    problem = only(info.value.problems)
    assert (problem.field, problem.file, problem.line) == ("path", None, None)


def test_prepare_checks_an_sdk_object_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    model = specs.prepare(Model(name="m", path="model"), base_dir=tmp_path)
    assert model.path == str((tmp_path / "model").resolve())
    with pytest.raises(InvalidSpecError, match="does not exist"):
        specs.prepare(Model(name="m", path="gone"), base_dir=tmp_path)


def test_load_job_and_typed_loaders_return_their_classes(spec_dir: Path) -> None:
    path = write(spec_dir, "job.yml", "command: echo hi\ninputs:\n  n: 3\n  flag: true\n")
    job = specs.load_job(path)
    assert isinstance(job, CommandJob)
    assert job.inputs == {"n": 3, "flag": True}


def test_a_file_read_again_is_parsed_once_and_each_load_gets_its_own_copy(tmp_path: Path) -> None:
    """A server is handed the same job file at each submission: the parse is kept by the file's
    text, so an edited file is read afresh and what one load changes (--set) is not another's."""
    from smalt.specs import yaml_source

    path = write(tmp_path, "job.yml", """
        command: echo one
        environment_variables: {A: "1"}
    """)
    first = specs.load("job", path, overrides=["environment_variables.A=2"])
    again = specs.load("job", path)
    assert first.environment_variables == {"A": "2"} and again.environment_variables == {"A": "1"}
    assert yaml_source._parsed.cache_info().hits >= 1
    write(tmp_path, "job.yml", """
        command: echo two
        bogus_key: 1
    """)
    problem = only(problems_of("job", path))
    assert problem.field == "bogus_key" and problem.line == 2
