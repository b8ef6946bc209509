"""Versioned assets (data, environments, components, models) in the metadata store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from smalt.errors import VersionConflictError
from smalt.store.dialects import insert_ignoring_conflicts
from smalt.store.records import AssetContainerRecord, AssetVersionRecord, utc
from smalt.store.tables import asset_alias_events as alias_events
from smalt.store.tables import asset_aliases as alias_rows
from smalt.store.tables import asset_containers as containers
from smalt.store.tables import asset_versions as versions

#: How messages name each kind of asset.
NOUNS = {"data": "Data asset", "environment": "Environment", "component": "Component", "model": "Model"}


@dataclass(frozen=True)
class ContainerDetail:
    """An asset as a whole with its mutable metadata (MLflow's registered model)."""

    kind: str
    name: str
    archived: bool
    created_at: datetime
    #: When its metadata or versions last changed; the creation time until then.
    last_modified_at: datetime
    description: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class AliasRecord:
    """A name that points at one version of an asset (``champion`` -> ``3``), and who set it when."""

    kind: str
    name: str
    alias: str
    version: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: ``version`` None is a removal, ``previous_version`` None a first set."""

    alias: str
    version: str | None
    previous_version: str | None
    set_by: str
    set_at: datetime


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

    def list_versions(self, kind: str, name: str, include_archived: bool = False,
                      limit: int | None = None) -> list[AssetVersionRecord]:  # fmt: skip
        """The versions of ``name``, newest first (the first ``limit`` of them)."""
        query = select(*_VERSION_COLUMNS).select_from(_JOIN).where(versions.c.kind == kind, versions.c.name == name)
        if not include_archived:
            query = query.where(versions.c.archived.is_(False), containers.c.archived.is_(False))
        rows = self._connection.execute(query.order_by(versions.c.id.desc()).limit(limit)).all()
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

    # -- the container's own metadata ---------------------------------------------------------
    def container(self, kind: str, name: str) -> ContainerDetail | None:
        row = self._connection.execute(
            select(containers).where(containers.c.kind == kind, containers.c.name == name)
        ).first()
        return _container(row) if row is not None else None

    def create_container(self, kind: str, name: str, *, description: str | None = None,
                         tags: dict[str, str] | None = None) -> bool:  # fmt: skip
        """An asset with no versions yet. False when the name is taken (archived or not)."""
        now = datetime.now(UTC)
        result = self._connection.execute(
            insert_ignoring_conflicts(self._connection, containers)
            .values(
                kind=kind,
                name=name,
                next_version=1,
                archived=False,
                created_at=now,
                description=description,
                tags=dict(tags or {}),
                last_modified_at=now,
            )
            # rowcount is not reliable for INSERT ... ON CONFLICT on PostgreSQL; a returned row is.
            .returning(containers.c.id)
        )
        return result.first() is not None

    def revive_container(self, kind: str, name: str, *, description: str | None = None,
                         tags: dict[str, str] | None = None) -> None:  # fmt: skip
        """Make an archived asset live again as if new: its old versions stay archived, its aliases
        go, and numbering goes on after the highest version it ever had."""
        now = datetime.now(UTC)
        self._connection.execute(
            update(versions).where(versions.c.kind == kind, versions.c.name == name, versions.c.archived.is_(False))
            .values(archived=True, last_modified_at=now)
        )  # fmt: skip
        self.delete_aliases(kind, name)
        self._connection.execute(
            update(containers).where(containers.c.kind == kind, containers.c.name == name)
            .values(archived=False, created_at=now, last_modified_at=now, description=description,
                    tags=dict(tags or {}))
        )  # fmt: skip

    def update_container(self, kind: str, name: str, *, description: str | None = None,
                         tags: dict[str, str] | None = None, touch: bool = True) -> int:  # fmt: skip
        """Replace the description and/or the tags (None leaves one as it is); ``touch`` records
        the change time. Returns how many containers changed (0: no such asset)."""
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if tags is not None:
            values["tags"] = dict(tags)
        if touch:
            values["last_modified_at"] = datetime.now(UTC)
        if not values:
            return 1 if self.container_exists(kind, name) else 0
        result = self._connection.execute(
            update(containers).where(containers.c.kind == kind, containers.c.name == name).values(**values)
        )
        return int(result.rowcount)

    def rename_container(self, kind: str, name: str, new_name: str) -> None:
        """Rename an asset; its versions and aliases follow. The caller checks ``new_name`` is free."""
        now = datetime.now(UTC)
        self._connection.execute(
            update(containers).where(containers.c.kind == kind, containers.c.name == name)
            .values(name=new_name, last_modified_at=now)
        )  # fmt: skip
        rows = self._connection.execute(
            select(versions.c.id, versions.c.spec).where(versions.c.kind == kind, versions.c.name == name)
        ).all()
        for row in rows:
            # The spec keeps the name it was registered under; a renamed asset's versions carry the new one.
            spec = dict(row.spec)
            if "name" in spec:
                spec["name"] = new_name
            self._connection.execute(
                update(versions).where(versions.c.id == row.id).values(name=new_name, spec=spec, last_modified_at=now)
            )
        self._connection.execute(
            update(alias_rows).where(alias_rows.c.kind == kind, alias_rows.c.name == name).values(name=new_name)
        )

    # -- a version's mutable metadata ---------------------------------------------------------
    def update_spec(self, kind: str, name: str, version: str, spec: dict[str, Any], *, touch: bool = True) -> int:
        """Replace a version's spec keeping its digest: only for metadata that is not its content
        (tags, description, stage). Returns how many versions changed (0: no such version)."""
        values: dict[str, Any] = {"spec": spec}
        if touch:
            values["last_modified_at"] = datetime.now(UTC)
        result = self._connection.execute(
            update(versions)
            .where(versions.c.kind == kind, versions.c.name == name, versions.c.version == version)
            .values(**values)
        )
        return int(result.rowcount)

    # -- aliases ------------------------------------------------------------------------------
    def set_alias(self, kind: str, name: str, alias: str, version: str, set_by: str) -> None:
        """Point ``alias`` at ``version``, moving it if it pointed elsewhere; the move is kept in
        the alias history."""
        previous = self.alias(kind, name, alias)
        if previous is not None and previous.version == version:
            return
        self._connection.execute(
            delete(alias_rows).where(alias_rows.c.kind == kind, alias_rows.c.name == name, alias_rows.c.alias == alias)
        )
        now = datetime.now(UTC)
        self._connection.execute(
            alias_rows.insert().values(kind=kind, name=name, alias=alias, version=version, set_by=set_by, set_at=now)
        )
        self._alias_event(kind, name, alias, version, previous.version if previous else None, set_by, now)

    def delete_alias(self, kind: str, name: str, alias: str, deleted_by: str = "") -> bool:
        previous = self.alias(kind, name, alias)
        if previous is None:
            return False
        self._connection.execute(
            delete(alias_rows).where(alias_rows.c.kind == kind, alias_rows.c.name == name, alias_rows.c.alias == alias)
        )
        self._alias_event(kind, name, alias, None, previous.version, deleted_by, datetime.now(UTC))
        return True

    def delete_aliases(self, kind: str, name: str, version: str | None = None, deleted_by: str = "") -> int:
        """Remove every alias of an asset, or only those pointing at ``version``."""
        removed = [a for a in self.aliases_of(kind, [name]) if version is None or a.version == version]
        for found in removed:
            self.delete_alias(kind, name, found.alias, deleted_by)
        return len(removed)

    def _alias_event(self, kind: str, name: str, alias: str, version: str | None, previous: str | None,
                     by: str, at: datetime) -> None:  # fmt: skip
        self._connection.execute(alias_events.insert().values(
            kind=kind, name=name, alias=alias, version=version, previous_version=previous, set_by=by, set_at=at,
        ))  # fmt: skip

    def alias_history(self, kind: str, name: str) -> list[AliasEvent]:
        """Every set, move and removal of the asset's aliases, oldest first."""
        rows = self._connection.execute(
            select(alias_events).where(alias_events.c.kind == kind, alias_events.c.name == name)
            .order_by(alias_events.c.id)
        ).all()  # fmt: skip
        return [AliasEvent(r.alias, r.version, r.previous_version, r.set_by, utc(r.set_at)) for r in rows]

    def alias(self, kind: str, name: str, alias: str) -> AliasRecord | None:
        row = self._connection.execute(
            select(alias_rows).where(alias_rows.c.kind == kind, alias_rows.c.name == name, alias_rows.c.alias == alias)
        ).first()
        return _alias(row) if row is not None else None

    def aliases_of(self, kind: str, names: list[str]) -> list[AliasRecord]:
        """The aliases of the assets ``names``, by name then alias."""
        if not names:
            return []
        rows = self._connection.execute(
            select(alias_rows).where(alias_rows.c.kind == kind, alias_rows.c.name.in_(names))
            .order_by(alias_rows.c.name, alias_rows.c.alias)
        ).all()  # fmt: skip
        return [_alias(r) for r in rows]

    def versions_of(self, kind: str, names: list[str], include_archived: bool = False) -> list[AssetVersionRecord]:
        """Every version of the assets ``names``, by name then oldest first."""
        if not names:
            return []
        query = select(*_VERSION_COLUMNS).select_from(_JOIN).where(versions.c.kind == kind, versions.c.name.in_(names))
        if not include_archived:
            query = query.where(versions.c.archived.is_(False), containers.c.archived.is_(False))
        rows = self._connection.execute(query.order_by(versions.c.name, versions.c.id)).all()
        return [_record(r) for r in rows]

    def container_details(self, kind: str, names: list[str]) -> list[ContainerDetail]:
        """The containers ``names`` that exist, in that order."""
        if not names:
            return []
        rows = self._connection.execute(
            select(containers).where(containers.c.kind == kind, containers.c.name.in_(names))
        ).all()
        found = {r.name: _container(r) for r in rows}
        return [found[n] for n in names if n in found]


def _container(row: Row[*tuple[Any, ...]]) -> ContainerDetail:
    created = utc(row.created_at)
    return ContainerDetail(
        kind=row.kind, name=row.name, archived=row.archived, created_at=created,
        last_modified_at=utc(row.last_modified_at) if row.last_modified_at is not None else created,
        description=row.description, tags=dict(row.tags or {}),
    )  # fmt: skip


def _alias(row: Row[*tuple[Any, ...]]) -> AliasRecord:
    return AliasRecord(row.kind, row.name, row.alias, row.version, row.set_by, utc(row.set_at))
