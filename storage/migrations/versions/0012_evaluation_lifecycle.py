"""evaluations follow the job lifecycle of runs: worker, heartbeat, start, cancel request, traceback

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("traceback", sa.Text(), nullable=True))
        batch.create_index("ix_evaluations_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_index("ix_evaluations_status")
        for column in ("traceback", "cancel_requested", "worker", "heartbeat_at", "started_at"):
            batch.drop_column(column)
