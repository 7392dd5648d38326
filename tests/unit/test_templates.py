"""Every template in comms/ renders with sample data, for every status, and strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.adapters.files.templates import (
    DOCUMENT_SUFFIX,
    JinjaRenderer,
    TemplateProblem,
    chat_text,
    markdown_text,
    sample_context,
    sample_document_context,
)
from incident.config import PROJECT_ROOT
from incident.domain.incident import Status

RENDERER = JinjaRenderer(PROJECT_ROOT / "comms")
CUSTOMER_FACING = [
    "status_page",
    "status_page_withdrawn",
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


DOCUMENTS = JinjaRenderer(PROJECT_ROOT / "comms", suffix=DOCUMENT_SUFFIX)


@pytest.mark.parametrize("name", DOCUMENTS.names())
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_document_renders(name: str, sparse: bool) -> None:
    text = DOCUMENTS.render(name, sample_document_context(sparse=sparse))
    assert text.startswith("# ")
    assert "None" not in text
    assert "\n\n\n" not in text


def test_documents_are_the_timeline_and_the_postmortem() -> None:
    assert DOCUMENTS.names() == ["postmortem", "timeline"]
    assert "timeline" not in RENDERER.names()  # documents are not messages


def test_the_postmortem_escapes_what_people_typed() -> None:
    text = DOCUMENTS.render("postmortem", sample_document_context())
    # The title had a pipe and asterisks: literal, so the table and emphasis stay whole.
    assert "Checkout API returning errors \\| 502 \\*everywhere\\*" in text
    assert "- [ ] FU-7 Alert on pool exhaustion" in text
    assert "Failed: `status-page-investigating`" in text


@pytest.mark.parametrize(
    ("typed", "safe"),
    [
        ("<!channel> look", "&lt;!channel&gt; look"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("R&D", "R&amp;D"),
        ("<@U0DANA>", "<@U0DANA>"),  # exactly one user mention stays a mention
        ("<@U0DANA> and <!here>", "&lt;@U0DANA&gt; and &lt;!here&gt;"),
    ],
)
def test_chat_text_cannot_ping_or_link(typed: str, safe: str) -> None:
    assert chat_text(typed) == safe


def test_markdown_text_is_literal() -> None:
    assert markdown_text("a|b *c* _d_ [e](f) <g> # h `i`") == (
        "a\\|b \\*c\\* \\_d\\_ \\[e\\](f) \\<g\\> \\# h \\`i\\`"
    )


def test_the_greeting_escapes_a_title_that_would_ping_the_channel() -> None:
    context = sample_context()
    context["incident"]["title"] = "<!channel> checkout down"
    text = RENDERER.render("war_room_greeting", context)
    assert "<!channel>" not in text and "&lt;!channel&gt; checkout down" in text
