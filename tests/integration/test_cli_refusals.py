"""A file of a kind smalt does not have yet, given to the command a user would try, is refused in one
line that names the file, the line and the feature; nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "oracle" / "corpus"
Smalt = Callable[..., Any]


@pytest.mark.parametrize(("command", "file"), [
    (("online-endpoint", "create"), "batch-endpoint/batch_endpoint.yml"),
    (("online-endpoint", "create"), "batch-endpoint/batch_endpoint_no_schema.yml"),
    (("online-deployment", "create"), "batch-deployment/model_deployment.yml"),
    (("online-deployment", "create"), "batch-deployment/pipeline_component_deployment.yml"),
    (("job", "create"), "schedule/schedule_cron.yml"),
    (("connection", "create"), "connection/blob.yml"),
    (("connection", "create"), "connection/git.yml"),
    (("workspace", "create"), "workspace/workspace.yml"),
    (("compute", "create"), "registry/registry.yml"),
    (("job", "create"), "job/spark_job.yml"),
    (("job", "create"), "job/automl_classification.yml"),
    (("job", "create"), "job/sweep_job.yml"),
    (("job", "create"), "job/pipeline_parallel_node.yml"),
    (("component", "create"), "component/parallel_component.yml"),
    (("compute", "create"), "compute/kubernetes.yml"),
    (("online-endpoint", "create"), "online-endpoint/kubernetes.yml"),
    (("datastore", "create"), "datastore/azure_data_lake_gen1.yml"),
])  # fmt: skip
def test_a_kind_smalt_lacks_is_refused_in_one_line(smalt: Smalt, command: tuple[str, str], file: str) -> None:
    path = CORPUS / file
    result = smalt(*command, "-f", str(path))
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"Error: {path}") and "not supported yet" in lines[0], result.stderr
    assert all(line.startswith("Hint: ") for line in lines[1:]), result.stderr
    noun = command[0] if command[0] not in ("workspace", "online-deployment") else None
    if noun is not None:
        listed = smalt(noun, "list", "-o", "json")
        assert listed.exit_code == 0, listed.stderr
        assert all(item.get("name") in ("local", "workspaceblobstore") for item in listed.json()), listed.stdout
