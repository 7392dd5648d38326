"""Follow-up action items: what the review decided to change, each with an owner and a due
date, reminded on the engine until it is done.

Pure. An item's reminders are steps of its incident's plan (`follow_up_steps`), planned,
claimed and sent like any playbook step, so a reminder is never lost to a restart and
never sent twice; marking the item done removes its steps, which cancels what is pending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from incident.domain import text as rules
from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.playbook import FOLLOW_UP_STEP_PREFIX, Action, Anchor, Step

# A day before the due date (when it was set at least two days ahead), then daily from
# the due date while it is not done.
REMIND_BEFORE = timedelta(hours=24)
OVERDUE_EVERY = timedelta(hours=24)
TEMPLATE = "follow_up_reminder"

OWNER = rules.TextRule("owner", 200, one_line=True)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHAT_USER = re.compile(r"^@[A-Za-z0-9._-]{1,80}$")


@dataclass
class FollowUp:
    """One action item of an incident's review."""

    incident_id: int
    title: str
    owner: str
    due_at: datetime
    created_at: datetime
    created_by: str
    id: int | None = None
    done_at: datetime | None = None
    done_by: str | None = None

    @classmethod
    def add(
        cls,
        *,
        incident_id: int,
        title: str,
        owner: str,
        due_at: datetime,
        at: datetime,
        by: str,
    ) -> FollowUp:
        title = rules.TITLE.check(title)
        if due_at.tzinfo is None:
            raise InvalidValue("due_at", "give the due date with a time zone (e.g. Z)")
        if due_at <= at:
            raise InvalidValue("due_at", "the due date must be in the future")
        if due_at > at + timedelta(days=366):
            raise InvalidValue("due_at", "the due date must be within a year")
        return cls(
            incident_id=incident_id,
            title=title,
            owner=check_owner(owner),
            due_at=due_at,
            created_at=at,
            created_by=by,
        )

    @property
    def ref(self) -> str:
        return f"FU-{self.id}" if self.id is not None else "FU-new"

    def complete(self, *, at: datetime, by: str) -> None:
        if self.done_at is not None:
            raise IllegalTransition(f"{self.ref} was already done ({self.done_by})")
        self.done_at, self.done_by = at, by

    def destinations(self) -> list[str]:
        """Where its reminders go: the incident's war room, and the owner when the owner
        is an e-mail address or a chat handle."""
        found = ["chat:war-room"]
        if _EMAIL.match(self.owner):
            found.append(f"email:{self.owner}")
        elif _CHAT_USER.match(self.owner):
            found.append(f"chat:{self.owner}")
        return found


def check_owner(owner: str) -> str:
    return OWNER.check(owner)


def follow_up_steps(item: FollowUp) -> list[Step]:
    """The reminder steps of an open item (none once it is done)."""
    if item.done_at is not None or item.id is None:
        return []
    base = f"{FOLLOW_UP_STEP_PREFIX}{item.id}"
    steps = []
    if item.due_at - item.created_at >= 2 * REMIND_BEFORE:
        steps.append(
            Step(
                id=f"{base}.reminder",
                action=Action.FOLLOW_UP_REMINDER,
                anchor=Anchor.FIXED,
                at=item.due_at - REMIND_BEFORE,
                offset=timedelta(0),
                template=TEMPLATE,
                runbook="rca.md",
                description=f"Remind the owner of {item.ref} a day before it is due.",
            )
        )
    steps.append(
        Step(
            id=f"{base}.overdue",
            action=Action.FOLLOW_UP_REMINDER,
            anchor=Anchor.FIXED,
            at=item.due_at,
            offset=timedelta(0),
            every=OVERDUE_EVERY,
            template=TEMPLATE,
            runbook="rca.md",
            description=f"{item.ref} is due; remind its owner daily until it is done.",
        )
    )
    return steps


def follow_up_id(step_id: str) -> int | None:
    """The item a follow-up step belongs to (None for a playbook step)."""
    if not step_id.startswith(FOLLOW_UP_STEP_PREFIX):
        return None
    number = step_id.removeprefix(FOLLOW_UP_STEP_PREFIX).split(".")[0]
    return int(number) if number.isdigit() else None
