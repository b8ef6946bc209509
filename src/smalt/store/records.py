"""What the store hands back: plain records, free of SQLAlchemy, for the services to shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; everything smalt writes is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AssetVersionRecord:
    kind: str
    name: str
    version: str
    spec: dict[str, Any]
    digest: str
    archived: bool
    container_archived: bool
    created_at: datetime
    created_by: str
    last_modified_at: datetime

    @property
    def hidden(self) -> bool:
        return self.archived or self.container_archived


@dataclass(frozen=True)
class AssetContainerRecord:
    kind: str
    name: str
    archived: bool
    created_at: datetime
    latest_version: str | None
    version_count: int


@dataclass(frozen=True)
class NamedRecord:
    """A datastore or compute: one record per name, no versions."""

    name: str
    type: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str
    last_modified_at: datetime
    is_default: bool = False
    secrets: str | None = None
