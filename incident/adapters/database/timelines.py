"""Timeline entries as rows, for every subject's timeline table (cases', verifications'):
one shape, so one conversion each way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from incident.domain.records import TimelineEntry


def entry_rows(owner: str, owner_id: int, entries: Sequence[TimelineEntry]) -> list[dict[str, Any]]:
    """The rows of `entries` for a table whose owning column is `owner` (`case_id` ...)."""
    return [
        {
            owner: owner_id,
            "at": e.at,
            "kind": e.kind,
            "actor": e.actor,
            "text": e.text,
            "step_id": e.step_id,
            "occurrence": e.occurrence,
            "data": e.data,
        }
        for e in entries
    ]


def entries_of(rows: Iterable[Any]) -> list[TimelineEntry]:
    """The entries of timeline rows, in the rows' order."""
    return [
        TimelineEntry(
            at=r.at,
            kind=r.kind,
            actor=r.actor,
            text=r.text,
            step_id=r.step_id,
            occurrence=r.occurrence,
            data=r.data,
        )
        for r in rows
    ]
