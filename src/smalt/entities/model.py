"""Models: versioned files or folders with a flavour (custom, MLflow, Triton)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from smalt.entities.base import Asset, Entity

ModelType = Literal["custom_model", "mlflow_model", "triton_model"]


class Model(Asset):
    """A registered model.

    Example::

        Model(name="credit", path="./model", type="mlflow_model")
    """

    kind: ClassVar[str] = "model"

    type: ModelType = "custom_model"
    path: str
    #: The datastore a local ``path`` is uploaded to (``azureml:<name>``); ``workspaceblobstore`` if unset.
    datastore: str | None = None
    flavors: dict[str, Any] | None = None
    stage: str | None = None
    #: The job (or MLflow run) that produced the files, when registered from one.
    job_name: str | None = None
    #: Read from an ``mlflow_model``'s MLmodel file when registered: ``signature``,
    #: ``input_example``, ``python_env`` (python, requirements), ``mlflow_version``, ``run_id``.
    mlflow: dict[str, Any] | None = None


class AssetAlias(Entity):
    """A name pointing at one version (``production`` -> ``3``), and who set it when."""

    alias: str
    version: str
    set_by: str
    set_at: datetime


class AliasMove(Entity):
    """One change of an alias: ``version`` None is a removal, ``previous_version`` None a first set."""

    alias: str
    version: str | None
    previous_version: str | None
    set_by: str
    set_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # None is meaningful here: first set, or removed
