"""Metric values indexed by run alone: an index on (run, key) took one entry in a different page
for every key of a batch, so a 1,000-key batch rewrote about a thousand pages of it and its cost
grew with the run. Entries by run are appended in order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_run", "metrics", ["run"])
    op.drop_index("ix_metrics_run_key", table_name="metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_run_key", "metrics", ["run", "key"])
    op.drop_index("ix_metrics_run", table_name="metrics")
