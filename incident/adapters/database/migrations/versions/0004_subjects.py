"""subjects: a step occurrence belongs to a subject (a kind and an id), not to an incident

The engine runs timed steps for any kind of subject (incidents now; support cases,
ownership verifications and subscriber notices later), so `step_occurrences.incident_id`
becomes `subject_kind` + `subject_id`, without a foreign key (each kind keeps its subjects
in a table of its own). Every existing occurrence is an incident's: kind "incident", id its
incident id, so pending steps carry on where they were and effect keys stay the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBJECT_KEY = ["subject_kind", "subject_id", "step_id", "occurrence"]


def upgrade() -> None:
    _occurrences_by_subject(Operations(op.get_context()))


def adopt(operations: Operations) -> list[str]:
    """A database made before migrations has incident_id where this revision put the
    subject: move it as `upgrade` does (adoption otherwise only adds)."""
    columns = {c["name"] for c in sa.inspect(operations.get_bind()).get_columns("step_occurrences")}
    if "incident_id" not in columns or "subject_id" in columns:
        return []
    _occurrences_by_subject(operations)
    return ["moved step_occurrences.incident_id to subject_kind, subject_id"]


def _occurrences_by_subject(operations: Operations) -> None:
    with operations.batch_alter_table("step_occurrences", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "subject_kind", sa.String(length=20), nullable=False, server_default="incident"
            )
        )
        batch_op.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
    operations.execute("UPDATE step_occurrences SET subject_id = incident_id")
    with operations.batch_alter_table("step_occurrences", schema=None) as batch_op:
        batch_op.alter_column("subject_kind", existing_type=sa.String(20), server_default=None)
        batch_op.alter_column("subject_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_occurrence_incident")
        batch_op.drop_constraint("uq_occurrence", type_="unique")
        # Its foreign key to incidents goes with it.
        batch_op.drop_column("incident_id")
        batch_op.create_unique_constraint("uq_subject_occurrence", SUBJECT_KEY)
        batch_op.create_index(
            "ix_occurrence_subject", ["subject_kind", "subject_id", "state"], unique=False
        )


def downgrade() -> None:
    # Only incidents had steps before: the other kinds' occurrences cannot go back.
    op.execute("DELETE FROM step_occurrences WHERE subject_kind <> 'incident'")
    with op.batch_alter_table("step_occurrences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
    op.execute("UPDATE step_occurrences SET incident_id = subject_id")
    with op.batch_alter_table("step_occurrences", schema=None) as batch_op:
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_occurrence_subject")
        batch_op.drop_constraint("uq_subject_occurrence", type_="unique")
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_kind")
        batch_op.create_foreign_key("fk_occurrence_incident", "incidents", ["incident_id"], ["id"])
        batch_op.create_unique_constraint("uq_occurrence", ["incident_id", "step_id", "occurrence"])
        batch_op.create_index("ix_occurrence_incident", ["incident_id", "state"], unique=False)
