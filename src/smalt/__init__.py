"""smalt: Azure Machine Learning's model on your own machines.

Example::

    from smalt import MLClient, load_component
    ml_client = MLClient()
    ml_client.components.create_or_update(load_component("train.yml"))

Names are imported on first use, so ``import smalt`` (and ``smalt --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module

# Not `from typing import TYPE_CHECKING`: importing typing would cost every command (the CLI's
# launcher imports this package first) about 15 ms. Type checkers read this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "MLClient": "smalt.client",
    "PipelineJob": "smalt.entities",
    "Input": "smalt.entities",
    "Output": "smalt.entities",
    "command": "smalt.entities",
    "load_component": "smalt.specs",
    "load_job": "smalt.specs",
    "load_data": "smalt.specs",
    "load_environment": "smalt.specs",
    "load_model": "smalt.specs",
    "load_compute": "smalt.specs",
    "load_datastore": "smalt.specs",
    "load_online_endpoint": "smalt.specs",
    "load_online_deployment": "smalt.specs",
    "ManagedOnlineEndpoint": "smalt.entities",
    "ManagedOnlineDeployment": "smalt.entities",
    "CodeConfiguration": "smalt.entities",
    "Model": "smalt.entities",
    "Environment": "smalt.entities",
}

if TYPE_CHECKING:
    from smalt.client import MLClient
    from smalt.client import dsl as dsl
    from smalt.entities import (
        CodeConfiguration,
        Environment,
        Input,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
        Output,
        PipelineJob,
        command,
    )
    from smalt.specs import (
        load_component,
        load_compute,
        load_data,
        load_datastore,
        load_environment,
        load_job,
        load_model,
        load_online_deployment,
        load_online_endpoint,
    )


def __getattr__(name: str) -> Any:
    if name == "dsl":
        return import_module("smalt.client.dsl")
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'smalt' has no attribute {name!r}")


__all__ = [
    "CodeConfiguration", "Environment", "Input", "MLClient", "ManagedOnlineDeployment", "ManagedOnlineEndpoint",
    "Model", "Output", "PipelineJob", "command", "dsl", "load_component", "load_compute", "load_data",
    "load_datastore", "load_environment", "load_job", "load_model",
    "load_online_deployment", "load_online_endpoint",
]  # fmt: skip
