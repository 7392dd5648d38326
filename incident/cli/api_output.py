"""What people read from the API commands: the server's JSON as lines for a terminal.

Everything the server sends is data, never terminal control: escape sequences, C1 controls
and bidirectional overrides in a title, a note or an alert's text are shown escaped
(`\\x1b`, `\\u202e`), so nobody can repaint, hide or reorder what a commander reads. A text
with line breaks stays one block: its continuation lines are indented under its first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from incident.clock import SystemClock
from incident.domain.playbook import format_duration

# C0 and C1 controls (ESC, CSI ...), DEL, and the invisible marks that reorder text (bidi
# embeddings, overrides and isolates). Line and paragraph separators are line breaks.
_UNSAFE = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_line(text: object) -> str:
    """`text` as one line a terminal shows as it is: controls and breaks escaped, tabs as
    spaces."""
    return _UNSAFE.sub(_escape, str(text).replace("\t", " "))


def block(text: object, *, indent: str) -> str:
    """Multi-line text, safe: each line after the first starts with `indent`."""
    return ("\n" + indent).join(safe_line(line) for line in _LINE_BREAK.split(str(text)))


def document(text: str) -> str:
    """A document (Markdown) as the server wrote it, safe: its lines and tabs kept, every
    other control escaped (a lone carriage return too: it would overwrite the line)."""
    return "\n".join(_UNSAFE.sub(_escape, line) for line in re.split(r"\r?\n", text.rstrip("\n")))


def safe_message(text: object) -> str:
    """An error message (several lines at most), safe for stderr."""
    return "\n".join(safe_line(line) for line in _LINE_BREAK.split(str(text)))


def at(text: str) -> str:
    """An instant from the API, in UTC to the second."""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def when(text: str | None) -> str:
    """An instant, and how far from now it is."""
    if not text:
        return "-"
    return f"{at(text)} ({relative(text)})"


def relative(text: str) -> str:
    """How far from now an instant is: `in 5m`, `2h ago`, `now`."""
    moment = datetime.fromisoformat(text)
    seconds = int((moment - SystemClock().now()).total_seconds())
    if abs(seconds) >= 60:
        seconds = round(seconds / 60) * 60  # minutes are precise enough to read
    if seconds == 0:
        return "now"
    if seconds > 0:
        return f"in {format_duration(timedelta(seconds=seconds))}"
    return f"{format_duration(timedelta(seconds=-seconds))} ago"


# --- incidents -----------------------------------------------------------------------------


def headline(incident: Mapping[str, Any]) -> str:
    service = f" [{safe_line(incident['service'])}]" if incident["service"] else ""
    return (
        f"{safe_line(incident['ref'])} {safe_line(incident['severity'])} "
        f"{safe_line(incident['status'])}: {safe_line(incident['title'])}{service}"
    )


def upcoming(steps: Sequence[Mapping[str, Any]], incident_id: object = "ID") -> list[str]:
    """One line per upcoming step: when it runs, its id, its action, and what it waits for.
    A running step is being sent now (its runs_at is when that began); a held one waits for
    the commander's approval, and the line says the command that gives it."""
    if not steps:
        return ["  (no upcoming steps)"]
    return [_step_line(step, incident_id) for step in steps]


def _step_line(step: Mapping[str, Any], incident_id: object) -> str:
    state = step.get("state", "pending")
    step_id = safe_line(step["step_id"])
    if state == "running":
        time = "sending now"
    elif state == "held":
        time = f"held (due {relative(step['due_at'])})"
    else:
        time = when(step["runs_at"])
    line = f"  {time:<40} {step_id:<28} {safe_line(step['action'])}"
    if state == "held":
        line += f"  waiting for approval: incident approve {safe_line(incident_id)} {step_id}"
    elif step.get("needs_approval"):
        line += " (needs approval)"
    if step.get("approved_by"):
        line += f" (approved by {safe_line(step['approved_by'])})"
    if step["last_error"]:
        line += f" (attempt {step['attempts'] + 1}: {safe_line(step['last_error'])})"
    return line


def changed(result: Mapping[str, Any], verb: str) -> str:
    incident = result["incident"]
    lines = [f"{verb}: {headline(incident)}", "next steps:"]
    return "\n".join(lines + upcoming(result["upcoming"], incident["id"]))


def listing(result: Mapping[str, Any]) -> str:
    incidents = result["incidents"]
    if not incidents:
        return "no incidents"
    return "\n".join(
        f"{safe_line(i['ref']):<9} {safe_line(i['severity'])}  {safe_line(i['status']):<13} "
        f"{when(i['declared_at']):<40} {safe_line(i['title'])}"
        for i in incidents
    )


_CANCELLED_AS = {"false_alarm": "as a false alarm", "declined": "as declined (not an incident)"}


def show(result: Mapping[str, Any]) -> str:
    incident = result["incident"]
    lines = [headline(incident)]
    closed = bool(incident.get("closed_at") or incident.get("rca_link"))
    for label, key in (
        ("declared", "declared_at"),
        ("acknowledged", "acknowledged_at"),
        ("reopened", "reopened_at"),
        ("resolved", "resolved_at"),
        ("closed", "closed_at"),
    ):
        if incident.get(key):
            lines.append(f"  {label:<13} {when(incident[key])}")
    if incident.get("rca_due_at") and not closed:  # once closed, the RCA is there: its link
        lines.append(f"  {'RCA due':<13} {when(incident['rca_due_at'])}")
    if incident.get("cancelled_at"):
        lines.append(f"  {'cancelled':<13} {cancellation(incident)}")
    if incident.get("category", "general") != "general":
        lines.append(f"  {'category':<13} {safe_line(incident['category'])}")
    for label, key in (
        ("commander", "commander"),
        ("comms lead", "comms_lead"),
        ("war room", "war_room"),
        ("public title", "public_title"),
        ("RCA", "rca_link"),
    ):
        if incident.get(key):
            lines.append(f"  {label:<13} {safe_line(incident[key])}")
    if incident.get("components"):
        statuses = ", ".join(
            f"{safe_line(c)} {safe_line(st)}" for c, st in incident["components"].items()
        )
        lines.append(f"  {'components':<13} {statuses}")
    if incident.get("impact"):
        lines.append(f"  {'impact':<13} {block(incident['impact'], indent=' ' * 16)}")
    lines += ["upcoming steps:", *upcoming(result["upcoming"], incident["id"])]
    if result.get("follow_ups"):
        lines += ["follow-ups:", *(follow_up_line(item) for item in result["follow_ups"])]
    lines += ["timeline:", *timeline_entries(result["timeline"])]
    return "\n".join(lines)


def cancellation(incident: Mapping[str, Any]) -> str:
    """When and why an incident was cancelled: `2030-... (2h ago) as a false alarm: the
    note`, or `... merged into INC-7`."""
    text = when(incident["cancelled_at"])
    if incident.get("merged_into"):
        return f"{text} merged into INC-{safe_line(incident['merged_into'])}"
    reason = incident.get("cancellation") or ""
    text += " " + _CANCELLED_AS.get(reason, f"({safe_line(reason)})" if reason else "")
    if incident.get("cancel_note"):
        text += f": {block(incident['cancel_note'], indent=' ' * 16)}"
    return text.rstrip()


def timeline_entries(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One block per entry: time, kind, public or not, who, then the text, whose further
    lines are indented to where its first began."""
    lines = []
    for entry in entries:
        head = (
            f"  {at(entry['at'])}  {safe_line(entry['kind']):<20} "
            f"{'public' if entry['public'] else '':<6}  {safe_line(entry['actor']):<12} "
        )
        lines.append(head + block(entry["text"], indent=" " * len(head)))
    return lines


def timeline(result: Mapping[str, Any], *, filtered: bool = False) -> str:
    entries = result["timeline"]
    if not entries:
        return "(no timeline entries match)" if filtered else "(no timeline entries)"
    return "\n".join(timeline_entries(entries))


# --- follow-ups ----------------------------------------------------------------------------


def follow_up_line(item: Mapping[str, Any]) -> str:
    """`FU-3    due 2030-05-01 12:00:00Z (in 48h)   Add a canary (owner @alice)`; once done,
    `done <when> by <who>` in place of the due date."""
    if item["done_at"]:
        state = f"done {at(item['done_at'])} by {safe_line(item['done_by'] or '?')}"
    else:
        state = f"due {when(item['due_at'])}"
    return (
        f"  {safe_line(item['ref']):<7} {state:<44} {safe_line(item['title'])} "
        f"(owner {safe_line(item['owner'])})"
    )


def follow_up(item: Mapping[str, Any], verb: str) -> str:
    return f"{verb}: INC-{safe_line(item['incident_id'])}\n{follow_up_line(item)}"


def follow_ups(result: Mapping[str, Any]) -> str:
    items = result["follow_ups"]
    if not items:
        return "no follow-ups"
    return "\n".join(follow_up_line(item) for item in items)


# --- maintenance windows -------------------------------------------------------------------


def maintenance(window: Mapping[str, Any]) -> str:
    lines = [
        f"maintenance {window['id']} {safe_line(window['status'])}: {safe_line(window['name'])}"
    ]
    lines.append(f"  {'from':<13} {when(window['scheduled_for'])}")
    lines.append(f"  {'until':<13} {when(window['scheduled_until'])}")
    if window["components"]:
        components = ", ".join(safe_line(c) for c in window["components"])
        lines.append(f"  {'components':<13} {components}")
    lines.append(f"  {'scheduled by':<13} {safe_line(window['created_by'])}")
    lines.append("updates:")
    for update in window["updates"]:
        head = f"  {at(update['at'])}  {safe_line(update['status']):<12} "
        lines.append(head + block(update["body"], indent=" " * len(head)))
    return "\n".join(lines)


def maintenances(result: Mapping[str, Any]) -> str:
    windows = result["maintenances"]
    if not windows:
        return "no maintenance windows"
    return "\n".join(
        f"{window['id']:<5} {safe_line(window['status']):<12} {when(window['scheduled_for']):<40} "
        f"until {at(window['scheduled_until'])}  {safe_line(window['name'])}"
        + (
            f" [{', '.join(safe_line(c) for c in window['components'])}]"
            if window["components"]
            else ""
        )
        for window in windows
    )


# --- the outbox and the caller -------------------------------------------------------------


def outbox(result: Mapping[str, Any]) -> str:
    lines = []
    for message in result["messages"]:
        lines.append(
            f"{at(message['created_at'])}  INC-{message['incident_id']}  "
            f"{safe_line(message['channel']):<11} {safe_line(message['destination'])}"
        )
        if message["subject"] and message["subject"] != message["body"]:
            lines.append(f"    subject: {safe_line(message['subject'])}")
        lines.append("    " + block(message["body"], indent="    "))
    if result["more"]:
        lines.append("(older messages left out: --limit shows more)")
    if not lines:
        return "the outbox kept no messages"
    # A blank line of a body is left blank, not indented.
    return "\n".join(line.rstrip() for line in "\n".join(lines).split("\n"))


def caller(result: Mapping[str, Any]) -> str:
    return f"{safe_line(result['name'])} ({safe_line(result['role'])})"
