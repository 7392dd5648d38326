"""The one rule for every text field, whatever the door it comes through (API, Slack, alert
webhooks, the dashboard, the CLI).

People's text reaches feeds (XML), chat, mail, terminals and the public page, which cannot
all carry control characters; bidirectional overrides make text read differently from what
it is. So text may hold none of them: no C0 controls but tab and line breaks (and no line
breaks at all in a one-line field), no DEL, no C1 controls (U+0080-U+009F), no bidi
embeddings, overrides or isolates (U+202A-U+202E, U+2066-U+2069), and no line or paragraph
separators in a one-line field. A person's text that breaks the rule is refused, naming
the field; text from machines (alert labels) is cleaned instead (`clean`), since an alert
must never be dropped for its wording.

`TEXT_PATTERN` and `LINE_PATTERN` are the same rules as regular expressions, for the API's
schema (and so the OpenAPI document).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from incident.domain.errors import InvalidValue

# Character classes, in the escapes regular expressions share (Python, Rust, ECMAScript).
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_LINE_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"
LINE_PATTERN = f"^[^{_LINE_CONTROLS}]*$"
# The same, for a field that must not be blank: at least one character that is neither
# whitespace nor refused (no lookahead: the server's regular expressions have none).
FILLED_TEXT_PATTERN = f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$"
FILLED_LINE_PATTERN = f"^[^{_LINE_CONTROLS}]*[^\\s{_LINE_CONTROLS}][^{_LINE_CONTROLS}]*$"
# An http(s) link with a host: `web_link` as a pattern.
LINK_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#{_LINE_CONTROLS}][^\\s{_LINE_CONTROLS}]*$"
_BAD = re.compile(f"[{_CONTROLS}]")
_BAD_IN_LINE = re.compile(f"[{_LINE_CONTROLS}]")
_LINK = re.compile(LINK_PATTERN)
MARKER = "…"  # ends text that was shortened


@dataclass(frozen=True)
class TextRule:
    """What one field accepts: one line or several, and how long."""

    field: str
    max_length: int
    one_line: bool = False
    required: bool = True
    blank: str = ""  # what to say when a required value is blank

    def check(self, value: str, *, where: str | None = None) -> str:
        """`value` stripped, or InvalidValue saying what is wrong with it."""
        where = where or self.field
        value = value.strip()
        if (_BAD_IN_LINE if self.one_line else _BAD).search(value):
            what = "line breaks or control characters" if self.one_line else "control characters"
            raise InvalidValue(where, f"contains {what}; use plain text")
        if self.required and not value:
            raise InvalidValue(where, self.blank or f"give the {self.field.replace('_', ' ')}")
        if len(value) > self.max_length:
            raise InvalidValue(
                where,
                f"{self.field.replace('_', ' ')} is {len(value)} characters; "
                f"keep it under {self.max_length}",
            )
        return value

    def clean(self, value: str) -> str:
        """Text from machines, made to fit: disallowed characters become spaces (runs of
        whitespace one space, in a one-line field), and what is too long is cut, ending
        with `MARKER`."""
        value = (_BAD_IN_LINE if self.one_line else _BAD).sub(" ", value)
        value = " ".join(value.split()) if self.one_line else value.strip()
        return shorten(value, self.max_length)


def shorten(value: str, limit: int) -> str:
    """`value`, cut to `limit` characters with `MARKER` at the end when it was longer."""
    return value if len(value) <= limit else value[: limit - len(MARKER)].rstrip() + MARKER


def web_link(value: str, *, where: str = "link") -> str:
    """An http(s) URL people can open (an RCA document): anything else, `javascript:` or
    a bare word, is refused, since the link is shown as a link."""
    value = LINK.check(value, where=where)
    try:
        parts = urlsplit(value)
    except ValueError:  # a malformed host, like https://[
        parts = urlsplit("")
    if not _LINK.match(value) or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidValue(
            where, "give an http:// or https:// link, like https://docs.example.com/rca/42"
        )
    return value


# Every text field of an incident and of what is done to it, with the API's limits.
TITLE = TextRule(
    "title", 200, one_line=True, blank="an incident needs a title that says what is wrong"
)
PUBLIC_TITLE = TextRule(
    "public_title", 200, one_line=True, blank="give the name customers should see"
)
SERVICE = TextRule("service", 200, one_line=True, required=False)
PERSON = TextRule("person", 200, one_line=True, blank="name the person to assign")
IMPACT = TextRule("impact", 5000, required=False)
MESSAGE = TextRule("message", 5000, blank="a customer update needs a message")
NOTE = TextRule("text", 5000, blank="a note needs some text")
SUMMARY = TextRule("summary", 5000, blank="say in a sentence what was wrong and what fixed it")
REASON = TextRule("reason", 5000, blank="say why; it goes on the timeline")
OPTIONAL_REASON = TextRule("reason", 1000, required=False)
CANCEL_NOTE = TextRule("note", 5000, required=False)
LINK = TextRule("link", 2000, one_line=True, blank="give the link to the RCA document")
# What machines send (alert labels and annotations): cleaned to fit, never refused.
LABEL = TextRule("label", 200, one_line=True)
