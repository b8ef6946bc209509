"""Models: versioned files or folders with a flavour (custom, MLflow, Triton)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from smalt.entities.base import Asset

ModelType = Literal["custom_model", "mlflow_model", "triton_model"]


class Model(Asset):
    """A registered model.

    Example::

        Model(name="credit", path="./model", type="mlflow_model")
    """

    kind: ClassVar[str] = "model"

    type: ModelType = "custom_model"
    path: str
    flavors: dict[str, Any] | None = None
    stage: str | None = None
    #: The job (or MLflow run) that produced the files, when registered from one.
    job_name: str | None = None
    #: Read from an ``mlflow_model``'s MLmodel file when registered: ``signature``,
    #: ``input_example``, ``python_env`` (python, requirements), ``mlflow_version``, ``run_id``.
    mlflow: dict[str, Any] | None = None
