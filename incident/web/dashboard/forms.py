"""Reading the dashboard's HTML forms: each field named, bounded and parsed into the words
of the domain; anything wrong is an InvalidValue naming the field, as the API's are.

Emptiness is left to the use cases (a blank update, note or reason is refused there with
the same message the API and Slack give); this layer only bounds lengths and parses choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from incident.domain.errors import InvalidValue
from incident.domain.incident import Severity, Status

# The API's limits (incident/web/schemas.py), so a form accepts what the API accepts.
SHORT = 200
REASON = 1000
TEXT = 5000
LINK = 2000
MAX_SNOOZE_MINUTES = 7 * 24 * 60
COMPONENT_FIELD = "component."


class Form:
    """The fields of one submitted form."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self._fields = fields

    def get(self, name: str) -> str:
        value = self._fields.get(name, "")
        return value if isinstance(value, str) else ""

    def text(self, name: str, *, max_length: int = TEXT) -> str:
        value = self.get(name).strip()
        if len(value) > max_length:
            raise InvalidValue(name, f"is {len(value)} characters; keep it to {max_length} at most")
        return value

    def status(self, name: str = "status") -> Status:
        if not self.get(name).strip():
            raise InvalidValue(name, "choose the new status")
        return Status.parse(self.get(name), where=name)

    def optional_status(self, name: str = "status") -> Status | None:
        return self.status(name) if self.get(name).strip() else None

    def severity(self, name: str = "severity") -> Severity:
        if not self.get(name).strip():
            raise InvalidValue(name, "choose the new severity")
        return Severity.parse(self.get(name), where=name)

    def minutes(self, name: str = "minutes") -> timedelta:
        value = self.get(name).strip()
        if not value.isdigit() or not 1 <= int(value) <= MAX_SNOOZE_MINUTES:
            raise InvalidValue(
                name, f"give a whole number of minutes from 1 to {MAX_SNOOZE_MINUTES}"
            )
        return timedelta(minutes=int(value))

    def components(self) -> dict[str, str]:
        """`component.<id>` fields left at "no change" (empty) are not changes."""
        return {
            name.removeprefix(COMPONENT_FIELD): value.strip()
            for name, value in self._fields.items()
            if name.startswith(COMPONENT_FIELD) and isinstance(value, str) and value.strip()
        }
