"""Who a playbook's targets are: audiences (people to tell) and on-call tiers (people to page)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from incident.domain.errors import InvalidPlaybook, PlaybookProblem

_DESTINATION = re.compile(r"^(chat:(#[a-z0-9._-]+|@[\w.@+-]+|war-room)|email:[^@\s]+@[^@\s]+)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnCallTier(_Strict):
    description: str = ""


class Audience(_Strict):
    description: str = ""
    destinations: tuple[str, ...] = Field(min_length=1)

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not _DESTINATION.match(value):
                raise ValueError(
                    f"{value!r} is not a destination; write chat:#channel, chat:@user, "
                    "chat:war-room or email:address"
                )
        return values


class Directory(_Strict):
    """The audiences and on-call tiers that playbook steps may name as targets."""

    oncall: dict[str, OnCallTier] = Field(default_factory=dict)
    audiences: dict[str, Audience] = Field(default_factory=dict)


def parse_directory(document: Any, *, source: str) -> Directory:
    try:
        return Directory.model_validate(document or {})
    except ValidationError as error:
        raise InvalidPlaybook(
            [
                PlaybookProblem(
                    source,
                    str(item["msg"]).removeprefix("Value error, "),
                    field=".".join(str(p) for p in item["loc"]),
                )
                for item in error.errors(include_url=False)
            ]
        ) from None
