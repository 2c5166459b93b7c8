"""studies: named groups of runs that differ only in declared factors; sweeps become studies

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("study_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_runs_study", "studies", ["study_id"], ["id"])
        batch.create_index("ix_runs_study_id", ["study_id"])
    _sweeps_to_studies()
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_sweep_id")
        batch.drop_column("sweep_id")


def _sweeps_to_studies() -> None:
    """Each earlier sweep becomes a study named ``sweep-<id>`` holding its runs."""
    bind = op.get_bind()
    sweeps = bind.execute(sa.text("SELECT DISTINCT sweep_id FROM runs WHERE sweep_id IS NOT NULL")).scalars()
    for sweep_id in list(sweeps):
        bind.execute(
            sa.text("INSERT INTO studies (name, factors, created_at) VALUES (:n, '{}', CURRENT_TIMESTAMP)"),
            {"n": f"sweep-{sweep_id}"},
        )
        study_id = bind.execute(
            sa.text("SELECT id FROM studies WHERE name = :n"), {"n": f"sweep-{sweep_id}"}
        ).scalar()
        bind.execute(
            sa.text("UPDATE runs SET study_id = :s WHERE sweep_id = :w"), {"s": study_id, "w": sweep_id}
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(64), nullable=True))
        batch.create_index("ix_runs_sweep_id", ["sweep_id"])
    op.execute("UPDATE runs SET sweep_id = CAST(study_id AS VARCHAR(64)) WHERE study_id IS NOT NULL")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_study_id")
        batch.drop_constraint("fk_runs_study", type_="foreignkey")
        batch.drop_column("study_id")
    op.drop_table("studies")
