"""The SDK: ``MLClient`` and its operation groups over the in-process transport, and
``smalt.client.rest`` for a workspace served by ``smalt server``.

Names are imported on first use: the CLI talking to a server imports ``smalt.client.rest`` alone,
without the store, entities or services behind ``MLClient``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smalt.client.ml_client import MLClient
    from smalt.client.operations import (
        AssetOperations,
        ComputeOperations,
        DatastoreOperations,
        JobOperations,
        Poller,
    )

_EXPORTS = {
    "MLClient": "smalt.client.ml_client",
    "AssetOperations": "smalt.client.operations",
    "ComputeOperations": "smalt.client.operations",
    "DatastoreOperations": "smalt.client.operations",
    "JobOperations": "smalt.client.operations",
    "Poller": "smalt.client.operations",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'smalt.client' has no attribute {name!r}")


__all__ = ["AssetOperations", "ComputeOperations", "DatastoreOperations", "JobOperations", "MLClient", "Poller"]
