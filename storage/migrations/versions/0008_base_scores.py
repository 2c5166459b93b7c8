"""base-model log-probs per pair, shared by every run with the same scoring fingerprint

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("logp_chosen", sa.Float(), nullable=False),
        sa.Column("logp_rejected", sa.Float(), nullable=False),
        sa.UniqueConstraint("fingerprint", "pair_id", name="uq_base_scores_fingerprint_pair"),
    )


def downgrade() -> None:
    op.drop_table("base_scores")
