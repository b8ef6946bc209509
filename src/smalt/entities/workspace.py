"""The workspace: one folder (and, for teams, a database and a blob store) holding everything."""

from __future__ import annotations

import re
from datetime import datetime

from smalt.entities.base import Entity

#: The variable that names a workspace folder (read by the services and, before it opens any, the SDK).
WORKSPACE_ENV = "SMALT_WORKSPACE"
#: Azure ML's rule for a workspace name: 3 to 33 letters, digits, hyphens and underscores,
#: starting with a letter or digit.
WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")


class Workspace(Entity):
    """A workspace as ``smalt workspace show`` prints it. The database URL never holds a password."""

    name: str
    path: str
    id: str
    database: str
    blobstore: str
    created_at: datetime
