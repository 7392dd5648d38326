"""case links: a case linked to an incident, the incident's words for its customer, the
wait for the customer's confirmation, and what the case's signature groups by

Additions only: nullable or defaulted columns on `cases`, and an index to find an
incident's linked cases.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("category", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("component", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notices", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_index("ix_cases_incident_id", ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_incident_id")
        for name in ("notices", "pending_since", "linked_at", "incident_id", "component"):
            batch_op.drop_column(name)
        batch_op.drop_column("category")
