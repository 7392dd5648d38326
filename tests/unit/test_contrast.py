"""The dashboard's colours meet WCAG 2.1 AA: text on a coloured badge has a contrast of at
least 4.5:1 (the badges' text is small). Computed with the WCAG formula from the colours the
stylesheet declares."""

from __future__ import annotations

import re

import pytest

from incident.web.html import STATIC_DIR

CSS = (STATIC_DIR / "dashboard.css").read_text(encoding="utf-8")
COLOURS = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\s*;", CSS))


def luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour like #1d4ed8."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_formula_against_known_pairs() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("severity", ["p1", "p2", "p3", "p4"])
def test_severity_badges_meet_aa_for_small_text(severity: str) -> None:
    badge = re.search(rf"\.sev-{severity} {{ background: var\(--{severity}\); }}", CSS)
    assert badge, f"the .sev-{severity} badge takes its colour from --{severity}"
    assert re.search(r"\.badge {[^}]*color: #fff;", CSS), "badge text is white"
    assert contrast(COLOURS[severity], "#ffffff") >= 4.5


@pytest.mark.parametrize("name", ["text", "muted", "primary", "danger"])
def test_text_colours_meet_aa_on_the_page_and_on_cards(name: str) -> None:
    for background in ("bg", "surface"):
        assert contrast(COLOURS[name], COLOURS[background]) >= 4.5, (name, background)


@pytest.mark.parametrize("state", ["ok", "warning", "breached", "met"])
def test_response_clock_states_meet_aa_on_their_pills_and_as_text(state: str) -> None:
    rule = rf"\.sla-{state} {{ background: var\(--sla-{state}-bg\); color: var\(--sla-{state}\); }}"
    assert re.search(rule, CSS), f".sla-{state} takes its colours from --sla-{state}(-bg)"
    for background in (f"sla-{state}-bg", "bg", "surface"):
        assert contrast(COLOURS[f"sla-{state}"], COLOURS[background]) >= 4.5, (state, background)


def test_response_clock_colours_say_amber_and_red() -> None:
    """Warning is amber (red over green over blue) and breached red (red well above both);
    the words say it too, so the colour never stands alone."""

    def channels(name: str) -> tuple[int, ...]:
        colour = COLOURS[name]
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    red, green, blue = channels("sla-warning")
    assert red > green > blue
    red, green, blue = channels("sla-breached")
    assert red > 2 * max(green, blue)
