"""Who may call a server and what they did: principals, access tokens, custom roles, role
assignments and the audit log, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.engine import Connection

from smalt.store.records import utc
from smalt.store.tables import access_tokens, audit_log, principals, role_assignments, role_definitions


@dataclass(frozen=True)
class PrincipalRecord:
    id: str
    name: str
    kind: str
    secret_hash: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class TokenRecord:
    id: str
    principal_id: str
    name: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AssignmentRecord:
    id: str
    principal_id: str
    role: str
    scope: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class RoleRecord:
    name: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    principal: str
    action: str
    resource: str
    outcome: str
    status: int
    request_id: str
    client: str
    workspace: str | None


def _principal(row: Row[Any]) -> PrincipalRecord:
    return PrincipalRecord(row.id, row.name, row.kind, row.secret_hash, utc(row.created_at), row.created_by)


def _token(row: Row[Any]) -> TokenRecord:
    revoked = utc(row.revoked_at) if row.revoked_at is not None else None
    return TokenRecord(row.id, row.principal_id, row.name, row.secret_hash, utc(row.created_at),
                       utc(row.expires_at), revoked)  # fmt: skip


def _assignment(row: Row[Any]) -> AssignmentRecord:
    return AssignmentRecord(row.id, row.principal_id, row.role, row.scope, utc(row.created_at), row.created_by)


class AccessRepository:
    """Principals, their tokens, roles and assignments, and the audit log."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- principals ---------------------------------------------------------------------------
    def add_principal(self, record: PrincipalRecord) -> None:
        self._connection.execute(insert(principals).values(**record.__dict__))

    def principal(self, *, name: str | None = None, id: str | None = None) -> PrincipalRecord | None:
        column, value = (principals.c.name, name) if name is not None else (principals.c.id, id)
        row = self._connection.execute(select(principals).where(column == value)).first()
        return _principal(row) if row is not None else None

    def principals(self) -> list[PrincipalRecord]:
        rows = self._connection.execute(select(principals).order_by(principals.c.name)).all()
        return [_principal(r) for r in rows]

    def any_principal(self) -> bool:
        return self._connection.execute(select(principals.c.id).limit(1)).first() is not None

    def set_secret(self, principal_id: str, secret_hash: str) -> None:
        self._connection.execute(update(principals).where(principals.c.id == principal_id)
                                 .values(secret_hash=secret_hash))  # fmt: skip

    def delete_principal(self, principal_id: str) -> None:
        """The principal, its tokens and its role assignments."""
        self._connection.execute(delete(access_tokens).where(access_tokens.c.principal_id == principal_id))
        self._connection.execute(delete(role_assignments).where(role_assignments.c.principal_id == principal_id))
        self._connection.execute(delete(principals).where(principals.c.id == principal_id))

    # -- personal access tokens ---------------------------------------------------------------
    def add_token(self, record: TokenRecord) -> None:
        self._connection.execute(insert(access_tokens).values(**record.__dict__))

    def token(self, token_id: str) -> TokenRecord | None:
        row = self._connection.execute(select(access_tokens).where(access_tokens.c.id == token_id)).first()
        return _token(row) if row is not None else None

    def tokens(self, principal_id: str | None = None) -> list[TokenRecord]:
        query = select(access_tokens).order_by(access_tokens.c.created_at)
        if principal_id is not None:
            query = query.where(access_tokens.c.principal_id == principal_id)
        return [_token(r) for r in self._connection.execute(query).all()]

    def revoke_token(self, token_id: str, at: datetime) -> bool:
        done = self._connection.execute(update(access_tokens)
                                        .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
                                        .values(revoked_at=at))  # fmt: skip
        return bool(done.rowcount)

    # -- roles ----------------------------------------------------------------------------------
    def put_role(self, name: str, spec: dict[str, Any], at: datetime, by: str) -> None:
        if self.role(name) is None:
            self._connection.execute(
                insert(role_definitions).values(name=name, spec=spec, created_at=at, created_by=by)
            )
        else:
            self._connection.execute(update(role_definitions).where(role_definitions.c.name == name).values(spec=spec))

    def role(self, name: str) -> RoleRecord | None:
        row = self._connection.execute(select(role_definitions).where(role_definitions.c.name == name)).first()
        return RoleRecord(row.name, row.spec, utc(row.created_at), row.created_by) if row is not None else None

    def roles(self) -> list[RoleRecord]:
        rows = self._connection.execute(select(role_definitions).order_by(role_definitions.c.name)).all()
        return [RoleRecord(r.name, r.spec, utc(r.created_at), r.created_by) for r in rows]

    def delete_role(self, name: str) -> bool:
        return bool(self._connection.execute(delete(role_definitions).where(role_definitions.c.name == name)).rowcount)

    # -- role assignments -------------------------------------------------------------------------
    def add_assignment(self, record: AssignmentRecord) -> None:
        self._connection.execute(insert(role_assignments).values(**record.__dict__))

    def assignments(self, *, principal_id: str | None = None, role: str | None = None) -> list[AssignmentRecord]:
        query = select(role_assignments).order_by(role_assignments.c.created_at)
        if principal_id is not None:
            query = query.where(role_assignments.c.principal_id == principal_id)
        if role is not None:
            query = query.where(role_assignments.c.role == role)
        return [_assignment(r) for r in self._connection.execute(query).all()]

    def delete_assignment(self, assignment_id: str) -> bool:
        done = self._connection.execute(delete(role_assignments).where(role_assignments.c.id == assignment_id))
        return bool(done.rowcount)

    # -- the audit log --------------------------------------------------------------------------
    def append_audit(self, entries: list[dict[str, Any]]) -> None:
        if entries:
            self._connection.execute(insert(audit_log), entries)

    def audit(self, *, since: datetime | None = None, principal: str | None = None, action: str | None = None,
              limit: int = 1000) -> list[AuditRecord]:  # fmt: skip
        """The newest entries first (``action``: a prefix, compared without case)."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if since is not None:
            # Kept in UTC (SQLite keeps no offset): another zone's time is the same instant in UTC.
            since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
            query = query.where(audit_log.c.at >= since)
        if principal is not None:
            query = query.where(audit_log.c.principal == principal)
        if action is not None:
            query = query.where(audit_log.c.action.ilike(action.replace("\\", "\\\\").replace("%", "\\%")
                                                         .replace("_", "\\_") + "%", escape="\\"))  # fmt: skip
        return [AuditRecord(r.id, utc(r.at), r.principal, r.action, r.resource, r.outcome, r.status, r.request_id,
                            r.client, r.workspace) for r in self._connection.execute(query).all()]  # fmt: skip
