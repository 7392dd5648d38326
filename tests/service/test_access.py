"""Who may do what is decided inside each use case's unit of work, on the incident as that
transaction sees it: a change of command committed just before is never missed, and a
refused change writes nothing. Every door hands the use case the person acting."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from incident.bootstrap import Container
from incident.config import PROJECT_ROOT
from incident.domain.access import AccessRole, Principal
from incident.domain.errors import Forbidden
from incident.domain.incident import Cancellation, Role, Severity, Status
from incident.services import incidents as uc
from incident.services.ports import Transaction

T = TypeVar("T")

RORY = Principal("rory", AccessRole.RESPONDER)  # a responder, commander of the incident
RIA = Principal("ria", AccessRole.RESPONDER)


class HandOverFirst:
    """The real store, where the incident's command is handed to someone else while a
    request is between arriving and its transaction: the next unit of work begins after
    that hand-over has committed."""

    def __init__(self, app: Container, incident_id: int) -> None:
        self.app, self.incident_id, self.handed_over = app, incident_id, False

    async def run(
        self, work: Callable[[Transaction], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        if not self.handed_over:
            self.handed_over = True
            await uc.assign_role(
                self.app.runtime, self.incident_id, Role.COMMANDER, "sam", by="admin"
            )
        return await self.app.store.run(work, durable=durable, urgent=urgent)

    async def read(self, work: Callable[[Transaction], T]) -> T:
        return await self.app.store.read(work)


async def _declared(app: Container) -> int:
    incident, _ = await uc.declare_incident(
        app.runtime, title="Checkout down", severity=Severity.P2, by="dana", commander="rory"
    )
    assert incident.id is not None
    return incident.id


async def test_rights_are_those_of_the_incident_as_the_change_s_transaction_sees_it(
    app: Container,
) -> None:
    incident_id = await _declared(app)
    # As its commander, the responder may resolve it...
    view = await uc.get_incident(app.runtime, incident_id)
    assert view.incident.commander == "rory"
    # ...until command passes to sam, committed just before rory's change runs.
    racing = dataclasses.replace(app.runtime, store=HandOverFirst(app, incident_id))
    with pytest.raises(Forbidden, match="rory \\(responder\\) may not resolve on INC-"):
        await uc.resolve_incident(racing, incident_id, summary="fixed", by=RORY)
    after = await uc.get_incident(app.runtime, incident_id)
    assert after.incident.status is Status.INVESTIGATING  # refused: nothing written
    assert after.incident.commander == "sam"
    assert [e.kind for e in after.timeline].count("resolved") == 0


async def test_a_refused_change_writes_nothing(app: Container) -> None:
    incident_id = await _declared(app)
    viewer = Principal("vic", AccessRole.VIEWER)
    before = await uc.get_incident(app.runtime, incident_id)
    refusals: list[Callable[[], Any]] = [
        lambda: uc.acknowledge_incident(app.runtime, incident_id, by=viewer),
        lambda: uc.add_internal_note(app.runtime, incident_id, text="hi", by=viewer),
        # Lowering the severity is the commander's call, not another responder's.
        lambda: uc.change_severity(app.runtime, incident_id, Severity.P3, by=RIA),
        lambda: uc.cancel_incident(
            app.runtime, incident_id, reason=Cancellation.FALSE_ALARM, by=viewer
        ),
        lambda: uc.declare_incident(app.runtime, title="x", severity=Severity.P4, by=viewer),
    ]
    for refused in refusals:
        with pytest.raises(Forbidden):
            await refused()
    after = await uc.get_incident(app.runtime, incident_id)
    assert after.timeline == before.timeline and after.incident == before.incident
    listed = await uc.list_incidents(app.runtime)
    assert len(listed) == 1


# The doors: modules that turn someone's request into a use case call.
DOORS = [
    PROJECT_ROOT / "incident" / "web" / name
    for name in (
        "api.py",
        "slack.py",
        "webhooks.py",
        "dashboard/routes.py",
        "dashboard/case_routes.py",
    )
]


def _names_someone(value: ast.expr) -> bool:
    """`by=` given a bare name (`principal.name`, a string): the use case could not check
    that person's rights."""
    return (isinstance(value, ast.Attribute) and value.attr == "name") or isinstance(
        value, ast.Constant | ast.JoinedStr
    )


@pytest.mark.parametrize("door", DOORS, ids=lambda p: str(Path(p).relative_to(PROJECT_ROOT)))
def test_every_door_hands_the_use_case_the_person_acting(door: Path) -> None:
    tree = ast.parse(door.read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    acting = [kw for call in calls for kw in call.keywords if kw.arg == "by"]
    assert acting, f"{door} calls no use case with by="
    bare = [ast.unparse(kw.value) for kw in acting if _names_someone(kw.value)]
    assert bare == [], f"{door} passes a name, not the person acting: {bare}"
    assert "authorize_on" not in door.read_text()
