"""Every template in comms/ renders with sample data, for every status, and strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.adapters.templates import JinjaRenderer, TemplateProblem, sample_context
from incident.config import PROJECT_ROOT
from incident.domain.incident import Status

RENDERER = JinjaRenderer(PROJECT_ROOT / "comms")
CUSTOMER_FACING = [
    "status_page",
    "customer_notification_critical",
    "customer_notification_high",
    "customer_holding_update",
    "resolution_notice",
    "published_update",
]


@pytest.mark.parametrize("name", RENDERER.names())
@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_template_renders(name: str, status: Status, sparse: bool) -> None:
    text = RENDERER.render(name, sample_context(status=status, sparse=sparse))
    assert text.strip()
    assert "None" not in text
    assert "\n\n\n" not in text  # no runs of blank lines


@pytest.mark.parametrize("name", CUSTOMER_FACING)
def test_customer_facing_templates_keep_internal_facts_out(name: str) -> None:
    context = sample_context()
    text = RENDERER.render(name, context)
    for note in context["notes"]:
        assert note["text"] not in text
    assert context["incident"]["commander"] not in text
    assert context["links"]["incident"] not in text
    # The title, service and impact come from people and alerts inside the company (host
    # names, alert text, customer names): customers see only the `public` facts.
    for internal in ("title", "service", "impact", "resolution_summary", "comms_lead"):
        value = sample_context(status=Status.RESOLVED)["incident"][internal] or "-"
        assert value not in text, internal
    assert "Checkout" in text or "our service" in text or name == "published_update"


def test_status_page_text_differs_per_status() -> None:
    texts = {
        s: RENDERER.render("status_page", sample_context(status=s))
        for s in (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED)
    }
    assert len(set(texts.values())) == 4


def test_undefined_variables_are_errors(tmp_path: Path) -> None:
    (tmp_path / "oops.txt.j2").write_text("Hello {{ incident.nonexistent }}")
    with pytest.raises(TemplateProblem, match=r"oops\.txt\.j2"):
        JinjaRenderer(tmp_path).render("oops", sample_context())


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    (tmp_path / "escape.txt.j2").write_text("{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateProblem):
        JinjaRenderer(tmp_path).render("escape", sample_context())


def test_a_missing_template_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="no such template"):
        JinjaRenderer(tmp_path).render("absent", sample_context())
