"""clusters: many customers' cases of one problem, and the incidents proposed from them

Additions only: new tables.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cluster_keys",
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("category", "component"),
    )
    op.create_table(
        "case_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("error_codes", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        _at("first_seen", nullable=False),
        _at("last_seen", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("new", sa.Boolean(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        _at("quiet_until"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_case_clusters_key_seen", "case_clusters", ["category", "component", "last_seen"]
    )
    op.create_table(
        "case_cluster_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        _at("at", nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["case_clusters.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_index("ix_case_cluster_members_cluster", "case_cluster_members", ["cluster_id", "at"])
    op.create_table(
        "incident_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        _at("proposed_at", nullable=False),
        sa.Column("severity", sa.String(length=2), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("weighted", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        _at("decided_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["cluster_id"], ["case_clusters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cluster_id"),
    )
    op.create_index(
        "ix_incident_candidates_status", "incident_candidates", ["status", "proposed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_incident_candidates_status", table_name="incident_candidates")
    op.drop_table("incident_candidates")
    op.drop_index("ix_case_cluster_members_cluster", table_name="case_cluster_members")
    op.drop_table("case_cluster_members")
    op.drop_index("ix_case_clusters_key_seen", table_name="case_clusters")
    op.drop_table("case_clusters")
    op.drop_table("cluster_keys")
