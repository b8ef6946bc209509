"""Azure ML files read as azure-ai-ml reads them: each class of misreading fixed in general, and what
smalt lacks refused in one line that names the feature and the place."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from smalt import specs
from smalt.entities import CommandJob, OnlineDeployment, Output, PipelineJob
from smalt.entities.environment import InlineEnvironment
from smalt.errors import InvalidSpecError, SpecWarning


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refusal(kind: str, path: Path) -> InvalidSpecError:
    with pytest.raises(InvalidSpecError) as caught:
        specs.load(kind, path)
    return caught.value


def test_an_output_declared_with_no_value_is_a_default_folder_in_jobs_steps_and_components(tmp_path: Path) -> None:
    job = specs.load("job", write(tmp_path, "job.yml", "command: echo ${{outputs.model}}\noutputs:\n  model:\n"))
    assert isinstance(job, CommandJob)
    assert job.outputs["model"] == Output(type="uri_folder")
    pipeline = specs.load("job", write(tmp_path, "pipe.yml", (
        "type: pipeline\njobs:\n  a:\n    command: echo ${{outputs.o}}\n    outputs:\n      o:\n"
    )))  # fmt: skip
    assert isinstance(pipeline, PipelineJob)
    assert pipeline.jobs["a"].outputs["o"] == Output()  # type: ignore[union-attr]
    component = specs.load("component", write(tmp_path, "c.yml", "name: c\ncommand: echo\noutputs:\n  x:\n"))
    assert component.outputs["x"] == Output()  # type: ignore[attr-defined]


def test_a_version_written_as_an_integer_is_read_anywhere_a_version_is(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    deployment = specs.load("online-deployment", write(tmp_path, "d.yml", (
        "name: blue\nendpoint_name: ep\nmodel:\n  name: m\n  version: 1\n  path: ./model\n"
        "  properties:\n    stage: 3\nenvironment:\n  image: python:3.11\n  version: 2\n"
    )))  # fmt: skip
    assert isinstance(deployment, OnlineDeployment)
    assert deployment.model.version == "1"  # type: ignore[union-attr]
    assert deployment.model.properties == {"stage": "3"}  # type: ignore[union-attr]
    assert deployment.environment.version == "2"  # type: ignore[union-attr]
    pipeline = specs.load("job", write(tmp_path, "p.yml", (
        "type: pipeline\njobs:\n  a:\n    command: echo\n    environment:\n      image: python:3.11\n      version: 7\n"
    )))  # fmt: skip
    assert pipeline.jobs["a"].environment.version == "7"  # type: ignore[union-attr]


@pytest.mark.parametrize("written", ["serverless", "azureml:serverless", "Serverless"])
def test_serverless_compute_is_the_local_compute(tmp_path: Path, written: str) -> None:
    job = specs.load("job", write(tmp_path, "job.yml", f"command: echo\ncompute: {written}\n"))
    assert job.compute == "local"  # type: ignore[attr-defined]
    pipeline = specs.load("job", write(tmp_path, "p.yml", (
        f"type: pipeline\nsettings:\n  default_compute: {written}\njobs:\n  a:\n    command: echo\n"
        f"    compute: {written}\n"
    )))  # fmt: skip
    assert isinstance(pipeline, PipelineJob)
    assert (pipeline.settings.default_compute, pipeline.jobs["a"].compute) == ("local", "local")  # type: ignore[union-attr]


def test_legacy_port_types_and_mount_mode(tmp_path: Path) -> None:
    component = specs.load("component", write(tmp_path, "c.yml", (
        "name: c\ncommand: echo ${{inputs.data}} ${{outputs.out}}\n"
        "inputs:\n  data:\n    type: path\n    mode: mount\noutputs:\n  out:\n    type: path\n    mode: mount\n"
    )))  # fmt: skip
    assert component.inputs["data"].type == "uri_folder"  # type: ignore[attr-defined]
    assert component.inputs["data"].mode == "ro_mount"  # type: ignore[attr-defined]
    assert (component.outputs["out"].type, component.outputs["out"].mode) == ("uri_folder", "rw_mount")  # type: ignore[attr-defined]


def test_an_environment_written_as_a_file_is_read_with_its_own_paths(tmp_path: Path) -> None:
    write(tmp_path, "env/conda.yml", "dependencies:\n  - python=3.11\n")
    write(tmp_path, "env/env.yml", (
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: tools\nversion: 3\nimage: python:3.11-slim\nconda_file: conda.yml\n"
    ))  # fmt: skip
    job = specs.load("job", write(tmp_path, "job.yml", "command: echo\nenvironment: file:./env/env.yml\n"))
    assert isinstance(job.environment, InlineEnvironment)  # type: ignore[attr-defined]
    assert job.environment.conda_file == str(tmp_path / "env" / "conda.yml")  # type: ignore[attr-defined]
    assert job.environment.version == "3"  # type: ignore[attr-defined]


def test_a_problem_inside_an_environment_file_names_that_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "env.yml", "name: tools\nimage: python:3.11-slim\nconda_file: missing.yml\n")
    error = refusal("job", write(tmp_path, "job.yml", "command: echo\nenvironment: file:env.yml\n"))
    assert [(p.file, p.line, p.field) for p in error.problems] == [(str(tmp_path / "env.yml"), 3, "conda_file")]


def test_an_unknown_key_under_pipeline_settings_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yml", (
        "type: pipeline\nsettings:\n  default_compute: local\n  on_init: setup\njobs:\n  a:\n    command: echo\n"
    ))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = specs.load("job", path)
    assert job.settings.default_compute == "local"  # type: ignore[attr-defined]
    assert [str(w.message) for w in caught if w.category is SpecWarning] == [
        f"{path}:4: settings.on_init: ignored, as Azure ML ignores it; smalt reads only default_compute, "
        "default_datastore, continue_on_step_failure, force_rerun here"
    ]


@pytest.mark.parametrize("node_type", ["parallel", "spark", "sweep", "automl", "data_transfer", "do_while"])
def test_a_step_of_a_kind_smalt_lacks_is_refused_in_one_line(tmp_path: Path, node_type: str) -> None:
    path = write(tmp_path, "p.yml", (
        "type: pipeline\njobs:\n  prep:\n    command: echo\n"
        f"  score:\n    type: {node_type}\n    input_data: ${{{{parent.jobs.prep.outputs.x}}}}\n"
        "    task:\n      type: run_function\n      entry_script: score.py\n    mini_batch_size: 10\n"
    ))  # fmt: skip
    error = refusal("job", path)
    assert [str(p) for p in error.problems] == [
        f"{path}:6: jobs.score.type: node type '{node_type}' is not supported yet; smalt runs command, "
        "pipeline, if_else steps"
    ]


def test_a_misspelt_step_type_is_not_called_unsupported(tmp_path: Path) -> None:
    error = refusal("job", write(tmp_path, "p.yml", "type: pipeline\njobs:\n  a:\n    type: comand\n"))
    assert [p.message for p in error.problems] == ["'comand' is not a node type; one of command, pipeline, if_else"]


@pytest.mark.parametrize(("kind", "body", "message"), [
    ("job", "type: sweep\ntrial: ./t.yml\n", "job type 'sweep' is not supported yet; smalt runs command, pipeline"),
    ("job", "type: spark\nentry: {file: x.py}\n", "job type 'spark' is not supported yet"),
    ("component", "name: c\ntype: parallel\n", "component type 'parallel' is not supported yet"),
    ("compute", "name: k8s\ntype: kubernetes\n", "compute type 'kubernetes' is not supported yet"),
    ("compute", "name: vm\ntype: virtualmachine\n", "compute type 'virtualmachine' is not supported yet"),
    ("datastore", "name: old\ntype: azure_data_lake_gen1\nstore_name: s\n",
     "datastore type 'azure_data_lake_gen1' is not supported yet"),
    ("online-deployment", "name: k\nendpoint_name: e\ntype: kubernetes\n",
     "online-deployment type 'kubernetes' is not supported yet"),
])  # fmt: skip
def test_a_type_smalt_lacks_is_refused_in_one_line_at_its_line(tmp_path: Path, kind: str, body: str,
                                                                message: str) -> None:  # fmt: skip
    path = write(tmp_path, "f.yml", "# written for Azure ML\n" + body)
    error = refusal(kind, path)
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert problem.message.startswith(message)
    assert (problem.file, problem.field) == (str(path), "type")
    assert problem.line == 2 + body.split("\n").index(next(line for line in body.split("\n") if "type:" in line))


def test_a_component_file_of_another_kind_is_refused_where_the_pipeline_names_it(tmp_path: Path) -> None:
    write(tmp_path, "train.yml", (
        "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\ncommand: echo\n"
    ))  # fmt: skip
    error = refusal("job", write(tmp_path, "p.yml", "type: pipeline\njobs:\n  a:\n    component: ./train.yml\n"))
    assert "this is a commandJob file; `smalt job create -f` takes it" in str(error)


def test_a_compute_instance_file_with_schedules_loads_and_a_cluster_with_them_does_not(tmp_path: Path) -> None:
    instance = specs.load("compute", write(tmp_path, "ci.yml", (
        "name: dev-box\ntype: computeinstance\nsize: STANDARD_DS3_v2\nidle_time_before_shutdown_minutes: 30\n"
        "schedules:\n  compute_start_stop:\n    - action: stop\n      trigger:\n        type: cron\n"
        "        expression: 0 18 * * *\n"
    )))  # fmt: skip
    assert instance.schedules is not None  # type: ignore[attr-defined]
    error = refusal("compute", write(tmp_path, "cluster.yml", (
        "name: cpu\ntype: amlcompute\nschedules:\n  compute_start_stop: []\n"
    )))  # fmt: skip
    assert "schedules apply to a computeinstance, not to type amlcompute" in str(error)


def test_a_step_with_interactive_services_loads(tmp_path: Path) -> None:
    job = specs.load("job", write(tmp_path, "p.yml", (
        "type: pipeline\njobs:\n  a:\n    command: echo\n    services:\n      my_jupyter:\n"
        "        type: jupyter_lab\n"
    )))  # fmt: skip
    assert job.jobs["a"].services == {"my_jupyter": {"type": "jupyter_lab"}}  # type: ignore[union-attr]


def test_an_unknown_key_in_a_component_is_ignored_with_a_warning_but_a_misspelt_one_is_an_error(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "c.yml", "name: c\ncommands: echo typo\ncommand: echo\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        component = specs.load("component", path)
    assert component.command == "echo"  # type: ignore[attr-defined]
    assert [str(w.message) for w in caught] == [
        f"{path}:2: commands: ignored, as Azure ML ignores it; did you mean 'command'?"
    ]
    error = refusal("component", write(tmp_path, "typo.yml", "name: c\ncomand: echo\n"))
    assert "comand: unknown key; did you mean 'command'?" in str(error)


def test_a_batch_endpoint_without_schema_is_told_by_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "e.yml", "name: scorer\nauth_mode: aad_token\ndefaults:\n  deployment_name: d\n")
    error = refusal("online-endpoint", path)
    assert [str(p) for p in error.problems] == [
        f"{path}:3: defaults: this is a batchEndpoint file (it has 'defaults'), not supported yet"
    ]


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("component", "name: Train-Model\ncommand: echo\n",
     "component names are lower-case letters, digits and underscores, starting with a letter; not 'Train-Model'"),
    ("job", "type: pipeline\njobs:\n  say-hello:\n    command: echo\n",
     "step names are Python identifiers in lower case (letters, digits, underscores); not 'say-hello'"),
    ("component", "name: c\ncommand: echo ${{inputs.data}}\ninputs:\n  data:\n    optional: true\n",
     "a component's input says its type: one of string"),
    ("job", "command: echo\nenvironment: sklearn-env\n",
     "'sklearn-env' names no environment: write azureml:sklearn-env@latest"),
    ("job", "type: pipeline\nsettings:\n  default_compute: cpu-cluster\njobs:\n  a:\n    command: echo\n",
     "write azureml:cpu-cluster for the compute 'cpu-cluster' (or serverless)"),
    ("job", "command: echo\ndistribution:\n  type: horovod\n", "distribution type 'horovod' is not one of pytorch"),
    ("job", "command: echo\nresources:\n  instance_count: two\n", "instance_count must be a whole number"),
    ("job", "command: echo ${{inputs.d}}\ninputs:\n  d:\n    path: ./x\n    mode: rw_mount\n", "Input should be"),
    ("job", "command: echo ${{outputs.o}}\noutputs:\n  o:\n    mode: download\n", "Input should be"),
    ("job", "command: echo ${{outputs.o}}\noutputs:\n  o:\n    type: string\n", "a job's output is data, not string"),
    ("job", "type: pipeline\ncomponent: ./c.yml\njobs:\n  a:\n    command: echo\n",
     "a pipeline job has `jobs` or a `component`, not both"),
    ("environment", "name: e\nimage: python:3.11\nbuild:\n  path: .\n",
     "an environment takes an image or a build context, not both"),
    ("datastore", "name: lake\ntype: azure_data_lake_gen2\naccount_name: a\nfilesystem: f\ncredentials:\n"
     "  account_key: k\n", "an azure_data_lake_gen2 datastore takes service_principal or certificate credentials"),
    ("online-endpoint", "name: 9lives\n", "String should match pattern"),
    ("online-deployment", "name: d\nendpoint_name: e\nmodel: credit:1\n", "'credit:1' names no model"),
])  # fmt: skip
def test_what_azure_ml_refuses_smalt_refuses(tmp_path: Path, kind: str, text: str, message: str) -> None:
    write(tmp_path, "x/Dockerfile", "FROM python:3.11\n")
    write(tmp_path, "c.yml", "name: c\ntype: pipeline\njobs: {}\n")
    (tmp_path / "x" / "data").mkdir()
    error = refusal(kind, write(tmp_path, "f.yml", text.replace("path: .\n", "path: ./x\n")))
    assert message in str(error)


def test_what_azure_ml_accepts_in_another_case_or_spelling_smalt_accepts(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    deployment = specs.load("online-deployment", write(tmp_path, "d.yml", (
        "name: blue\nendpoint_name: ep\nmodel:\n  path: ./model\nmodel_mount_path: /var/model\n"
        "egress_public_network_access: Disabled\ndata_collector:\n  rolling_rate: day\n"
    )))  # fmt: skip
    assert isinstance(deployment, OnlineDeployment)
    assert deployment.egress_public_network_access == "disabled"
    assert deployment.data_collector is not None and deployment.data_collector.rolling_rate == "Day"
    write(tmp_path, "iris.csv", "a\n1\n")
    data = specs.load("data", write(tmp_path, "data.yml", (
        "name: iris\ntype: uri_file\npath: ./iris.csv\ndatastore: azureml:workspaceblobstore\n"
    )))  # fmt: skip
    assert data.datastore == "azureml:workspaceblobstore"  # type: ignore[attr-defined]
