"""Pipelines: the reuse key of each step.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reuse_key", sa.String(64), nullable=True))
    op.create_index("ix_jobs_reuse_key", "jobs", ["reuse_key"])
