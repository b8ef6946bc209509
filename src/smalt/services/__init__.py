"""The application layer: one module per resource; the only writer of the metadata store."""

from smalt.services.assets import AssetService
from smalt.services.computes import ComputeService
from smalt.services.datastores import DatastoreService
from smalt.services.workspace import WorkspaceContext, current_user, open_workspace, resolve_path

__all__ = [
    "AssetService",
    "ComputeService",
    "DatastoreService",
    "WorkspaceContext",
    "current_user",
    "open_workspace",
    "resolve_path",
]
