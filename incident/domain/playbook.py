"""The playbook model: typed steps parsed once from YAML, and the rules a playbook must obey.

A playbook is data. `parse_playbook` turns one YAML document into a `Playbook`; every
problem it finds is a `PlaybookProblem` naming the file, the step and the field, so
`incident playbooks check` and the service's start-up refusal print the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from incident.domain.audiences import Directory
from incident.domain.errors import InvalidPlaybook, PlaybookProblem
from incident.domain.incident import Category, Severity

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`30m`, `4h`, `48h`, `1h30m`, `2d`, `0m` -> timedelta. Raises ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not text.strip():
        raise ValueError(f"{text!r} is not a duration; write it like 30m, 4h, 1h30m or 2d")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration, in the shortest form (`1h30m`, `48h`, `0m`)."""
    total = int(delta.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{seconds}s" if seconds else "",
    ]
    return sign + ("".join(parts) or "0m")


def duration_words(delta: timedelta) -> str:
    """A configured span as people say it, in its largest whole unit: `30 days`, `6 hours`,
    `90 minutes` (for a sentence; `format_duration` is for the configuration)."""
    minutes = max(int(delta.total_seconds()) // 60, 0)
    for unit, size in (("day", 24 * 60), ("hour", 60), ("minute", 1)):
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} has no unit; write it like 30m, 4h or 2d")
    return parse_duration(str(value))


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _string_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Anchor(StrEnum):
    """The instant a step's offset counts from."""

    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    SEVERITY_CHANGED = "severity_changed"
    # The latest customer-facing update, or the declaration while there is none.
    LAST_CUSTOMER_UPDATE = "last_customer_update"
    # The latest customer-facing update a person posted (not the automatic ones).
    MANUAL_CUSTOMER_UPDATE = "manual_customer_update"
    RESOLVED = "resolved"
    # The latest change to what the war room's greeting shows (severity, status, roles,
    # title, impact, resolution ...).
    CHANGED = "changed"
    REOPENED = "reopened"  # the latest reopening of a resolved incident
    RCA_COMPLETED = "rca_completed"
    # Cancelled (a false alarm, declined, merged): the only steps that still run then.
    CANCELLED = "cancelled"
    # A fixed instant carried by the step itself (a follow-up action item's due date).
    FIXED = "fixed"


# Anchors that take one instant in an incident's life.
ONCE_ANCHORS = frozenset(
    {Anchor.DECLARED, Anchor.ACKNOWLEDGED, Anchor.RCA_COMPLETED, Anchor.CANCELLED}
)


class StopEvent(StrEnum):
    """Once one of these has happened, a step plans no more occurrences."""

    ACKNOWLEDGED = "acknowledged"
    COMMANDER_ASSIGNED = "commander_assigned"
    CUSTOMER_UPDATE_POSTED = "customer_update_posted"
    RESOLVED = "resolved"
    RCA_COMPLETED = "rca_completed"


class Condition(StrEnum):
    """Checked again when an occurrence fires; a false condition skips that occurrence."""

    UNACKNOWLEDGED = "unacknowledged"
    UNRESOLVED = "unresolved"
    NO_COMMANDER = "no_commander"


class Action(StrEnum):
    """What a step does. Each maps to one port call in services/actions.py."""

    PAGE = "page"
    OPEN_WAR_ROOM = "open_war_room"
    STATUS_PAGE = "status_page"
    CUSTOMER_NOTIFICATION = "customer_notification"
    CUSTOMER_UPDATE_REMINDER = "customer_update_reminder"
    CUSTOMER_HOLDING_UPDATE = "customer_holding_update"
    REMIND = "remind"
    NOTIFY = "notify"
    ESCALATE = "escalate"
    SCHEDULE_REVIEW = "schedule_review"
    PUBLISH_UPDATE = "publish_update"
    RCA_REMINDER = "rca_reminder"
    RCA_OVERDUE = "rca_overdue"
    # Tell the pager the incident is acknowledged / resolved, so its alerts stop paging.
    PAGER_ACKNOWLEDGE = "pager_acknowledge"
    PAGER_RESOLVE = "pager_resolve"
    # Bring the war room's greeting and topic (severity, status, commander) and members
    # up to date.
    REFRESH_WAR_ROOM = "refresh_war_room"
    # Take the incident off the status page (cancelled): withdrawn, or marked "no impact".
    STATUS_PAGE_WITHDRAW = "status_page_withdraw"
    # Remind a follow-up action item's owner (from the RCA) until it is done.
    FOLLOW_UP_REMINDER = "follow_up_reminder"


# Actions whose message goes to customers (and counts as a customer-facing update).
CUSTOMER_MESSAGES = frozenset({Action.CUSTOMER_NOTIFICATION, Action.CUSTOMER_HOLDING_UPDATE})
# Texts the playbook writes to customers by itself (a person's own update is not one): for
# incidents of the categories that need it (security ...), each waits for the commander's
# approval.
AUTOMATIC_CUSTOMER_TEXTS = CUSTOMER_MESSAGES | {Action.STATUS_PAGE}
# Actions that address a named audience or on-call tier, so `target` is required.
TARGETED_ACTIONS = frozenset(
    {Action.PAGE, Action.NOTIFY, Action.ESCALATE, Action.RCA_REMINDER, Action.RCA_OVERDUE}
)
# Actions whose text comes from a template in comms/ (the war room's steps: its greeting).
TEMPLATED_ACTIONS = frozenset(
    set(Action) - {Action.PAGE, Action.PAGER_ACKNOWLEDGE, Action.PAGER_RESOLVE}
)

_STEP_ID = r"^[a-z0-9][a-z0-9-]*$"
# The ids of the steps the service plans for each follow-up action item (follow_ups.py).
FOLLOW_UP_STEP_PREFIX = "follow-up-"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Window(_Strict):
    """Limits a step to part of the incident's life, counted from the declaration.

    An occurrence that would be due before `from` waits until `from`; one that would be
    due at or after `to` is not planned at all.
    """

    start: Duration = Field(default=timedelta(0), alias="from")
    end: Duration | None = Field(default=None, alias="to")


class ActionSpec(_Strict):
    action: Action
    target: str | None = None
    template: str | None = None

    @model_validator(mode="after")
    def _check_needs(self) -> ActionSpec:
        if self.action in TARGETED_ACTIONS and not self.target:
            raise ValueError(f"action {self.action.value!r} needs a target (an audience or tier)")
        if self.action not in TARGETED_ACTIONS and self.target:
            raise ValueError(
                f"action {self.action.value!r} takes no target; it goes to the war room, "
                "the status page or customers"
            )
        if self.action in TEMPLATED_ACTIONS and not self.template:
            raise ValueError(f"action {self.action.value!r} needs a template from comms/")
        return self


class Reminders(ActionSpec):
    before: list[Duration] = Field(min_length=1)


class OnMissed(ActionSpec):
    every: Duration | None = None


class StepSpec(_Strict):
    """One step as written in YAML. Deadline steps expand into several `Step`s."""

    id: str = Field(pattern=_STEP_ID, max_length=60)
    description: str = ""
    anchor: Anchor
    runbook: str | None = None
    until: Annotated[list[StopEvent], BeforeValidator(_string_list)] = []
    when: Annotated[list[Condition], BeforeValidator(_string_list)] = []
    categories: Annotated[list[Category], BeforeValidator(_string_list)] = []
    stale_after: Duration | None = None
    # A plain step:
    action: Action | None = None
    target: str | None = None
    template: str | None = None
    offset: Duration | None = None
    every: Duration | None = None
    max_occurrences: int | None = Field(default=None, ge=1)
    per_anchor: bool = False
    window: Window | None = None
    # A deadline step:
    deadline: Duration | None = None
    tracks: str | None = None
    remind: Reminders | None = None
    on_missed: OnMissed | None = None

    @field_validator("every")
    @classmethod
    def _positive_every(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("every must be at least 1m")
        return value

    @model_validator(mode="after")
    def _check_shape(self) -> StepSpec:
        self._check_not_the_services_own()
        if self.deadline is not None:
            self._check_deadline_shape(self.deadline)
        else:
            self._check_plain_shape()
        return self

    def _check_not_the_services_own(self) -> None:
        """Ids, anchors and actions the service keeps for the steps it plans itself."""
        if self.id.startswith(FOLLOW_UP_STEP_PREFIX):
            raise ValueError(
                f"ids starting with {FOLLOW_UP_STEP_PREFIX!r} are kept for the reminders of "
                "follow-up action items; choose another id"
            )
        if self.anchor is Anchor.FIXED:
            raise ValueError(
                "anchor fixed is for follow-up action items, which the service plans itself; "
                "a playbook step counts from an event of the incident"
            )
        if self.action is Action.FOLLOW_UP_REMINDER:
            raise ValueError(
                "follow_up_reminder is planned for each follow-up action item by the service, "
                "not by a playbook"
            )

    def _check_deadline_shape(self, deadline: timedelta) -> None:
        stray = [
            name
            for name in (
                "action",
                "offset",
                "every",
                "target",
                "template",
                "max_occurrences",
                "window",
            )
            if getattr(self, name) is not None
        ]
        if stray:
            raise ValueError(f"a deadline step takes remind and on_missed, not {', '.join(stray)}")
        if self.on_missed is None:
            raise ValueError("a deadline step needs on_missed (what happens when it passes)")
        if self.per_anchor:
            raise ValueError("per_anchor is for plain steps, not deadlines")
        if not self.until:
            raise ValueError("a deadline step needs until (the event that meets it)")
        if self.on_missed.every is not None and self.on_missed.every < timedelta(minutes=1):
            raise ValueError("on_missed.every must be at least 1m")
        for before in self.remind.before if self.remind else []:
            if not timedelta(0) < before <= deadline:
                raise ValueError(
                    f"reminder {format_duration(before)} before the deadline falls outside "
                    f"the {format_duration(deadline)} deadline"
                )

    def _check_plain_shape(self) -> None:
        if self.tracks is not None:
            raise ValueError("tracks is only for deadline steps")
        if self.action is None:
            raise ValueError("a step needs an action (or a deadline)")
        if self.offset is None:
            raise ValueError("a step needs an offset from its anchor, like 0m or 4h")
        ActionSpec(action=self.action, target=self.target, template=self.template)
        if self.per_anchor and self.every is not None:
            raise ValueError("per_anchor steps fire once each time their anchor moves; drop every")
        if self.every is not None and not self.until and self.max_occurrences is None:
            raise ValueError(
                "a repeating step needs until or max_occurrences; nothing may repeat forever"
            )


class PlaybookSpec(_Strict):
    severity: Severity
    name: str = Field(min_length=1)
    description: str = ""
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return str(value).upper() if isinstance(value, str) else value


# --- the typed objects the engine interprets ---------------------------------------------


@dataclass(frozen=True)
class Step:
    """One schedulable step. `id` is unique across all playbooks of an incident's life:
    the same id in two playbooks is the same step, so a severity change never repeats it."""

    id: str
    action: Action
    anchor: Anchor
    offset: timedelta
    target: str | None = None
    template: str | None = None
    runbook: str | None = None
    description: str = ""
    every: timedelta | None = None
    max_occurrences: int | None = None
    per_anchor: bool = False  # once each time the anchor moves, not once per incident
    until: tuple[StopEvent, ...] = ()
    when: tuple[Condition, ...] = ()
    categories: tuple[Category, ...] = ()  # empty: every incident
    stale_after: timedelta | None = None
    window_start: timedelta = timedelta(0)
    window_end: timedelta | None = None
    deadline: timedelta | None = None  # on a deadline's reminders and missed step
    tracks: str | None = None  # on a deadline's missed step: which incident deadline it is
    at: datetime | None = None  # the instant of an `Anchor.FIXED` step

    @property
    def repeats(self) -> bool:
        return self.every is not None

    @property
    def keyed_by_due(self) -> bool:
        """Whether an occurrence's due time is part of its effects' idempotency key: a
        repeat, or a step whose anchor can take another instant (an update posted, the
        incident resolved again after reopening). Moved to a new due time, its occurrence
        is a new message, not a repeat of one sent just before a crash. A step counting
        from an anchor that happens once (the declaration ...) is one message per
        incident, wherever a severity change moves it."""
        return self.repeats or self.per_anchor or self.anchor not in ONCE_ANCHORS


@dataclass(frozen=True)
class Playbook:
    severity: Severity
    name: str
    description: str
    steps: tuple[Step, ...]
    source: str

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def deadline(self, name: str) -> timedelta | None:
        """The offset of the named tracked deadline (e.g. `rca_due`) from its anchor."""
        for step in self.steps:
            if step.tracks == name:
                return step.offset
        return None


def expand(spec: StepSpec) -> list[Step]:
    """A plain step is one Step; a deadline step is its reminders plus its missed action."""
    common: dict[str, Any] = {
        "anchor": spec.anchor,
        "runbook": spec.runbook,
        "description": spec.description,
        "until": tuple(spec.until),
        "when": tuple(spec.when),
        "categories": tuple(spec.categories),
        "stale_after": spec.stale_after,
    }
    if spec.deadline is None:
        assert spec.action is not None and spec.offset is not None  # checked by the model
        window = spec.window or Window()
        return [
            Step(
                id=spec.id,
                action=spec.action,
                offset=spec.offset,
                target=spec.target,
                template=spec.template,
                every=spec.every,
                max_occurrences=spec.max_occurrences,
                per_anchor=spec.per_anchor,
                window_start=window.start,
                window_end=window.end,
                **common,
            )
        ]
    common["deadline"] = spec.deadline
    steps = []
    if spec.remind:
        for before in sorted(spec.remind.before, reverse=True):
            steps.append(
                Step(
                    id=f"{spec.id}.reminder-{format_duration(before)}",
                    action=spec.remind.action,
                    offset=spec.deadline - before,
                    target=spec.remind.target,
                    template=spec.remind.template,
                    **common,
                )
            )
    assert spec.on_missed is not None
    steps.append(
        Step(
            id=f"{spec.id}.missed",
            action=spec.on_missed.action,
            offset=spec.deadline,
            target=spec.on_missed.target,
            template=spec.on_missed.template,
            every=spec.on_missed.every,
            tracks=spec.tracks,
            **common,
        )
    )
    return steps


def parse_playbook(document: Any, *, source: str) -> Playbook:
    """Validate one YAML document and build the typed playbook, or raise InvalidPlaybook."""
    if not isinstance(document, dict):
        raise InvalidPlaybook(
            [PlaybookProblem(source, "a playbook is a mapping with severity, name and steps")]
        )
    try:
        spec = PlaybookSpec.model_validate(document)
    except ValidationError as error:
        raise InvalidPlaybook(_problems(error, document, source)) from None
    steps = [step for step_spec in spec.steps for step in expand(step_spec)]
    problems = []
    seen: set[str] = set()
    for step_spec, raw in zip(spec.steps, document["steps"], strict=True):
        if step_spec.id in seen:
            problems.append(
                PlaybookProblem(
                    source,
                    "two steps share this id; ids must be unique",
                    step=str(raw.get("id")),
                    field="id",
                )
            )
        seen.add(step_spec.id)
    for step in steps:
        if step.tracks == "rca_due" and step.anchor is not Anchor.RESOLVED:
            problems.append(
                PlaybookProblem(
                    source,
                    "the rca_due deadline counts from resolved",
                    step=step.id.removesuffix(".missed"),
                    field="anchor",
                )
            )
    tracked = [s.tracks for s in steps if s.tracks]
    for name in {t for t in tracked if tracked.count(t) > 1}:
        problems.append(
            PlaybookProblem(source, f"more than one deadline tracks {name!r}", field="tracks")
        )
    if problems:
        raise InvalidPlaybook(problems)
    return Playbook(
        severity=spec.severity,
        name=spec.name,
        description=spec.description,
        steps=tuple(steps),
        source=source,
    )


def _problems(
    error: ValidationError, document: dict[str, Any], source: str
) -> list[PlaybookProblem]:
    problems = []
    steps_value = document.get("steps")
    raw_steps: list[Any] = steps_value if isinstance(steps_value, list) else []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        step_name: str | None = None
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            index = loc[1]
            raw = raw_steps[index] if index < len(raw_steps) else None
            step_name = str(raw["id"]) if isinstance(raw, dict) and "id" in raw else f"#{index + 1}"
            loc = loc[2:]
        field = ".".join(str(part) for part in loc if not str(part).startswith("function-"))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; check its spelling against playbooks/README.md"
        problems.append(PlaybookProblem(source, message, step=step_name, field=field or None))
    return problems


@dataclass(frozen=True)
class PlaybookSet:
    """The playbook for each severity, and the directory of targets they may name."""

    playbooks: Mapping[Severity, Playbook]
    directory: Directory

    def for_severity(self, severity: Severity) -> Playbook:
        return self.playbooks[severity]

    def steps(self) -> dict[str, Step]:
        """Every step of every playbook by id (a shared id is the same step)."""
        return {step.id: step for playbook in self.playbooks.values() for step in playbook.steps}
