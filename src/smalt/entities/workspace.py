"""The workspace: one folder (and, for teams, a database and a blob store) holding everything."""

from __future__ import annotations

from datetime import datetime

from smalt.entities.base import Entity


class Workspace(Entity):
    """A workspace as ``smalt workspace show`` prints it. The database URL never holds a password."""

    name: str
    path: str
    id: str
    database: str
    blobstore: str
    created_at: datetime
