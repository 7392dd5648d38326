"""Errors a person will read: each says what was wrong, where, and what to do."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every refusal by the domain or a use case."""


class InvalidValue(DomainError):
    """A value supplied by a person is not acceptable; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class IllegalTransition(DomainError):
    """The incident cannot make this change in its current state."""


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Forbidden(DomainError):
    """The person asking may not do this; the message says who may."""


class Conflict(DomainError):
    """Another request got there first (for example, the same idempotency key)."""


@dataclass(frozen=True)
class PlaybookProblem:
    """One thing wrong with a playbook file, located as precisely as we can."""

    file: str
    message: str
    step: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.step:
            where += f": step {self.step!r}"
        if self.field:
            where += f": field {self.field!r}"
        return f"{where}: {self.message}"


class InvalidPlaybook(DomainError):
    """One or more playbook files are wrong; `problems` lists every one found."""

    def __init__(self, problems: list[PlaybookProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
