"""status page: incidents' public title and components, maintenance windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_title", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("components", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.create_index("ix_timeline_public", ["public", "incident_id"], unique=False)

    op.create_table(
        "maintenances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("set_status", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_maintenances_scheduled_for"), ["scheduled_for"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_maintenances_scheduled_until"), ["scheduled_until"], unique=False
        )

    op.create_table(
        "maintenance_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("maintenance_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["maintenance_id"], ["maintenances.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenance_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_maintenance_updates_window", ["maintenance_id", "at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("maintenance_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_updates_window")
    op.drop_table("maintenance_updates")
    with op.batch_alter_table("maintenances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenances_scheduled_until"))
        batch_op.drop_index(batch_op.f("ix_maintenances_scheduled_for"))
    op.drop_table("maintenances")
    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_public")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("components")
        batch_op.drop_column("public_title")
