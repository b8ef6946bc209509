"""Tracking: experiments, run metrics, params, tags, inputs and outputs; logged models; aliases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_containers") as batch:
        batch.add_column(sa.Column("description", sa.Text, nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON, nullable=True))
        batch.add_column(sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("experiment_id", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("parent_name", sa.String(255), nullable=True))
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id"])
    op.create_index("ix_jobs_parent_name", "jobs", ["parent_name"])

    op.create_table(
        "asset_aliases",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("set_by", sa.String(255), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    experiments = op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    op.create_table(
        "run_tags",
        sa.Column("run", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    op.create_table(
        "run_params",
        sa.Column("run", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.String(255), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("dataset_name", sa.String(500), nullable=True),
        sa.Column("dataset_digest", sa.String(64), nullable=True),
    )
    op.create_index("ix_metrics_run_key", "metrics", ["run", "key"])
    op.create_index("ix_metrics_model_id", "metrics", ["model_id"], sqlite_where=sa.text("model_id IS NOT NULL"),
                    postgresql_where=sa.text("model_id IS NOT NULL"))  # fmt: skip
    op.create_table(
        "latest_metrics",
        sa.Column("run", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "run_io",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_index("ix_run_io_run", "run_io", ["run"])
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
        sa.Column("source_run_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("model_type", sa.String(255), nullable=True),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
    )
    op.create_index("ix_logged_models_experiment_id", "logged_models", ["experiment_id"])

    # Experiment 0 is `Default`, as in MLflow; jobs recorded before tracking join their experiment.
    now = int(time.time() * 1000)
    bind = op.get_bind()
    names = ["Default"] + sorted(
        {row[0] for row in bind.execute(sa.text("SELECT DISTINCT experiment_name FROM jobs"))} - {"Default"}
    )
    rows = [
        {"id": i, "name": n, "artifact_location": f"mlflow-artifacts:/experiments/{i}", "lifecycle_stage": "active",
         "creation_time": now, "last_update_time": now}
        for i, n in enumerate(names)
    ]  # fmt: skip
    op.bulk_insert(experiments, rows)
    for row in rows[1:]:
        bind.execute(
            sa.text("UPDATE jobs SET experiment_id = :id WHERE experiment_name = :name"),
            {"id": row["id"], "name": row["name"]},
        )
    if bind.dialect.name == "postgresql":
        # Explicit ids leave the serial sequence behind; move it past them.
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('experiments', 'id'), :n)"), {"n": len(rows)})


# smalt's migrations are forward only: there is no downgrade.
