"""The metadata schema. Alembic migrations in ``migrations/versions`` create and change it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

asset_containers = Table(
    "asset_containers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("next_version", Integer, nullable=False, default=1),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "name", name="uq_asset_containers_kind_name"),
)

asset_versions = Table(
    "asset_versions",
    metadata,
    # The id grows with every registration: "latest" is the highest id that is not archived.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("version", String(100), nullable=False),
    Column("version_num", Integer, nullable=True),
    Column("spec", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "name", "version", name="uq_asset_versions_kind_name_version"),
)

datastores = Table(
    "datastores",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("spec", JSON, nullable=False),
    # Fernet token of the JSON of the secret credential fields; never leaves the services layer.
    Column("secrets", Text, nullable=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
)

computes = Table(
    "computes",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
)

Index("ix_asset_versions_kind_name", asset_versions.c.kind, asset_versions.c.name)

jobs = Table(
    "jobs",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("display_name", String(255), nullable=True),
    Column("experiment_name", String(255), nullable=False),
    Column("compute", String(255), nullable=False),
    # The resolved, immutable job: code snapshot URI, environment, inputs and planned outputs.
    Column("spec", JSON, nullable=False),
    Column("error", JSON, nullable=True),
    Column("supervisor_pid", Integer, nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
)
Index("ix_jobs_status", jobs.c.status)
Index("ix_jobs_created_at", jobs.c.created_at)
