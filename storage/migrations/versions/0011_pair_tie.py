"""pairs record whether chosen and rejected are the same text (a tie), backfilled from the text

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BATCH = 500

_pairs = sa.table(
    "pairs",
    sa.column("id", sa.Integer()),
    sa.column("chosen", sa.Text()),
    sa.column("rejected", sa.Text()),
    sa.column("tie", sa.Boolean()),
)


def _is_tie(chosen: str, rejected: str) -> bool:
    """``capo.data.triples.is_tie`` as of this revision: equal once runs of whitespace are collapsed.

    A copy, because storage may not import ``capo`` (tests/test_architecture.py) and a migration
    must not change with later code; tests/storage/test_storage.py checks that the two agree."""
    return " ".join(chosen.split()) == " ".join(rejected.split())


def upgrade() -> None:
    with op.batch_alter_table("pairs") as batch:
        batch.add_column(sa.Column("tie", sa.Boolean(), nullable=False, server_default=sa.false()))
    _backfill_ties()


def _backfill_ties() -> None:
    """Existing pairs get their tie from their text (whitespace rules SQL cannot state portably)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_pairs.c.id, _pairs.c.chosen, _pairs.c.rejected)).all()
    ties = [pair_id for pair_id, chosen, rejected in rows if _is_tie(chosen, rejected)]
    for start in range(0, len(ties), _BATCH):
        chunk = ties[start : start + _BATCH]
        bind.execute(sa.update(_pairs).where(_pairs.c.id.in_(chunk)).values(tie=True))


def downgrade() -> None:
    with op.batch_alter_table("pairs") as batch:
        batch.drop_column("tie")
