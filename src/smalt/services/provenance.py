"""Who made a stored object and when, as Azure ML's ``creation_context``."""

from __future__ import annotations

from smalt.entities import CreationContext
from smalt.store import AssetVersionRecord, JobRecord, NamedRecord


def creation_context(record: AssetVersionRecord | NamedRecord | JobRecord) -> CreationContext:
    return CreationContext(
        created_at=record.created_at,
        created_by=record.created_by,
        last_modified_at=record.last_modified_at,
        last_modified_by=record.created_by,
    )
