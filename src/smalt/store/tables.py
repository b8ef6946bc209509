"""The metadata schema. Alembic migrations in ``migrations/versions`` create and change it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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
    # Mutable metadata of the asset as a whole (MLflow's registered model description and tags).
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=True),
    Column("last_modified_at", DateTime(timezone=True), nullable=True),
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

# Workspace connections: like datastores, their secrets sealed apart from the spec.
connections = Table(
    "connections",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("spec", JSON, nullable=False),
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
    Column("experiment_id", Integer, nullable=False, default=0),
    # A pipeline step, sweep trial or nested MLflow run points at its parent job.
    Column("parent_name", String(255), nullable=True),
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
    # A pipeline step's reuse key: the digest of all that decides its outputs (DESIGN: Pipelines).
    Column("reuse_key", String(64), nullable=True),
)
Index("ix_jobs_status", jobs.c.status)
Index("ix_jobs_reuse_key", jobs.c.reuse_key)
Index("ix_jobs_created_at", jobs.c.created_at)
Index("ix_jobs_experiment_id", jobs.c.experiment_id)
Index("ix_jobs_parent_name", jobs.c.parent_name)
# A pipeline step's earlier runs (JobRepository.earlier_steps), newest first.
Index("ix_jobs_step_history", jobs.c.experiment_id, jobs.c.display_name, jobs.c.created_at)

# Alias -> version of an asset (MLflow's registered model aliases; `azureml:<name>@<alias>`).
asset_aliases = Table(
    "asset_aliases",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", String(100), nullable=False),
    Column("set_by", String(255), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

# Experiments group runs (jobs). Id 0 is `Default`, as in MLflow. Times are epoch milliseconds.
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=True),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run", String(255), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=True),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run", String(255), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every logged value, in bulk. NaN is stored as NULL with is_nan set (SQLite has no NaN).
metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run", String(255), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("model_id", String(64), nullable=True),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(64), nullable=True),
)
# By run alone, not (run, key): a batch of many keys then adds its entries at the end of one run's
# range instead of one in each page of it (migration 0008). A key's history scans its run's values.
Index("ix_metrics_run", metrics.c.run)
# Partial: most metrics belong to no logged model, and each index costs every insert. Migration 0003
# makes it partial on PostgreSQL too; naming postgresql_where here would import the PostgreSQL
# dialect into every SQLite-only command (about 50 ms).
Index("ix_metrics_model_id", metrics.c.model_id, sqlite_where=metrics.c.model_id.isnot(None))

# The value MLflow calls "latest" per run and key: highest step, then timestamp, then value.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run", String(255), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
)
Index("ix_latest_metrics_key_value", latest_metrics.c.key, latest_metrics.c.value)

# Datasets a run read (log-inputs) and models it produced (log-outputs), as MLflow sends them.
run_io = Table(
    "run_io",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run", String(255), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", String(600), nullable=False),
    Column("payload", JSON, nullable=False),
)
Index("ix_run_io_run", run_io.c.run)

# MLflow 3 logged models: a model's artifacts and metadata before (or without) registration.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("source_run_id", String(255), nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("model_type", String(255), nullable=True),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("params", JSON, nullable=False),
)
Index("ix_logged_models_experiment_id", logged_models.c.experiment_id)

# Lineage, recorded as work happens: an edge says ``src`` fed or produced ``dst``. Nodes are
# ``job:<name>``, ``data:<name>:<version>`` and ``model:<name>:<version>``; ``relation`` is
# ``input`` (an asset or a job's output read by a job), ``output`` (a data version a job wrote)
# or ``model`` (a model version registered from a job); ``port`` names the job's input or output.
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("src", String(400), nullable=False),
    Column("dst", String(400), nullable=False),
    Column("relation", String(16), nullable=False),
    Column("port", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_lineage_edges_src", lineage_edges.c.src)
Index("ix_lineage_edges_dst", lineage_edges.c.dst)

# The packages installed in a built environment, by its digest: what a job's environment held.
environment_packages = Table(
    "environment_packages",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("python", String(32), nullable=True),
    Column("packages", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# Every move of an alias (set, moved or removed), with who and when: promotion history.
asset_alias_events = Table(
    "asset_alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("version", String(100), nullable=True),
    Column("previous_version", String(100), nullable=True),
    Column("set_by", String(255), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)
Index("ix_asset_alias_events_kind_name", asset_alias_events.c.kind, asset_alias_events.c.name)

# Online endpoints: the spec as given, the Fernet token of their keys and token-signing secret,
# and where their router runs (port, pid).
online_endpoints = Table(
    "online_endpoints",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("secrets", Text, nullable=True),
    Column("runtime", JSON, nullable=False),
    Column("provisioning_state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
)

# Deployments behind an endpoint; runtime holds the generation being served and its instances.
online_deployments = Table(
    "online_deployments",
    metadata,
    Column("endpoint_name", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("runtime", JSON, nullable=False),
    Column("provisioning_state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_modified_at", DateTime(timezone=True), nullable=False),
)

# Who may call a server (its own workspace's store holds them): users and service principals, with
# the hash of their password or client secret (argon2), never the secret.
principals = Table(
    "principals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("name", name="uq_principals_name"),
)

# Personal access tokens: the SHA-256 of the token's secret part (a random 256-bit value, which a
# slow hash would not make safer), when it expires, and whether it was revoked.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal_id", String(36), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("principal_id", "name", name="uq_access_tokens_principal_id_name"),
)

# Custom roles, as Azure's JSON writes them (the built-in ones live in entities/role.py).
role_definitions = Table(
    "role_definitions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("principal_id", String(36), nullable=False),
    Column("role", String(128), nullable=False),
    Column("scope", String(512), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("principal_id", "role", "scope", name="uq_role_assignments_principal_id_role_scope"),
)
Index("ix_role_assignments_principal_id", role_assignments.c.principal_id)

# The audit log: appended to, never changed through the API.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(255), nullable=False),
    Column("action", String(512), nullable=False),
    Column("resource", String(1024), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("client", String(255), nullable=False),
    Column("workspace", String(255), nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_principal", audit_log.c.principal)
