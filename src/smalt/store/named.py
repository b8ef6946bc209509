"""Datastores, computes and connections: one record per name, replaced as a whole on update."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, delete, select, update
from sqlalchemy.engine import Connection

from smalt.store.dialects import upsert_by_name
from smalt.store.records import NamedRecord, utc
from smalt.store.tables import computes, connections, datastores


class NamedRepository:
    """Create, replace, read and delete records that have a name but no versions."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table
        self._has_secrets = "secrets" in table.c

    def _record(self, row: Row[Any]) -> NamedRecord:
        mapping = row._mapping
        return NamedRecord(
            name=row.name, type=row.type, spec=row.spec, created_at=utc(row.created_at),
            created_by=row.created_by, last_modified_at=utc(row.last_modified_at),
            is_default=bool(mapping.get("is_default", False)), secrets=mapping.get("secrets"),
        )  # fmt: skip

    def get(self, name: str) -> NamedRecord | None:
        row = self._connection.execute(select(self._table).where(self._table.c.name == name)).first()
        return self._record(row) if row is not None else None

    def list(self) -> list[NamedRecord]:
        rows = self._connection.execute(select(self._table).order_by(self._table.c.name)).all()
        return [self._record(r) for r in rows]

    def upsert(
        self,
        name: str,
        type_: str,
        spec: dict[str, Any],
        created_by: str,
        *,
        secrets: str | None = None,
        is_default: bool = False,
    ) -> tuple[NamedRecord, bool]:
        """Create or replace; returns (record, created)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"type": type_, "spec": spec, "last_modified_at": now}
        if self._has_secrets:
            values.update(secrets=secrets, is_default=is_default)
        existing = self._connection.execute(select(self._table.c.name).where(self._table.c.name == name)).first()
        self._connection.execute(
            upsert_by_name(
                self._connection, self._table,
                {"name": name, "created_at": now, "created_by": created_by, **values},
                keep=("created_at", "created_by"),
            )
        )  # fmt: skip
        record = self.get(name)
        assert record is not None
        return record, existing is None

    def set_secrets(self, name: str, secrets: str | None) -> None:
        """Replace the sealed secrets alone (a key rotation)."""
        self._connection.execute(update(self._table).where(self._table.c.name == name).values(secrets=secrets))

    def delete(self, name: str) -> bool:
        result = self._connection.execute(delete(self._table).where(self._table.c.name == name))
        return bool(result.rowcount)


def datastore_repository(connection: Connection) -> NamedRepository:
    return NamedRepository(connection, datastores)


def compute_repository(connection: Connection) -> NamedRepository:
    return NamedRepository(connection, computes)


def connection_repository(connection: Connection) -> NamedRepository:
    return NamedRepository(connection, connections)
