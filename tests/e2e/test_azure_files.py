"""Azure ML files that were misread, run as a user runs them: a pipeline component registered with
`component create` and used by name, curated environments written as workspace assets, serverless
compute, outputs declared with no value, and an environment written as a file of its own."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_jobs import Smalt, submit, wait, write
from tests.e2e.test_pipelines import steps

MINIMAL = "azureml:AzureML-minimal-ubuntu22.04-py311-cpu-inference@latest"


def test_a_registered_pipeline_component_runs_by_name_with_its_files_pinned(smalt: Smalt, tmp_path: Path) -> None:
    write(tmp_path / "inner" / "src" / "count.py", """
        import sys
        from pathlib import Path
        Path(sys.argv[2], "n.txt").write_text(sys.argv[1])
    """)  # fmt: skip
    write(tmp_path / "inner" / "inner.yml", f"""
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
        type: pipeline
        name: counting
        version: 1
        inputs:
          n: {{type: integer, default: 3}}
        outputs:
          out:
        jobs:
          count:
            type: command
            code: ./src
            command: python count.py ${{{{inputs.n}}}} ${{{{outputs.o}}}}
            environment: {MINIMAL}
            compute: serverless
            inputs:
              n: ${{{{parent.inputs.n}}}}
            outputs:
              o: ${{{{parent.outputs.out}}}}
    """)  # fmt: skip
    created = smalt("component", "create", "-f", str(tmp_path / "inner" / "inner.yml"), "-o", "json")
    assert created.exit_code == 0, created.stderr
    registered = created.json()
    assert (registered["type"], registered["version"]) == ("pipeline", "1")
    # The step's code travels with the version: the folder it came from may go.
    code = registered["jobs"]["count"]["code"]
    assert code.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    (tmp_path / "inner" / "src" / "count.py").unlink()
    shown = smalt("component", "show", "--name", "counting", "--version", "1", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["jobs"]["count"]["code"] == code

    outer = write(tmp_path / "outer.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        settings:
          default_compute: azureml:serverless
        jobs:
          five:
            type: pipeline
            component: azureml:counting:1
            inputs:
              n: 5
          default:
            type: pipeline
            component: azureml:counting@latest
    """)  # fmt: skip
    name = submit(smalt, outer)
    assert wait(smalt, name)["status"] == "Completed"
    ran = steps(smalt, name)
    assert {key: step["status"] for key, step in ran.items()} == {
        "five.count": "Completed",
        "default.count": "Completed",
    }
    for key, expected in (("five.count", "5"), ("default.count", "3")):
        listed = smalt("job", "download", "--name", ran[key]["name"], "--output-name", "o",
                       "--download-path", str(tmp_path / key))  # fmt: skip
        assert listed.exit_code == 0, listed.stderr
        assert [p.read_text() for p in (tmp_path / key).rglob("n.txt")] == [expected]


def test_a_job_in_a_curated_environment_spelt_as_an_asset_with_an_environment_file(
    smalt: Smalt, tmp_path: Path
) -> None:
    write(tmp_path / "env" / "env.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        name: plain
        version: 1
        image: python:3.11-slim
    """)  # fmt: skip
    curated = write(tmp_path / "curated.yml", f"""
        command: echo curated > ${{{{outputs.result}}}}/r.txt
        environment: {MINIMAL}
        compute: serverless
        outputs:
          result:
    """)  # fmt: skip
    from_file = write(tmp_path / "file.yml", """
        command: echo from-file > ${{outputs.result}}/r.txt
        environment: file:./env/env.yml
        outputs:
          result:
    """)  # fmt: skip
    for spec in (curated, from_file):
        name = submit(smalt, spec)
        job = wait(smalt, name)
        assert job["status"] == "Completed", job
        assert job["compute"] == "local"
        assert job["outputs"]["result"]["type"] == "uri_folder"
