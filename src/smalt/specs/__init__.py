"""Contracts: Azure ML v2 YAML <-> entities, references, and errors with file, line and field."""

from smalt.specs.loader import (
    KINDS,
    from_values,
    load,
    load_component,
    load_compute,
    load_connection,
    load_data,
    load_datastore,
    load_environment,
    load_job,
    load_model,
    load_online_deployment,
    load_online_endpoint,
    prepare,
)
from smalt.specs.references import (
    AssetRef,
    DatastoreUri,
    is_local_path,
    parse_asset_ref,
    parse_datastore_uri,
)

__all__ = [
    "KINDS",
    "AssetRef",
    "DatastoreUri",
    "from_values",
    "is_local_path",
    "load",
    "load_online_deployment",
    "load_online_endpoint",
    "load_component",
    "load_compute",
    "load_data",
    "load_connection",
    "load_datastore",
    "load_environment",
    "load_job",
    "load_model",
    "parse_asset_ref",
    "parse_datastore_uri",
    "prepare",
]
