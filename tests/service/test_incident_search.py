"""Searching and paging incidents in the store (the dashboard's history page): the title
matched case-insensitively with the person's `%`, `_` and `\\` taken literally, or the
incident a reference names; filters and pages decided by the database. Each test on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest

from incident.bootstrap import Container
from incident.config import Settings
from incident.domain.errors import InvalidValue
from incident.domain.incident import Cancellation, Severity, Status
from incident.services import incidents as uc


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def _declare(app: Container, title: str, severity: Severity = Severity.P3) -> int:
    incident, _ = await uc.declare_incident(app.runtime, title=title, severity=severity, by="dana")
    assert incident.id is not None
    return incident.id


async def _titles(app: Container, search: str, **filters: object) -> list[str]:
    found = await uc.list_incidents(app.runtime, search=search, **filters)  # type: ignore[arg-type]
    return [i.title for i in found]


async def test_search_matches_titles_in_any_case_and_takes_wildcards_literally(
    app: Container,
) -> None:
    for title in (
        "Checkout API down",
        "checkout slow in the EU",
        "50% of logins fail",
        "500 errors on search",
        "db_pool exhausted",
        "dbXpool exhausted",
        "Path C:\\temp full",
        "Path C:temp full",
    ):
        await _declare(app, title)
    assert await _titles(app, "CHECKOUT") == ["checkout slow in the EU", "Checkout API down"]
    assert await _titles(app, "out sl") == ["checkout slow in the EU"]
    # The person's % and _ are characters, not LIKE's wildcards; nor is the escape itself.
    assert await _titles(app, "50%") == ["50% of logins fail"]
    assert await _titles(app, "%") == ["50% of logins fail"]
    assert await _titles(app, "db_pool") == ["db_pool exhausted"]
    assert await _titles(app, "_") == ["db_pool exhausted"]
    assert await _titles(app, "C:\\temp") == ["Path C:\\temp full"]
    assert await _titles(app, "nothing like it") == []
    # Blank is no search at all.
    assert len(await _titles(app, "  ")) == 8


async def test_a_reference_finds_its_incident(app: Container) -> None:
    first = await _declare(app, "Checkout API down")
    await _declare(app, "Search slow")
    named = await _declare(app, f"Follow-up of INC-{first}")
    # The incident it names, and any whose title has the words.
    for search, expected in (
        (f"INC-{first}", {first, named}),
        (f"inc-{first}", {first, named}),
        (f"inc {first}", {first}),
        (str(first), {first, named}),
    ):
        found = await uc.list_incidents(app.runtime, search=search)
        assert {i.id for i in found} == expected, search
    huge = await uc.list_incidents(app.runtime, search="INC-99999999999999999")
    assert huge == []


async def test_filters_and_pages_newest_first(app: Container) -> None:
    ids = [
        await _declare(app, f"Outage {n}", Severity.P1 if n % 2 else Severity.P4) for n in range(7)
    ]
    for incident_id in ids[:5]:
        await uc.cancel_incident(
            app.runtime, incident_id, reason=Cancellation.FALSE_ALARM, by="dana"
        )
    rt = app.runtime
    cancelled = [i.id for i in await uc.list_incidents(rt, statuses=[Status.CANCELLED])]
    assert cancelled == list(reversed(ids[:5]))
    pages = [
        [i.id for i in await uc.list_incidents(rt, statuses=[Status.CANCELLED], limit=2, offset=o)]
        for o in (0, 2, 4, 6)
    ]
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]], []]
    p1 = await uc.list_incidents(
        rt, statuses=[Status.CANCELLED], severities=[Severity.P1], search="outage"
    )
    assert [i.id for i in p1] == [ids[3], ids[1]]
    assert await _titles(app, "Outage 6", statuses=[Status.CANCELLED]) == []
    with pytest.raises(InvalidValue):
        await uc.list_incidents(rt, limit=0)
    with pytest.raises(InvalidValue):
        await uc.list_incidents(rt, offset=-1)
