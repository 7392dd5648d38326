"""Planning maths as parameter tables: when is the next occurrence of a step due?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.domain.incident import Category, Incident, Severity, Status
from incident.domain.planning import (
    StepHistory,
    backoff,
    comes_back,
    next_occurrence,
    plan,
    tracked_deadline,
)
from incident.domain.playbook import Action, Anchor, Step, StopEvent
from tests.unit.test_playbook import load_real_playbooks

T0 = datetime(2026, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def incident(**facts: object) -> Incident:
    base = Incident(title="API down", severity=Severity.P1, declared_at=T0, declared_by="t")
    for name, value in facts.items():
        setattr(base, name, value)
    return base


def step(**fields: object) -> Step:
    values: dict[str, object] = {
        "id": "s",
        "action": Action.REMIND,
        "anchor": Anchor.DECLARED,
        "offset": timedelta(0),
        "template": "x",
    }
    values.update(fields)
    return Step(**values)  # type: ignore[arg-type]


def history(fired: int, last_due: timedelta, fired_at: timedelta | None = None) -> StepHistory:
    return StepHistory(
        fired=fired,
        last_due=T0 + last_due,
        last_fired_at=T0 + (fired_at if fired_at is not None else last_due),
    )


@pytest.mark.parametrize(
    ("label", "the_step", "facts", "past", "expected"),
    [
        ("one-off at offset", step(offset=10 * M), {}, StepHistory(), (1, 10 * M)),
        ("one-off fires once", step(offset=10 * M), {}, history(1, 10 * M), None),
        ("first repeat", step(offset=25 * M, every=30 * M), {}, StepHistory(), (1, 25 * M)),
        (
            "grid, no drift",
            step(offset=25 * M, every=30 * M),
            {},
            history(1, 25 * M, fired_at=27 * M),
            (2, 55 * M),
        ),
        (
            "missed repeats coalesce",
            step(offset=0 * M, every=30 * M),
            {},
            history(1, 0 * M, fired_at=3 * H + 5 * M),
            (2, 3 * H + 30 * M),
        ),
        (
            "anchor moved past grid restarts it",
            step(anchor=Anchor.LAST_CUSTOMER_UPDATE, offset=25 * M, every=30 * M),
            {"last_customer_update_at": T0 + 28 * M},
            history(1, 25 * M),
            (2, 53 * M),
        ),
        (
            "anchor moved before first fire moves it",
            step(anchor=Anchor.LAST_CUSTOMER_UPDATE, offset=30 * M, every=30 * M),
            {"last_customer_update_at": T0 + 12 * M},
            StepHistory(),
            (1, 42 * M),
        ),
        ("anchor not yet happened", step(anchor=Anchor.RESOLVED), {}, StepHistory(), None),
        (
            "until event stops it",
            step(every=5 * M, until=(StopEvent.ACKNOWLEDGED,)),
            {"acknowledged_at": T0 + M},
            history(1, 0 * M),
            None,
        ),
        ("max occurrences", step(every=5 * M, max_occurrences=3), {}, history(3, 10 * M), None),
        (
            "below max occurrences",
            step(every=5 * M, max_occurrences=3),
            {},
            history(2, 5 * M),
            (3, 10 * M),
        ),
        (
            "window end excludes",
            step(offset=2 * H, every=2 * H, window_end=4 * H),
            {},
            history(1, 2 * H),
            None,
        ),
        (
            "window start delays",
            step(offset=1 * H, window_start=4 * H),
            {},
            StepHistory(),
            (1, 4 * H),
        ),
        # Recording the RCA (closing) stops only the steps that list rca_completed: what
        # resolving planned still runs (the resolution notice, the pager resolve ...).
        (
            "closing stops nothing by itself",
            step(anchor=Anchor.RESOLVED),
            {
                "status": Status.CLOSED,
                "resolved_at": T0 + H,
                "rca_link": "https://r",
                "closed_at": T0 + H,
            },
            StepHistory(),
            (1, H),
        ),
        (
            "closing stops what waits for the RCA",
            step(anchor=Anchor.RESOLVED, offset=24 * H, until=(StopEvent.RCA_COMPLETED,)),
            {
                "status": Status.CLOSED,
                "resolved_at": T0 + H,
                "rca_link": "https://r",
                "closed_at": T0 + H,
            },
            StepHistory(),
            None,
        ),
        (
            "cancelled stops every other step",
            step(anchor=Anchor.RESOLVED),
            {"status": Status.CANCELLED, "cancelled_at": T0 + M, "resolved_at": T0 + M},
            StepHistory(),
            None,
        ),
        (
            "cancelled runs its own steps",
            step(anchor=Anchor.CANCELLED),
            {"status": Status.CANCELLED, "cancelled_at": T0 + 7 * M},
            StepHistory(),
            (1, 7 * M),
        ),
        (
            "one-off again for a new instant of its anchor (resolved again)",
            step(anchor=Anchor.RESOLVED),
            {"resolved_at": T0 + 3 * H},
            history(1, H),
            (2, 3 * H),
        ),
        (
            "one-off not again when only its offset moved (severity change)",
            step(offset=30 * M),
            {},
            history(1, 10 * M),
            None,
        ),
        (
            "reopened: the cadence restarts from the reopening",
            step(anchor=Anchor.LAST_CUSTOMER_UPDATE, offset=30 * M, every=30 * M),
            {"last_customer_update_at": T0 + 10 * M, "reopened_at": T0 + 3 * H},
            history(3, 2 * H),
            (4, 3 * H + 30 * M),
        ),
        (
            "fixed instant (a follow-up's due date)",
            step(anchor=Anchor.FIXED, at=T0 + 5 * H),
            {},
            StepHistory(),
            (1, 5 * H),
        ),
        (
            "per anchor: once per anchor instant",
            step(anchor=Anchor.MANUAL_CUSTOMER_UPDATE, per_anchor=True),
            {"last_manual_update_at": T0 + 8 * M},
            StepHistory(),
            (1, 8 * M),
        ),
        (
            "per anchor: done for this instant",
            step(anchor=Anchor.MANUAL_CUSTOMER_UPDATE, per_anchor=True),
            {"last_manual_update_at": T0 + 8 * M},
            history(1, 8 * M),
            None,
        ),
        (
            "per anchor: again when the anchor moves",
            step(anchor=Anchor.MANUAL_CUSTOMER_UPDATE, per_anchor=True),
            {"last_manual_update_at": T0 + 20 * M},
            history(1, 8 * M),
            (2, 20 * M),
        ),
        (
            "per anchor: nothing before the first",
            step(anchor=Anchor.MANUAL_CUSTOMER_UPDATE, per_anchor=True),
            {},
            StepHistory(),
            None,
        ),
        (
            "category filter excludes",
            step(categories=(Category.SECURITY,)),
            {},
            StepHistory(),
            None,
        ),
        (
            "category filter includes",
            step(categories=(Category.SECURITY,)),
            {"category": Category.SECURITY},
            StepHistory(),
            (1, 0 * M),
        ),
        (
            "resolved-anchored after resolution",
            step(anchor=Anchor.RESOLVED, offset=24 * H),
            {"resolved_at": T0 + 5 * H},
            StepHistory(),
            (1, 29 * H),
        ),
    ],
)
def test_next_occurrence(
    label: str,
    the_step: Step,
    facts: dict[str, object],
    past: StepHistory,
    expected: tuple[int, timedelta] | None,
) -> None:
    planned = next_occurrence(the_step, incident(**facts), past)
    if expected is None:
        assert planned is None, label
    else:
        assert planned is not None, label
        assert (planned.occurrence, planned.due_at - T0) == expected, label


def test_plan_is_sorted_and_has_one_occurrence_per_step() -> None:
    playbooks = load_real_playbooks()
    planned = plan(incident(), playbooks.for_severity(Severity.P1), {})
    assert [p.due_at for p in planned] == sorted(p.due_at for p in planned)
    assert len({p.step_id for p in planned}) == len(planned)
    due = {p.step_id: p.due_at - T0 for p in planned}
    assert due["page-oncall-tier3"] == timedelta(0)
    assert due["escalate-vp-clevel"] == 4 * H
    assert due["customer-update"] == 30 * M
    assert "rca.missed" not in due  # its anchor (resolution) has not happened


def test_rca_deadline_is_48h_after_resolution() -> None:
    playbooks = load_real_playbooks()
    resolved = incident(resolved_at=T0 + 5 * H)
    for severity in (Severity.P1, Severity.P2):
        assert tracked_deadline(resolved, playbooks.for_severity(severity), "rca_due") == (
            T0 + 53 * H
        )
    assert tracked_deadline(incident(), playbooks.for_severity(Severity.P1), "rca_due") is None


# Parsed once: the strategy and the test read them for every example.
REAL_PLAYBOOKS = load_real_playbooks()
_OFFSETS = st.none() | st.integers(min_value=0, max_value=72 * 60).map(lambda m: m * M)


@st.composite
def incidents_and_histories(draw: st.DrawFn) -> tuple[Incident, dict[str, StepHistory]]:
    """Any incident of any severity at any point of its life, with any steps already run."""
    facts: dict[str, object] = {
        "severity": draw(st.sampled_from(Severity)),
        "category": draw(st.sampled_from(Category)),
        "commander": draw(st.none() | st.just("@ic")),
    }
    for name in (
        "acknowledged_at",
        "severity_changed_at",
        "last_customer_update_at",
        "last_manual_update_at",
        "resolved_at",
    ):
        offset = draw(_OFFSETS)
        facts[name] = None if offset is None else T0 + offset
    if facts["resolved_at"] is not None:
        facts["status"] = Status.RESOLVED
        facts["rca_link"] = draw(st.none() | st.just("https://wiki/rca"))
    the_incident = incident(**facts)
    steps = REAL_PLAYBOOKS.for_severity(the_incident.severity).steps
    past = {}
    for the_step in draw(st.lists(st.sampled_from(steps), unique=True, max_size=6)):
        due = draw(st.integers(min_value=0, max_value=72 * 60)) * M
        past[the_step.id] = history(draw(st.integers(min_value=1, max_value=4)), due)
    return the_incident, past


@settings(max_examples=400, deadline=None)
@given(incidents_and_histories(), st.data())
def test_a_step_that_does_not_come_back_leaves_the_plan_less_its_occurrence(
    case: tuple[Incident, dict[str, StepHistory]], data: st.DataObject
) -> None:
    """Why the scheduler may skip re-planning when such a step is done and the incident
    has not changed: the new plan is the old one less the occurrence that ran."""
    the_incident, past = case
    playbook = REAL_PLAYBOOKS.for_severity(the_incident.severity)
    before = plan(the_incident, playbook, past)
    steps = {step.id: step for step in playbook.steps}
    one_shot = [p for p in before if not comes_back(steps[p.step_id])]
    if not one_shot:
        return
    ran = data.draw(st.sampled_from(one_shot))
    late = data.draw(st.integers(min_value=0, max_value=600)) * timedelta(seconds=1)
    done = past.get(ran.step_id, StepHistory())
    after = {
        **past,
        ran.step_id: StepHistory(
            fired=done.fired + 1, last_due=ran.due_at, last_fired_at=ran.due_at + late
        ),
    }
    assert plan(the_incident, playbook, after) == [p for p in before if p != ran]


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (20, 600)],
)
def test_backoff_doubles_and_caps(attempt: int, expected: int) -> None:
    delay = backoff(attempt, base=timedelta(seconds=30), cap=timedelta(minutes=10))
    assert delay == timedelta(seconds=expected)
