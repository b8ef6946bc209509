"""Models and lineage as a user meets them: a pipeline prepares raw data and trains a model that it
registers; the model's lineage reaches the raw data version and the training code; the data's impact
lists the model; a changed hyperparameter shows in `model compare`; `job rerun` reproduces metrics
from the recorded code snapshot, not the files on disk."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_jobs import Smalt, submit, wait, write
from tests.e2e.test_pipelines import pipeline, steps

# The training script logs through MLflow's REST protocol with the standard library alone, so the
# job runs in the base environment (no package to install); the mlflow client itself is tested in
# tests/integration/test_mlflow_*.py and tests/e2e/test_job_tracking.py.
TRAIN = '''
import argparse, json, os, pathlib, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--data"); parser.add_argument("--lr", type=float); parser.add_argument("--model")
args = parser.parse_args()
rows = [float(x) for x in pathlib.Path(args.data, "clean.txt").read_text().split()]
weight = sum(rows) * args.lr  # deterministic "training"
loss = round(abs(10 - weight), 6)

def log_batch(**body):
    request = urllib.request.Request(
        os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-batch",
        data=json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], **body}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
    urllib.request.urlopen(request).read()

log_batch(params=[{"key": "lr", "value": str(args.lr)}],
          metrics=[{"key": "loss", "value": loss, "timestamp": 0, "step": 0}])
model = pathlib.Path(args.model)
(model / "MLmodel").write_text(
    "flavors:\\n  python_function:\\n    loader_module: model\\n    python_version: 3.11.7\\n"
    "signature:\\n  inputs: '[{\\"type\\": \\"double\\", \\"name\\": \\"x\\"}]'\\n"
    "  outputs: '[{\\"type\\": \\"double\\"}]'\\n"
    "saved_input_example_info:\\n  artifact_path: input_example.json\\n  type: dataframe\\n"
)
(model / "input_example.json").write_text(json.dumps({"columns": ["x"], "data": [[1.0]]}))
(model / "requirements.txt").write_text("numpy==2.1.0\\n")
(model / "weights.json").write_text(json.dumps({"weight": weight}))
'''

PREP = '''
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--raw"); parser.add_argument("--out")
args = parser.parse_args()
values = [line.split(",")[1] for line in pathlib.Path(args.raw).read_text().splitlines()[1:]]
pathlib.Path(args.out, "clean.txt").write_text(" ".join(values))
'''


def project(tmp_path: Path) -> Path:
    """Components, code and the pipeline file of a small project."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(TRAIN))
    (src / "prep.py").write_text(textwrap.dedent(PREP))
    write(tmp_path / "prep.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: prep
        type: command
        inputs: {raw: {type: uri_file}}
        outputs: {clean: {type: uri_folder}}
        code: ./src
        command: python prep.py --raw ${{inputs.raw}} --out ${{outputs.clean}}
    """)  # fmt: skip
    write(tmp_path / "train.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: train
        type: command
        inputs:
          data: {type: uri_folder}
          lr: {type: number, default: 0.1}
        outputs: {model: {type: mlflow_model}}
        code: ./src
        command: python train.py --data ${{inputs.data}} --lr ${{inputs.lr}} --model ${{outputs.model}}
    """)  # fmt: skip
    return pipeline(tmp_path / "pipeline.yml", """
        experiment_name: credit
        inputs:
          raw: {type: uri_file, path: azureml:raw:1}
          lr: 0.1
        outputs:
          trained: {name: credit, type: mlflow_model}
        jobs:
          prep:
            component: ./prep.yml
            inputs:
              raw: ${{parent.inputs.raw}}
          train:
            component: ./train.yml
            inputs:
              data: ${{parent.jobs.prep.outputs.clean}}
              lr: ${{parent.inputs.lr}}
            outputs:
              model: ${{parent.outputs.trained}}
    """)  # fmt: skip


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result.json()


def by_id(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in graph["nodes"]}


def edges(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}


@pytest.fixture
def trained(smalt: Smalt, tmp_path: Path) -> dict[str, Any]:
    """raw:1 registered, the pipeline run once (lr 0.1): credit:1 registered by its train step."""
    (tmp_path / "raw.csv").write_text("id,value\n1,2.0\n2,3.0\n3,5.0\n")
    ok(smalt("data", "create", "--name", "raw", "--version", "1", "--type", "uri_file",
             "--path", str(tmp_path / "raw.csv"), "-o", "json"))  # fmt: skip
    spec = project(tmp_path)
    name = submit(smalt, spec)
    job = wait(smalt, name, timeout=90)
    assert job["status"] == "Completed", job
    return {"pipeline": name, "steps": steps(smalt, name), "spec": spec}


def test_a_pipeline_registers_a_model_whose_lineage_reaches_the_raw_data_and_the_training_code(
    smalt: Smalt, trained: dict[str, Any]
) -> None:
    train, prep = trained["steps"]["train"], trained["steps"]["prep"]
    model = ok(smalt("model", "show", "--name", "credit", "--version", "1", "-o", "json"))
    assert model["type"] == "mlflow_model"
    assert model["job_name"] == train["name"]
    # The MLmodel file was read: flavors, signature, input example, the Python environment.
    assert model["flavors"]["python_function"]["loader_module"] == "model"
    assert model["mlflow"]["signature"]["inputs"] == [{"type": "double", "name": "x"}]
    assert model["mlflow"]["input_example"]["value"] == {"columns": ["x"], "data": [[1.0]]}
    assert model["mlflow"]["python_env"] == {"python": "3.11.7", "requirements": ["numpy==2.1.0"]}

    graph = ok(smalt("model", "lineage", "--name", "credit", "--version", "1", "-o", "json"))
    nodes = by_id(graph)
    assert graph["root"] == "model:credit:1"
    train_id, prep_id = f"job:{train['name']}", f"job:{prep['name']}"
    assert {(train_id, "model:credit:1", "output"), (prep_id, train_id, "input"),
            ("data:raw:1", prep_id, "input")} <= edges(graph)  # fmt: skip
    # The training job knows its parameters, metrics, inputs, parent pipeline and compute.
    job = nodes[train_id]["properties"]
    assert job["params"] == {"lr": "0.1"}
    assert job["metrics"] == {"loss": pytest.approx(9.0)}
    assert job["inputs"]["lr"] == 0.1
    assert job["parent_job_name"] == trained["pipeline"]
    assert job["compute"] == "local"
    # ...and the code snapshot (each file's digest) and environment it ran.
    code = [n for n in graph["nodes"] if n["kind"] == "code" and (n["id"], train_id, "code") in edges(graph)]
    assert len(code) == 1 and {"train.py", "prep.py"} <= set(code[0]["properties"]["files"])
    environment = [n for n in graph["nodes"] if n["kind"] == "environment"]
    assert environment and environment[0]["properties"]["python"]

    # The tree names the same chain.
    tree = smalt("model", "lineage", "--name", "credit", "--version", "1", "-o", "table")
    assert tree.exit_code == 0, tree.stderr
    for text in ("model credit:1", train["name"], "[prep]", "data raw:1", "train.py", "lr=0.1"):
        assert text in tree.stdout, (text, tree.stdout)

    impact = ok(smalt("data", "impact", "--name", "raw", "--version", "1", "-o", "json"))
    assert {"model:credit:1", train_id, prep_id} <= set(by_id(impact))


def test_changing_one_hyperparameter_shows_as_exactly_that_change_in_compare(
    smalt: Smalt, trained: dict[str, Any]
) -> None:
    name = submit(smalt, trained["spec"], "--set", "inputs.lr=0.5")
    assert wait(smalt, name, timeout=90)["status"] == "Completed"
    compared = ok(smalt("model", "compare", "--name", "credit", "--versions", "1", "2", "-o", "json"))
    assert compared["versions"] == ["1", "2"]
    assert compared["params"] == {"lr": ["0.1", "0.5"]}
    assert compared["inputs"] == {"lr": [0.1, 0.5]}
    assert compared["metrics"] == {"loss": [pytest.approx(9.0), pytest.approx(5.0)]}
    assert compared["data"] == {} and compared["code"] == {} and compared["packages"] == {}
    table = smalt("model", "compare", "--name", "credit", "--versions", "1", "2", "-o", "table")
    assert "params.lr" in table.stdout and "0.5" in table.stdout


def test_rerun_uses_the_recorded_code_and_reproduces_the_metrics(
    smalt: Smalt, trained: dict[str, Any], tmp_path: Path
) -> None:
    original = trained["steps"]["train"]["name"]
    # The code on disk changes afterwards; the rerun must not see it.
    (tmp_path / "src" / "train.py").write_text("raise SystemExit('the file on disk was used')\n")
    rerun = ok(smalt("job", "rerun", "--name", original, "-o", "json"))
    assert rerun["name"] != original
    done = wait(smalt, rerun["name"], timeout=60)
    assert done["status"] == "Completed", done
    first = ok(smalt("job", "show", "--name", original, "-o", "json"))
    assert done["metrics"] == first["metrics"] and done["params"] == first["params"]
    assert done["tags"]["smalt.rerunOf"] == original
    # The rerun is linked: its lineage names the original and reaches the same upstream job.
    graph = ok(smalt("model", "lineage", "--name", "credit", "--version", "1", "-o", "json"))
    assert graph  # the original's lineage is unchanged by the rerun
    impact = ok(smalt("data", "impact", "--name", "raw", "--version", "1", "-o", "json"))
    assert f"job:{rerun['name']}" in by_id(impact)


def test_a_pipeline_rerun_runs_every_step_again_with_reuse_off(smalt: Smalt, trained: dict[str, Any]) -> None:
    rerun = ok(smalt("job", "rerun", "--name", trained["pipeline"], "-o", "json"))
    assert wait(smalt, rerun["name"], timeout=90)["status"] == "Completed"
    found = steps(smalt, rerun["name"])
    assert {k: s["reused_from"] for k, s in found.items()} == {"prep": None, "train": None}
    assert all(s["run_reason"] == "force_rerun is set" for s in found.values())
    versions = ok(smalt("model", "list", "--name", "credit", "-o", "json"))
    assert sorted(v["version"] for v in versions) == ["1", "2"]
    assert ok(smalt("model", "compare", "--name", "credit", "--versions", "1", "2", "-o", "json"))["metrics"] == {}


def test_an_alias_names_a_version_anywhere_and_its_moves_are_recorded(
    smalt: Smalt, trained: dict[str, Any], tmp_path: Path
) -> None:
    ok(smalt("model", "alias", "set", "--name", "credit", "--version", "1", "--alias", "production", "-o", "json"))
    job = write(tmp_path / "score.yml", """
        command: ls ${{inputs.model}} > ${{outputs.listing}}/files.txt
        inputs: {model: {type: mlflow_model, path: azureml:credit@production}}
        outputs: {listing: {type: uri_folder}}
    """)  # fmt: skip
    name = submit(smalt, job)
    assert wait(smalt, name, timeout=60)["status"] == "Completed"
    impact = ok(smalt("data", "impact", "--name", "raw", "--version", "1", "-o", "json"))
    assert ("model:credit:1", f"job:{name}", "input") in edges(impact)

    # Moving the alias, then removing it: each move kept with who and when.
    second = submit(smalt, trained["spec"], "--set", "inputs.lr=0.5")
    assert wait(smalt, second, timeout=90)["status"] == "Completed"
    ok(smalt("model", "alias", "set", "--name", "credit", "--version", "2", "--alias", "production", "-o", "json"))
    assert ok(smalt("model", "show", "--name", "credit", "--label", "production", "-o", "json"))["version"] == "2"
    assert smalt("model", "alias", "remove", "--name", "credit", "--alias", "production").exit_code == 0
    history = ok(smalt("model", "alias", "list", "--name", "credit", "--history", "-o", "json"))
    assert [(h["alias"], h["previous_version"], h["version"]) for h in history] == [
        ("production", None, "1"), ("production", "1", "2"), ("production", "2", None)]  # fmt: skip
    assert all(h["set_by"] and h["set_at"] for h in history)
    missing = smalt("model", "show", "--name", "credit", "--label", "production")
    assert missing.exit_code == 1 and "no alias 'production'" in missing.stderr


def test_lineage_json_is_the_graph_the_sdk_returns(ml_client: Any, smalt: Smalt, trained: dict[str, Any]) -> None:
    graph = ml_client.models.lineage("credit", version=1)
    cli = ok(smalt("model", "lineage", "--name", "credit", "--version", "1", "-o", "json"))
    assert graph.to_dict() == cli
    assert [n.name for n in graph.of_kind("data")] == ["raw"]
    impact = ml_client.data.impact("raw", version=1)
    assert [n.id for n in impact.of_kind("model")] == ["model:credit:1"]
