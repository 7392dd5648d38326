"""The commander's overview read on SQLite and PostgreSQL: counts by severity, one page of
open incidents in the order of urgency with their next steps, and a version that moves with
every change."""

from __future__ import annotations

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Cancellation, Severity
from incident.services import incidents as uc
from incident.services import views
from tests.service.test_engine import M


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def test_counts_a_page_in_order_of_urgency_and_a_moving_version(
    app: Container, clock: FakeClock
) -> None:
    rt = app.runtime
    made: dict[str, int] = {}
    for title, severity in (
        ("p3 old", Severity.P3),
        ("p1 acked", Severity.P1),
        ("p1 new", Severity.P1),
        ("p2", Severity.P2),
        ("p4 gone", Severity.P4),
    ):
        incident, _ = await uc.declare_incident(rt, title=title, severity=severity, by="dana")
        assert incident.id is not None
        made[title] = incident.id
        clock.advance(M)
    await uc.acknowledge_incident(rt, made["p1 acked"], by="sam")
    await uc.cancel_incident(rt, made["p4 gone"], reason=Cancellation.DECLINED, by="dana")
    first = await views.overview(rt, page=1, per_page=3)
    assert first.counts == {Severity.P1: (2, 1), Severity.P2: (1, 1), Severity.P3: (1, 1)}
    assert first.total == 4 and first.pages == 2
    # P1 first, the unacknowledged before the acknowledged, then by age.
    assert [c.incident.title for c in first.cards] == ["p1 new", "p1 acked", "p2"]
    assert first.cards[0].upcoming[0].step_id == "page-oncall-tier3"
    second = await views.overview(rt, page=2, per_page=3)
    assert [c.incident.title for c in second.cards] == ["p3 old"]
    version = await views.change_version(rt)
    assert await views.change_version(rt) == version  # reading changes nothing
    await uc.add_internal_note(rt, made["p3 old"], text="looking", by="sam")
    assert await views.change_version(rt) > version
