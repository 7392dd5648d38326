"""What the CLI prints of server data: never a control a terminal would obey."""

from __future__ import annotations

import pytest

from incident.api_output import block, safe_line, safe_message, timeline_entries


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcödé, 日本語", "plain text, ünïcödé, 日本語"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # ESC: clear screen, colour
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: window title, BEL
        ("\x9b31m \x85 \x9d", "\\x9b31m \\x85 \\x9d"),  # C1: CSI, NEL, OSC
        ("a\u202eevil\u202cb", "a\\u202eevil\\u202cb"),  # bidi override
        ("\u2066x\u2069 \u200f \u061c", "\\u2066x\\u2069 \\u200f \\u061c"),  # isolates, marks
        ("one\ntwo\r\u2028", "one\\x0atwo\\x0d\\u2028"),  # one line stays one line
        ("tab\there \x00 \x7f", "tab here \\x00 \\x7f"),
    ],
)
def test_safe_line_escapes_what_a_terminal_would_obey(text: str, shown: str) -> None:
    assert safe_line(text) == shown


def test_a_block_keeps_its_lines_indented_and_safe() -> None:
    assert block("one\r\ntwo\rthree\n\x1b[1mfour", indent="   ") == (
        "one\n   two\n   three\n   \\x1b[1mfour"
    )
    assert safe_message("refused: \x1b[31m\nnext") == "refused: \\x1b[31m\nnext"


def test_a_timeline_entry_is_one_block_under_its_text_column() -> None:
    entry = {
        "at": "2030-01-01T10:00:00.5Z",
        "kind": "internal_note",
        "actor": "rob",
        "text": "first\nsecond",
        "public": False,
    }
    [lines] = timeline_entries([entry])
    first, second = lines.split("\n")
    assert first.startswith("  2030-01-01 10:00:00Z  internal_note ")
    assert first.endswith(" rob          first")
    assert second == " " * first.index("first") + "second"
    [public] = timeline_entries([{**entry, "public": True, "text": "x"}])
    assert public.split()[2:5] == ["internal_note", "public", "rob"]
