"""Versioned assets (data, environments, components, models) in the metadata store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from smalt.errors import VersionConflictError
from smalt.store.dialects import insert_ignoring_conflicts
from smalt.store.records import AssetContainerRecord, AssetVersionRecord, utc
from smalt.store.tables import asset_containers as containers
from smalt.store.tables import asset_versions as versions

#: How messages name each kind of asset.
NOUNS = {"data": "Data asset", "environment": "Environment", "component": "Component", "model": "Model"}


def _version_num(version: str) -> int | None:
    return int(version) if version.isdigit() and len(version) < 10 else None


def _record(row: Row[*tuple[Any, ...]]) -> AssetVersionRecord:
    return AssetVersionRecord(
        kind=row.kind, name=row.name, version=row.version, spec=row.spec, digest=row.digest,
        archived=row.archived, container_archived=row.container_archived,
        created_at=utc(row.created_at), created_by=row.created_by,
        last_modified_at=utc(row.last_modified_at),
    )  # fmt: skip


_VERSION_COLUMNS = (
    versions.c.kind, versions.c.name, versions.c.version, versions.c.spec, versions.c.digest,
    versions.c.archived, containers.c.archived.label("container_archived"), versions.c.created_at,
    versions.c.created_by, versions.c.last_modified_at,
)  # fmt: skip
_JOIN = versions.join(containers, and_(containers.c.kind == versions.c.kind, containers.c.name == versions.c.name))


class AssetRepository:
    """Asset containers and their versions, inside one connection (the caller's transaction)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create_version(
        self, kind: str, name: str, version: str | None, spec: dict[str, Any], digest: str, created_by: str
    ) -> tuple[AssetVersionRecord, bool]:
        """Register a version; with ``version=None`` the next integer. Returns (record, created).

        An explicit version that exists with the same digest is returned unchanged (created is
        False); with another digest it is a VersionConflictError.
        """
        now = datetime.now(UTC)
        self._connection.execute(
            insert_ignoring_conflicts(self._connection, containers).values(
                kind=kind, name=name, next_version=1, archived=False, created_at=now
            )
        )
        # Lock the container row: concurrent registrations of one name take turns (PostgreSQL);
        # SQLite's write transactions are serialised at BEGIN IMMEDIATE already.
        next_version = self._connection.execute(
            select(containers.c.next_version)
            .where(containers.c.kind == kind, containers.c.name == name)
            .with_for_update()
        ).scalar_one()
        if version is None:
            highest = self._connection.execute(
                select(func.max(versions.c.version_num)).where(versions.c.kind == kind, versions.c.name == name)
            ).scalar()
            version = str(max(next_version, (highest or 0) + 1))
        else:
            existing = self.get(kind, name, version)
            if existing is not None:
                if existing.digest == digest:
                    return existing, False
                raise VersionConflictError(
                    f"{NOUNS.get(kind, kind)} '{name}:{version}' already exists with different content.",
                    hint=f"leave out the version to register the next one, or choose a new version "
                    f"(smalt {kind} list --name {name} shows those taken)",
                )
        number = _version_num(version)
        try:
            with self._connection.begin_nested():
                self._connection.execute(
                    versions.insert().values(
                        kind=kind,
                        name=name,
                        version=version,
                        version_num=number,
                        spec=spec,
                        digest=digest,
                        archived=False,
                        created_at=now,
                        created_by=created_by,
                        last_modified_at=now,
                    )  # fmt: skip
                )
        except IntegrityError as exc:
            raise VersionConflictError(
                f"{NOUNS.get(kind, kind)} '{name}:{version}' was registered by someone else at the same time.",
                hint="try again, or leave out the version",
            ) from exc
        if number is not None and number >= next_version:
            self._connection.execute(
                update(containers)
                .where(containers.c.kind == kind, containers.c.name == name)
                .values(next_version=number + 1)
            )
        record = self.get(kind, name, version)
        assert record is not None
        return record, True

    def get(self, kind: str, name: str, version: str) -> AssetVersionRecord | None:
        row = self._connection.execute(
            select(*_VERSION_COLUMNS)
            .select_from(_JOIN)
            .where(versions.c.kind == kind, versions.c.name == name, versions.c.version == version)
        ).first()
        return _record(row) if row is not None else None

    def latest(self, kind: str, name: str) -> AssetVersionRecord | None:
        """The most recently created version that is not archived (Azure ML's ``latest``)."""
        row = self._connection.execute(
            select(*_VERSION_COLUMNS).select_from(_JOIN)
            .where(versions.c.kind == kind, versions.c.name == name,
                   versions.c.archived.is_(False), containers.c.archived.is_(False))
            .order_by(versions.c.id.desc()).limit(1)
        ).first()  # fmt: skip
        return _record(row) if row is not None else None

    def list_versions(self, kind: str, name: str, include_archived: bool = False) -> list[AssetVersionRecord]:
        query = select(*_VERSION_COLUMNS).select_from(_JOIN).where(versions.c.kind == kind, versions.c.name == name)
        if not include_archived:
            query = query.where(versions.c.archived.is_(False), containers.c.archived.is_(False))
        rows = self._connection.execute(query.order_by(versions.c.id.desc())).all()
        return [_record(r) for r in rows]

    def list_containers(self, kind: str, include_archived: bool = False) -> list[AssetContainerRecord]:
        inner = versions.alias("live")
        latest_id = (
            select(func.max(inner.c.id))
            .where(inner.c.kind == containers.c.kind, inner.c.name == containers.c.name, inner.c.archived.is_(False))
            .correlate(containers)
            .scalar_subquery()
        )
        count = (
            select(func.count(versions.c.id))
            .where(versions.c.kind == containers.c.kind, versions.c.name == containers.c.name)
            .correlate(containers)
            .scalar_subquery()
        )
        latest_version = (
            select(versions.c.version).where(versions.c.id == latest_id).correlate(containers).scalar_subquery()
        )
        query = select(
            containers.c.kind, containers.c.name, containers.c.archived, containers.c.created_at,
            latest_version.label("latest_version"), count.label("version_count"),
        ).where(containers.c.kind == kind)  # fmt: skip
        if not include_archived:
            query = query.where(containers.c.archived.is_(False))
        rows = self._connection.execute(query.order_by(containers.c.name)).all()
        return [
            AssetContainerRecord(r.kind, r.name, r.archived, utc(r.created_at), r.latest_version, r.version_count)
            for r in rows
            if r.version_count
        ]

    def container_exists(self, kind: str, name: str) -> bool:
        return (
            self._connection.execute(
                select(containers.c.id).where(containers.c.kind == kind, containers.c.name == name)
            ).first()
            is not None
        )

    def version_names(self, kind: str, name: str) -> list[str]:
        rows = self._connection.execute(
            select(versions.c.version).where(versions.c.kind == kind, versions.c.name == name)
            .order_by(versions.c.id)
        ).scalars()  # fmt: skip
        return list(rows)

    def all_names(self, kind: str) -> list[str]:
        return list(self._connection.execute(
            select(containers.c.name).where(containers.c.kind == kind).order_by(containers.c.name)
        ).scalars())  # fmt: skip

    def set_archived(self, kind: str, name: str, version: str | None, archived: bool) -> int:
        """Archive or restore one version, or with ``version=None`` the whole container."""
        now = datetime.now(UTC)
        if version is None:
            result = self._connection.execute(
                update(containers).where(containers.c.kind == kind, containers.c.name == name)
                .values(archived=archived)
            )  # fmt: skip
        else:
            result = self._connection.execute(
                update(versions)
                .where(versions.c.kind == kind, versions.c.name == name, versions.c.version == version)
                .values(archived=archived, last_modified_at=now)
            )
        return int(result.rowcount)
