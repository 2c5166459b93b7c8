"""per-token log-probs of evaluated pairs (float32 arrays) and each run's response tokens as text

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pair_scores", sa.Column("chosen_token_logps", sa.LargeBinary(), nullable=True))
    op.add_column("pair_scores", sa.Column("rejected_token_logps", sa.LargeBinary(), nullable=True))
    op.create_table(
        "token_pieces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("chosen", sa.JSON(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.UniqueConstraint("run_id", "pair_id", name="uq_token_pieces_run_pair"),
    )


def downgrade() -> None:
    op.drop_table("token_pieces")
    with op.batch_alter_table("pair_scores") as batch:
        batch.drop_column("rejected_token_logps")
        batch.drop_column("chosen_token_logps")
