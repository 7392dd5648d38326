"""verifications: account-ownership verifications, their proof files and their timeline

Additions only: new tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("account_value", sa.String(length=40), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("need", sa.JSON(), nullable=False),
        _at("opened_at", nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("two_managers", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("proofs", sa.JSON(), nullable=False),
        sa.Column("collected_by", sa.JSON(), nullable=False),
        _at("proof_complete_at"),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        _at("last_reminder_at"),
        _at("final_notice_at"),
        _at("closed_at"),
        _at("changed_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_verifications_queue", "verifications", ["status", "opened_at"])
    op.create_index("ix_verifications_customer_id", "verifications", ["customer_id"])
    op.create_table(
        "verification_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("verification_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        _at("stored_at", nullable=False),
        _at("purged_at"),
        sa.ForeignKeyConstraint(["verification_id"], ["verifications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("verification_id", "sha256", name="uq_verification_file"),
    )
    op.create_table(
        "verification_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("verification_id", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=True),
        sa.Column("occurrence", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["verification_id"], ["verifications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_verification_timeline_at", "verification_timeline", ["verification_id", "at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_verification_timeline_at", table_name="verification_timeline")
    op.drop_table("verification_timeline")
    op.drop_table("verification_files")
    op.drop_index("ix_verifications_customer_id", table_name="verifications")
    op.drop_index("ix_verifications_queue", table_name="verifications")
    op.drop_table("verifications")
