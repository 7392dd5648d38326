"""subject effects: the outbox and vendor references belong to a subject, not to an incident

Support cases (and later ownership verifications, subscriber notices) send their mail
through the same adapters as incidents: the outbox keeps their messages when no vendor is
configured, and the e-mail adapter remembers what it sent in vendor references. So
`outbox.incident_id` and `vendor_refs.incident_id` become `subject_kind` + `subject_id`, as
0004 did for step occurrences, without a foreign key (each kind keeps its subjects in a
table of its own). Every existing row is an incident's: kind "incident", id its incident id,
so an e-mail sent before the upgrade is still known as sent. A vendor reference is unique
per subject, vendor and name; the outbox is read by subject.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations, Operations

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBJECT = ["subject_kind", "subject_id"]
REF_KEY = [*SUBJECT, "vendor", "name"]
# What the baseline (and the models before it) named them.
OLD_OUTBOX_INDEX = "ix_outbox_incident_id"
OLD_REF_KEY = "uq_vendor_ref"


def upgrade() -> None:
    operations = Operations(op.get_context())
    _outbox_by_subject(operations, old_index=True)
    _vendor_refs_by_subject(operations, old_key=True)


def adopt(operations: Operations) -> list[str]:
    """A database made before migrations has incident_id where this revision put the
    subject: move it as `upgrade` does (adoption otherwise only adds). A table it lacks is
    added later, as the models have it; an index it lacks is not dropped."""
    done = []
    bind = operations.get_bind()
    if _has_incident_id(bind, "outbox"):
        indexes = {i["name"] for i in sa.inspect(bind).get_indexes("outbox")}
        _outbox_by_subject(operations, old_index=OLD_OUTBOX_INDEX in indexes)
        done.append("moved outbox.incident_id to subject_kind, subject_id")
    if _has_incident_id(bind, "vendor_refs"):
        keys = {u["name"] for u in sa.inspect(bind).get_unique_constraints("vendor_refs")}
        _vendor_refs_by_subject(operations, old_key=OLD_REF_KEY in keys)
        done.append("moved vendor_refs.incident_id to subject_kind, subject_id")
    return done


def _has_incident_id(bind: sa.Connection, table: str) -> bool:
    inspector = sa.inspect(bind)
    if table not in inspector.get_table_names():
        return False
    columns = {c["name"] for c in inspector.get_columns(table)}
    return "incident_id" in columns and "subject_id" not in columns


def _outbox_by_subject(operations: Operations, *, old_index: bool) -> None:
    with _subject_for_incident(operations, "outbox") as batch_op:
        if old_index:
            batch_op.drop_index(OLD_OUTBOX_INDEX)
        batch_op.create_index("ix_outbox_subject", SUBJECT, unique=False)


def _vendor_refs_by_subject(operations: Operations, *, old_key: bool) -> None:
    with _subject_for_incident(operations, "vendor_refs") as batch_op:
        if old_key:
            batch_op.drop_constraint(OLD_REF_KEY, type_="unique")
        batch_op.create_unique_constraint("uq_subject_vendor_ref", REF_KEY)


@contextmanager
def _subject_for_incident(operations: Operations, table: str) -> Iterator[BatchOperations]:
    """Give `table` subject_kind ("incident" for the rows there) and subject_id (their
    incident_id); the caller swaps its indexes in the batch this yields; then incident_id
    goes, and its foreign key to incidents with it (on SQLite, by copying the table)."""
    with operations.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "subject_kind", sa.String(length=20), nullable=False, server_default="incident"
            )
        )
        batch_op.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
    operations.execute(f"UPDATE {table} SET subject_id = incident_id")
    with operations.batch_alter_table(table, schema=None) as batch_op:
        batch_op.alter_column("subject_kind", existing_type=sa.String(20), server_default=None)
        batch_op.alter_column("subject_id", existing_type=sa.Integer(), nullable=False)
        yield batch_op
        batch_op.drop_column("incident_id")


def downgrade() -> None:
    with _incident_for_subject("outbox", "fk_outbox_incident") as batch_op:
        batch_op.drop_index("ix_outbox_subject")
        batch_op.create_index(OLD_OUTBOX_INDEX, ["incident_id"], unique=False)
    with _incident_for_subject("vendor_refs", "fk_vendor_ref_incident") as batch_op:
        batch_op.drop_constraint("uq_subject_vendor_ref", type_="unique")
        batch_op.create_unique_constraint(OLD_REF_KEY, ["incident_id", "vendor", "name"])


@contextmanager
def _incident_for_subject(table: str, foreign_key: str) -> Iterator[BatchOperations]:
    """Back to incident_id, with its foreign key; the caller swaps the indexes in the batch
    this yields. Only incidents had messages and references before: the other kinds'
    cannot go back."""
    op.execute(f"DELETE FROM {table} WHERE subject_kind <> 'incident'")
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
    op.execute(f"UPDATE {table} SET incident_id = subject_id")
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=False)
        yield batch_op
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_kind")
        batch_op.create_foreign_key(foreign_key, "incidents", ["incident_id"], ["id"])
