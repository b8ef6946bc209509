"""Data assets: a versioned pointer to a file, a folder or an MLTable."""

from __future__ import annotations

from typing import ClassVar, Literal

from smalt.entities.base import Asset


class AssetTypes:
    """The type names Azure ML uses for data and models (``AssetTypes.URI_FILE`` ...)."""

    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"
    CUSTOM_MODEL = "custom_model"
    MLFLOW_MODEL = "mlflow_model"
    TRITON_MODEL = "triton_model"


DataType = Literal["uri_file", "uri_folder", "mltable"]


class Data(Asset):
    """A data asset.

    Example::

        Data(name="iris", path="./data/iris.csv", type=AssetTypes.URI_FILE)

    A local ``path`` is uploaded to ``workspaceblobstore`` when the asset is created, stored once
    per content, and replaced by its ``azureml://datastores/...`` URI.
    """

    kind: ClassVar[str] = "data"

    type: DataType = "uri_folder"
    path: str
    #: The datastore a local ``path`` is uploaded to (``azureml:<name>``); ``workspaceblobstore`` if unset.
    datastore: str | None = None
