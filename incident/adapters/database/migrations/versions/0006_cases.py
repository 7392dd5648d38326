"""cases: support cases and their timeline

Support cases are the engine's second kind of subject: their steps are step occurrences
of kind "case"; the case itself, its escalations and approvals are kept here. Additions
only (an adopted database gets them as any new table).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("customer_email", sa.String(length=320), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=False),
        _at("level_entered_at"),
        _at("opened_at", nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("disputed_amount", sa.String(length=40), nullable=True),
        sa.Column("csr", sa.String(length=40), nullable=True),
        sa.Column("usdt_amount", sa.String(length=40), nullable=True),
        sa.Column("crypto", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("escalations", sa.JSON(), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("required_approvals", sa.JSON(), nullable=False),
        _at("first_response_at"),
        _at("last_progress_at"),
        _at("last_customer_update_at"),
        _at("expected_resolution_at"),
        _at("deescalated_at"),
        _at("resolved_at"),
        sa.Column("resolution", sa.Text(), nullable=True),
        _at("changed_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_cases_queue", ["status", "level"], unique=False)
    op.create_table(
        "case_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=True),
        sa.Column("occurrence", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_timeline", schema=None) as batch_op:
        batch_op.create_index("ix_case_timeline_case_at", ["case_id", "at", "id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM step_occurrences WHERE subject_kind = 'case'")
    op.drop_table("case_timeline")
    op.drop_table("cases")
