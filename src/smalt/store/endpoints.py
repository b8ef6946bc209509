"""Online endpoints and deployments: one record each, with the runtime of their processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.engine import Connection

from smalt.store.dialects import upsert
from smalt.store.records import utc
from smalt.store.tables import online_deployments, online_endpoints


@dataclass(frozen=True)
class EndpointRecord:
    name: str
    spec: dict[str, Any]
    secrets: str | None
    runtime: dict[str, Any]
    provisioning_state: str
    created_at: datetime
    created_by: str
    last_modified_at: datetime


@dataclass(frozen=True)
class DeploymentRecord:
    endpoint_name: str
    name: str
    spec: dict[str, Any]
    runtime: dict[str, Any]
    provisioning_state: str
    created_at: datetime
    created_by: str
    last_modified_at: datetime


def _endpoint(row: Row[Any]) -> EndpointRecord:
    return EndpointRecord(
        name=row.name, spec=row.spec, secrets=row.secrets, runtime=row.runtime or {},
        provisioning_state=row.provisioning_state, created_at=utc(row.created_at), created_by=row.created_by,
        last_modified_at=utc(row.last_modified_at),
    )  # fmt: skip


def _deployment(row: Row[Any]) -> DeploymentRecord:
    return DeploymentRecord(
        endpoint_name=row.endpoint_name, name=row.name, spec=row.spec, runtime=row.runtime or {},
        provisioning_state=row.provisioning_state, created_at=utc(row.created_at), created_by=row.created_by,
        last_modified_at=utc(row.last_modified_at),
    )  # fmt: skip


DeploymentRecords = list[DeploymentRecord]


class EndpointRepository:
    """Endpoints and their deployments. ``put_*`` creates or replaces; ``set_*`` changes some fields."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, name: str) -> EndpointRecord | None:
        row = self._connection.execute(select(online_endpoints).where(online_endpoints.c.name == name)).first()
        return _endpoint(row) if row is not None else None

    def list(self) -> list[EndpointRecord]:
        rows = self._connection.execute(select(online_endpoints).order_by(online_endpoints.c.name)).all()
        return [_endpoint(r) for r in rows]

    def put(
        self, name: str, spec: dict[str, Any], created_by: str, *, secrets: str | None,
        runtime: dict[str, Any], provisioning_state: str,
    ) -> EndpointRecord:  # fmt: skip
        now = datetime.now(UTC)
        values = {
            "name": name, "spec": spec, "secrets": secrets, "runtime": runtime,
            "provisioning_state": provisioning_state, "created_at": now, "created_by": created_by,
            "last_modified_at": now,
        }  # fmt: skip
        changes = ("spec", "secrets", "runtime", "provisioning_state", "last_modified_at")
        self._connection.execute(upsert(self._connection, online_endpoints, ("name",), changes).values(**values))
        record = self.get(name)
        assert record is not None
        return record

    def set(self, name: str, **fields: Any) -> None:
        """Change ``spec``, ``secrets``, ``runtime`` or ``provisioning_state`` of one endpoint."""
        fields["last_modified_at"] = datetime.now(UTC)
        self._connection.execute(update(online_endpoints).where(online_endpoints.c.name == name).values(**fields))

    def delete(self, name: str) -> None:
        self._connection.execute(delete(online_deployments).where(online_deployments.c.endpoint_name == name))
        self._connection.execute(delete(online_endpoints).where(online_endpoints.c.name == name))

    def get_deployment(self, endpoint: str, name: str) -> DeploymentRecord | None:
        table = online_deployments
        row = self._connection.execute(
            select(table).where(table.c.endpoint_name == endpoint, table.c.name == name)
        ).first()
        return _deployment(row) if row is not None else None

    def deployments(self, endpoint: str) -> DeploymentRecords:
        table = online_deployments
        rows = self._connection.execute(
            select(table).where(table.c.endpoint_name == endpoint).order_by(table.c.name)
        ).all()
        return [_deployment(r) for r in rows]

    def put_deployment(
        self, endpoint: str, name: str, spec: dict[str, Any], created_by: str, *,
        runtime: dict[str, Any], provisioning_state: str,
    ) -> DeploymentRecord:  # fmt: skip
        now = datetime.now(UTC)
        values = {
            "endpoint_name": endpoint, "name": name, "spec": spec, "runtime": runtime,
            "provisioning_state": provisioning_state, "created_at": now, "created_by": created_by,
            "last_modified_at": now,
        }  # fmt: skip
        changes = ("spec", "runtime", "provisioning_state", "last_modified_at")
        statement = upsert(self._connection, online_deployments, ("endpoint_name", "name"), changes)
        self._connection.execute(statement.values(**values))
        record = self.get_deployment(endpoint, name)
        assert record is not None
        return record

    def set_deployment(self, endpoint: str, name: str, **fields: Any) -> None:
        fields["last_modified_at"] = datetime.now(UTC)
        table = online_deployments
        self._connection.execute(
            update(table).where(table.c.endpoint_name == endpoint, table.c.name == name).values(**fields)
        )

    def delete_deployment(self, endpoint: str, name: str) -> None:
        table = online_deployments
        self._connection.execute(delete(table).where(table.c.endpoint_name == endpoint, table.c.name == name))
