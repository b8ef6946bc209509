"""Lineage: edges between jobs, data and models; environment package lists; alias history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("src", sa.String(400), nullable=False),
        sa.Column("dst", sa.String(400), nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("port", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lineage_edges_src", "lineage_edges", ["src"])
    op.create_index("ix_lineage_edges_dst", "lineage_edges", ["dst"])
    op.create_table(
        "environment_packages",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("python", sa.String(32), nullable=True),
        sa.Column("packages", sa.JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "asset_alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.String(100), nullable=True),
        sa.Column("previous_version", sa.String(100), nullable=True),
        sa.Column("set_by", sa.String(255), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_asset_alias_events_kind_name", "asset_alias_events", ["kind", "name"])
