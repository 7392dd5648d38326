"""The case templates (comms/cases/): every one the support clocks name renders with the
sample the real `case_template_context` makes, full and sparse; internal notices carry the
case's context, customer messages none of it; and lines stay short enough to read."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from incident.adapters.files.case_samples import (
    SAMPLE_NOTICE_STEPS,
    sample_case_context,
    template_steps,
)
from incident.adapters.files.support_files import SUPPORT_DIR, load_support
from incident.adapters.files.templates import JinjaRenderer, format_instant
from incident.config import PROJECT_ROOT
from incident.domain.case_clocks import CaseAction
from incident.domain.case_context import ContextKind, required_fields
from incident.domain.case_routing import Level
from incident.services.case_messages import TEMPLATE_DIR

COMMS = PROJECT_ROOT / "comms"
# Loading with comms_dir checks that every template a step names is there.
PLAYBOOK = load_support(PROJECT_ROOT / "playbooks" / SUPPORT_DIR, comms_dir=COMMS)
RENDERER = JinjaRenderer(COMMS)
STEPS_OF = template_steps(PLAYBOOK)
TEMPLATES = sorted(STEPS_OF)
CUSTOMER_FACING = [
    "case_confirmation_reminder",
    "case_customer_escalation",
    "case_customer_update",
    "case_deescalation_customer",
    "case_incident_resolved",
    "case_incident_update",
]
LONGEST_LINE = 100
# Context values shorter than this ("pro", "evm", "USDT", 1) are words any message may hold.
DISTINCTIVE = 6


def render(template: str, context: dict[str, Any]) -> str:
    return RENDERER.render(f"{TEMPLATE_DIR}/{template}", context)


def sample(template: str, *, sparse: bool = False) -> dict[str, Any]:
    """The sample for the first step that names `template`."""
    return sample_case_context(sparse=sparse, step_id=STEPS_OF[template][0])


def flat(text: str) -> str:
    """Text with every run of whitespace one space: values wrapped over lines compare whole."""
    return " ".join(text.split())


def long_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > LONGEST_LINE and "://" not in line]


def values(value: object) -> Iterator[str]:
    """Every scalar in a context value (lists and objects opened), as text."""
    if isinstance(value, dict):
        for one in value.values():
            yield from values(one)
    elif isinstance(value, list):
        for one in value:
            yield from values(one)
    elif value is not None:
        yield str(value)


def test_the_templates_are_those_the_clocks_name() -> None:
    on_disk = sorted(
        p.name.removesuffix(".txt.j2") for p in (COMMS / TEMPLATE_DIR).glob("*.txt.j2")
    )
    assert on_disk == TEMPLATES
    customer = {s.template for s in PLAYBOOK.steps if s.action is CaseAction.CUSTOMER_UPDATE}
    assert customer | set(SAMPLE_NOTICE_STEPS) == set(CUSTOMER_FACING)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_template_renders_for_every_step_naming_it(template: str, sparse: bool) -> None:
    for step_id in STEPS_OF[template]:
        text = render(template, sample_case_context(sparse=sparse, step_id=step_id))
        assert text.strip(), step_id
        assert "None" not in text, step_id
        assert "\n\n\n" not in text, step_id  # no runs of blank lines
        assert long_lines(text) == [], step_id


def test_the_full_sample_is_the_case_it_describes() -> None:
    context = sample_case_context()
    case, escalation = context["case"], context["escalation"]
    assert case["plan"] == "pro" and case["crypto"] and case["disputed_amount"]
    assert case["context"]["transactions"] and case["context"]["wallet_addresses"]
    assert escalation["to_level"] == "cio" and escalation["recommends_ceo"]
    assert context["approvals"]["required"] == ["cio", "ceo"]
    assert context["deescalation"] is not None and context["notes"] and context["upcoming"]
    sparse = sample_case_context(sparse=True)
    assert sparse["case"]["level"] == "tier_1" and sparse["case"]["context"] == {}
    assert sparse["escalation"] is None and sparse["deescalation"] is None
    assert sparse["notes"] == [] and sparse["approvals"]["required"] == []
    with pytest.raises(ValueError, match="no step 'nonexistent'"):
        sample_case_context(step_id="nonexistent")


def test_the_internal_notice_names_every_context_value() -> None:
    context = sample("case_internal_escalation")
    text = flat(render("case_internal_escalation", context))
    # Every field of the table (the technical and crypto ones among them) is in the sample.
    assert set(required_fields(list(ContextKind))) == set(context["case"]["context"])
    for name, given in context["case"]["context"].items():
        for value in values(given):
            assert flat(value) in text, f"{name}: {value}"
    for amount in ("disputed_amount", "usdt_amount", "csr"):
        assert context["case"][amount] in text
    assert context["escalation"]["reason"] in text
    assert flat(context["escalation"]["rule"]) in text
    assert format_instant(context["sla"]["due"]) in text
    assert context["links"]["case"] in text
    assert "Nothing is missing" in text


def test_the_internal_notice_lists_what_is_still_missing() -> None:
    context = sample("case_internal_escalation", sparse=True)
    assert context["missing"]
    text = flat(render("case_internal_escalation", context))
    for problem in context["missing"]:
        field, _, words = problem.partition(": ")
        assert f"- {field}: {words.removeprefix('missing: ')}" in text


def test_the_cio_review_carries_what_the_cio_decides_on() -> None:
    context = sample("cio_review")
    text = render("cio_review", context)
    flat_text = flat(text)
    assert context["case"]["reference"] in text
    assert context["case"]["context"]["summary"] in flat_text
    assert context["escalation"]["reason"] in flat_text
    assert "Recommendation: take it to the CEO" in text
    assert "yours (the CIO)" in text and "the CEO's" in text  # the decisions needed
    assert f"2 business days: please respond by {format_instant(context['sla']['due'])}" in text
    assert context["links"]["case"] in text

    context["escalation"]["recommends_ceo"] = False
    text = render("cio_review", context)
    assert "Recommendation: take it to the CEO" not in text
    assert "Recommendation: decide it yourself" in text


@pytest.mark.parametrize("template", ["cio_review", "cio_review_reminder", "cio_review_overdue"])
def test_cio_messages_name_the_decisions_still_missing(template: str) -> None:
    context = sample(template)
    context["approvals"]["given"] = [
        {
            "level": "cio",
            "by": "cio@example.com",
            "at": datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
            "approved": True,
            "note": "Refund approved as goodwill.",
        }
    ]
    context["approvals"]["missing"] = ["ceo"]
    text = render(template, context)
    assert "the CEO's" in text and "yours (the CIO)" not in text
    assert long_lines(text) == []


def rare(context: dict[str, Any]) -> dict[str, Any]:
    """The full sample with what it rarely has: an emergency escalated without its full
    context, its receipt confirmed, a decision given, the case resolved."""
    context = copy.deepcopy(context)
    context["escalation"].update(
        urgency="cannot wait",
        urgency_note="The customer's lawyer set a deadline of today, 17:00.",
        gate_override="The customer's deadline is today; the trace report follows by noon.",
        confirmed_at=datetime(2026, 3, 3, 8, 45, tzinfo=UTC),
        confirmed_by="cio@example.com",
    )
    context["sla"]["state"] = "met"
    context["approvals"]["given"] = [
        {
            "level": "cio",
            "by": "cio@example.com",
            "at": datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
            "approved": False,
            "note": "",
        }
    ]
    context["case"].update(
        status="resolved",
        resolved_at=datetime(2026, 3, 5, 9, 0, tzinfo=UTC),
        resolution="Refund declined; the address was reported to the issuer.",
    )
    return context


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_the_rarer_facts(template: str) -> None:
    text = render(template, rare(sample(template)))
    assert "None" not in text
    assert long_lines(text) == []


def test_the_internal_notice_shows_an_override_and_an_emergency() -> None:
    context = rare(sample("case_internal_escalation"))
    text = flat(render("case_internal_escalation", context))
    assert "URGENT" in text and context["escalation"]["urgency_note"] in text
    assert context["escalation"]["gate_override"] in text
    assert "Receipt confirmed by cio@example.com" in text


def internal_values(context: dict[str, Any]) -> list[str]:
    """What the full sample knows that a customer must not read."""
    case, escalation, deescalation = context["case"], context["escalation"], context["deescalation"]
    found = [case[key] for key in ("disputed_amount", "csr", "usdt_amount")]
    found += [case["context"]["amount"], case["context"]["account_value"]]
    found += case["flags"]
    found += [note["text"] for note in context["notes"]]
    found += [note["actor"] for note in context["notes"]]
    found += [escalation["reason"], escalation["rule"], escalation["by"]]
    found += [escalation["from_title"], escalation["to_title"], context["level"]["title"]]
    found += [deescalation["text"], deescalation["by"], case["opened_by"]]
    found += context["routes"]
    found += [case["ref"], case["customer_email"], case["summary"], context["links"]["case"]]
    # Every context value but the customer's own reference (the one they quote to us).
    found += [
        value
        for name, given in case["context"].items()
        if name != "reference"
        for value in values(given)
        if len(value) >= DISTINCTIVE
    ]
    return [value for value in found if value]


@pytest.mark.parametrize("template", CUSTOMER_FACING)
def test_customer_messages_keep_internal_facts_out(template: str) -> None:
    context = sample(template)
    text = render(template, context)
    flat_text = flat(text)
    assert context["case"]["reference"] in text
    assert context["case"]["context"]["reference"] == context["case"]["reference"]
    internal = internal_values(context)
    assert len(internal) > 30  # the sample does carry them
    for value in internal:
        assert flat(value) not in flat_text, value
    assert not re.search(r"\b(cio|ceo)\b", text, re.IGNORECASE)
    assert "@" not in text and "http" not in text


@pytest.mark.parametrize("template", CUSTOMER_FACING)
@pytest.mark.parametrize("level", list(Level))
def test_customer_messages_name_no_internal_level(template: str, level: Level) -> None:
    """Wherever the case is, the customer reads neutral words: never an executive, a
    specialist team (a fraud suspect is not told security has it) or a ladder title."""
    context = sample(template)
    context["level"] = {
        "name": level.value,
        "title": PLAYBOOK.ladder[level].title,
        "method": "email",
    }
    context["escalation"]["to_level"] = level.value
    text = render(template, context)
    assert PLAYBOOK.ladder[level].title not in text
    for word in ("cio", "ceo", "c-level", "security", "compliance", "tier", "executive"):
        assert not re.search(rf"\b{word}\b", text, re.IGNORECASE), word
    assert long_lines(text) == []
