"""An index for a pipeline step's history: the latest earlier run of the same step, which every
step that runs is compared with (its run reason), found without reading the experiment's jobs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_step_history", "jobs", ["experiment_id", "display_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_step_history", table_name="jobs")
