"""benchmark jobs (M-IFEval, XLSum, MT-Bench) in the job lifecycle, their per-item answers and
scores, and the judge's replies cached by prompt key

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _lifecycle() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("evaluated_step", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("traceback", sa.Text(), nullable=True),
    ]


def _run_id() -> sa.Column:
    return sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def _benchmark_id() -> sa.Column:
    return sa.Column(
        "benchmark_id", sa.Integer(), sa.ForeignKey("benchmarks.id", ondelete="CASCADE"), nullable=False
    )


def _item() -> list[sa.Column]:
    return [
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "benchmarks",
        sa.Column("id", sa.Integer(), primary_key=True),
        _run_id(),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("suite", sa.String(16), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("base", sa.Boolean(), nullable=False),
        sa.Column("max_new_tokens", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("template", sa.String(16), nullable=False),
        sa.Column("judge_requests", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        *_lifecycle(),
    )
    op.create_index("ix_benchmarks_run", "benchmarks", ["run_id"])
    op.create_index("ix_benchmarks_status", "benchmarks", ["status"])
    op.create_table(
        "benchmark_generations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _benchmark_id(),
        _run_id(),
        *_item(),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("max_new_tokens", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(16), nullable=False),
        sa.UniqueConstraint(
            "benchmark_id", "language", "item_id", "arm", "turn", name="uq_benchmark_generations_item"
        ),
    )
    op.create_index("ix_benchmark_generations_run_id", "benchmark_generations", ["run_id"])
    op.create_table(
        "benchmark_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        _benchmark_id(),
        _run_id(),
        *_item(),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.UniqueConstraint(
            "benchmark_id", "language", "item_id", "arm", "metric", name="uq_benchmark_scores_item"
        ),
    )
    op.create_index("ix_benchmark_scores_run_id", "benchmark_scores", ["run_id"])
    op.create_table(
        "judge_replies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("judge_replies")
    op.drop_index("ix_benchmark_scores_run_id", table_name="benchmark_scores")
    op.drop_table("benchmark_scores")
    op.drop_index("ix_benchmark_generations_run_id", table_name="benchmark_generations")
    op.drop_table("benchmark_generations")
    op.drop_index("ix_benchmarks_status", table_name="benchmarks")
    op.drop_index("ix_benchmarks_run", table_name="benchmarks")
    op.drop_table("benchmarks")
