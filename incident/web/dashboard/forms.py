"""Reading the dashboard's HTML forms: each field named, bounded and parsed into the words
of the domain; anything wrong is an InvalidValue naming the field, as the API's are.

Emptiness is left to the use cases (a blank update, note or reason is refused there with
the same message the API and Slack give); this layer only bounds lengths and parses choices.
The declare form and the lifecycle forms (edit, cancel, reopen, merge, follow-ups) are
checked by the API's own request models instead (`checked`), every refused field named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import TypeVar

from multidict import MultiMapping
from pydantic import BaseModel, ValidationError

from incident.domain.errors import DomainError, InvalidValue
from incident.domain.incident import Severity, Status
from incident.web.errors import validation_detail

# The API's limits (incident/web/schemas.py), so a form accepts what the API accepts.
SHORT = 200
REASON = 1000
TEXT = 5000
LINK = 2000
MAX_SNOOZE_MINUTES = 7 * 24 * 60
COMPONENT_FIELD = "component."
MAX_ID = 2**53
# An incident named as people write it: INC-12, inc 12, #12 or 12.
_INCIDENT_REF = re.compile(r"(?:inc[-\s]?|#)?0*([0-9]{1,16})", re.IGNORECASE)
# What a datetime-local field sends (the dashboard's times are UTC): 2026-03-09T09:00.
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?")

M = TypeVar("M", bound=BaseModel)


class FormInvalid(InvalidValue):
    """Every field of a form the API's request model refused, each with its problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        DomainError.__init__(self, "; ".join(f"{name}: {problem}" for name, problem in problems))
        self.field, self.message = problems[0]
        self.problems = problems

    @property
    def fields(self) -> set[str]:
        return {name for name, _ in self.problems}


def checked(model: type[M], data: Mapping[str, object]) -> M:
    """`data` (a form's fields, as the JSON the API would be sent) validated by the API's
    own request model: the form accepts exactly what the API accepts."""
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as error:
        problems = [(item["field"], item["problem"]) for item in validation_detail(error)]
        raise FormInvalid([(name, _friendlier(problem)) for name, problem in problems]) from None


def _friendlier(problem: str) -> str:
    if problem == "String should have at least 1 character":
        return "is blank; fill it in"
    if problem == "Field required":
        return "choose or fill in a value"
    return problem


class Form:
    """The fields of one submitted form."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self._fields = fields

    def has(self, name: str) -> bool:
        return isinstance(self._fields.get(name), str)

    def get(self, name: str) -> str:
        value = self._fields.get(name, "")
        return value if isinstance(value, str) else ""

    def every(self, name: str) -> list[str]:
        """Every value of a field sent more than once (checkboxes of one name)."""
        values = self._fields.getall(name, []) if isinstance(self._fields, MultiMapping) else []
        if not values and self.has(name):
            values = [self.get(name)]
        return [value for value in values if isinstance(value, str)]

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

    def incident_ref(self, name: str) -> int:
        """An incident's number from `INC-12`, `12` ... as people write it."""
        value = self.get(name).strip()
        found = _INCIDENT_REF.fullmatch(value)
        if not value or found is None or not 1 <= int(found.group(1)) <= MAX_ID:
            raise InvalidValue(
                name, f"give the incident's reference or number, like INC-12 (not {value[:40]!r})"
            )
        return int(found.group(1))

    def number(self, name: str) -> int:
        value = self.get(name).strip()
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            raise InvalidValue(name, f"{value!r} is not a number this dashboard wrote")
        return int(value)

    def utc_time(self, name: str) -> str:
        """A datetime field as the API takes it: a time written without a zone (what a
        datetime-local field sends) is UTC, as every time on the dashboard is; "" if blank."""
        value = self.get(name).strip()
        if _LOCAL_TIME.fullmatch(value):
            value = value.replace(" ", "T") + (":00Z" if value.count(":") == 1 else "Z")
        return value
