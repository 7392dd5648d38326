"""Follow-up action items: what is accepted, where reminders go, and when they are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident.domain.errors import IllegalTransition, InvalidValue
from incident.domain.follow_ups import FollowUp, follow_up_id, follow_up_steps
from incident.domain.playbook import Action, Anchor

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = timedelta(days=1)


def item(owner: str = "sam@example.com", due: timedelta = 7 * D) -> FollowUp:
    made = FollowUp.add(
        incident_id=3,
        title="Alert on pool exhaustion",
        owner=owner,
        due_at=T0 + due,
        at=T0,
        by="dana",
    )
    made.id = 11
    return made


@pytest.mark.parametrize(
    ("owner", "destinations"),
    [
        ("sam@example.com", ["chat:war-room", "email:sam@example.com"]),
        ("@sam", ["chat:war-room", "chat:@sam"]),
        ("Sam from payments", ["chat:war-room"]),
    ],
)
def test_reminders_reach_the_owner_where_the_owner_can_be_reached(
    owner: str, destinations: list[str]
) -> None:
    assert item(owner).destinations() == destinations


def test_a_reminder_the_day_before_then_daily_from_the_due_date() -> None:
    reminder, overdue = follow_up_steps(item())
    assert (reminder.id, overdue.id) == ("follow-up-11.reminder", "follow-up-11.overdue")
    assert reminder.anchor is overdue.anchor is Anchor.FIXED
    assert reminder.at == T0 + 6 * D and reminder.every is None
    assert overdue.at == T0 + 7 * D and overdue.every == D
    assert reminder.action is overdue.action is Action.FOLLOW_UP_REMINDER
    assert overdue.keyed_by_due  # a new due date is a new reminder, not a repeat
    assert follow_up_id(overdue.id) == 11 and follow_up_id("customer-update") is None


def test_an_item_due_soon_gets_no_reminder_before_and_a_done_one_none_at_all() -> None:
    (overdue,) = follow_up_steps(item(due=D))
    assert overdue.id.endswith(".overdue")
    done = item()
    done.complete(at=T0 + D, by="sam")
    assert follow_up_steps(done) == []
    with pytest.raises(IllegalTransition, match="already done"):
        done.complete(at=T0 + 2 * D, by="sam")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": " "}, "title"),
        ({"title": "a\nb"}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"owner": ""}, "owner"),
        ({"due_at": T0}, "due_at"),
        ({"due_at": T0 + 400 * D}, "due_at"),
    ],
)
def test_bad_items_are_refused_naming_the_field(fields: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "incident_id": 3,
        "title": "Alert on pool exhaustion",
        "owner": "sam",
        "due_at": T0 + D,
        "at": T0,
        "by": "dana",
        **fields,
    }
    with pytest.raises(InvalidValue) as refused:
        FollowUp.add(**values)  # type: ignore[arg-type]
    assert refused.value.field == field
