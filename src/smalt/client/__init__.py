"""The SDK: ``MLClient`` and its operation groups, over the in-process transport."""

from smalt.client.ml_client import MLClient
from smalt.client.operations import AssetOperations, ComputeOperations, DatastoreOperations, JobOperations, Poller

__all__ = ["AssetOperations", "ComputeOperations", "DatastoreOperations", "JobOperations", "MLClient", "Poller"]
