"""Reads the support playbook (`playbooks/support/`): calendars, the ladder and the clocks.

    calendars.yaml   business-hours calendars (see incident.adapters.files.calendars)
    ladder.yaml      the levels, their contacts, calendars and response times; routing
    clocks.yaml      the timed steps of a case

Every problem is reported (not only the first), each naming the file and where in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from incident.adapters.files.calendars import load_calendars
from incident.adapters.files.pattern_files import load_patterns
from incident.adapters.files.verification_files import load_verification, verification_templates
from incident.domain.business_hours import BusinessCalendar
from incident.domain.case import CaseStatus, Plan
from incident.domain.case_clocks import (
    NOTICE_STEP,
    NOTICE_TEMPLATES,
    TARGET_WORDS,
    CaseAction,
    CaseAnchor,
    CaseStep,
    CaseStop,
    Delay,
    SupportPlaybook,
)
from incident.domain.case_ladder import ANY, CRITICAL, NORMAL, Ladder, Method, Rung, Span
from incident.domain.case_routing import Level, RoutingRules, Urgency
from incident.domain.errors import InvalidPlaybook, InvalidValue, PlaybookProblem
from incident.domain.lifecycle import Severity
from incident.domain.playbook import parse_duration

SUPPORT_DIR = "support"
CANDIDATE_TEMPLATE = "patterns/candidate.txt.j2"  # the post proposing an incident candidate
# Steps that tell nobody: they move or compare the case.
UNTARGETED = (CaseAction.ROUTE, CaseAction.RESOLVE, CaseAction.CLUSTER)
FILES = ("calendars.yaml", "ladder.yaml", "clocks.yaml")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BUSINESS = re.compile(r"^(\d+)\s+business\s+(minute|hour|day)s?$")
_SHARE = re.compile(r"^(\d+(?:\.\d+)?)\s*(%|x)\s+response$")
_RESPONSE_KEYS = (*(p.value for p in Plan), CRITICAL, NORMAL, ANY)
_RUNG_KEYS = {
    "title",
    "method",
    "calendar",
    "contacts",
    "lead",
    "emergency",
    "next",
    "up",
    "subject_prefix",
    "response",
}
_STEP_KEYS = {
    "id",
    "description",
    "action",
    "target",
    "template",
    "anchor",
    "after",
    "every",
    "until",
    "levels",
    "priorities",
    "plans",
    "urgencies",
    "window",
}
E = TypeVar("E")


def support_directory(playbooks_dir: Path, *, shipped: Path) -> tuple[Path, bool]:
    """Where the support playbook of `playbooks_dir` is: its `support/`, or, for a set of
    playbooks made before support cases existed (no `support/` at all), the shipped one
    (`shipped`), so an upgrade keeps the service starting. True: the shipped one stands in."""
    own = playbooks_dir / SUPPORT_DIR
    if own.is_dir() or not (shipped / SUPPORT_DIR).is_dir():
        return own, False
    return shipped / SUPPORT_DIR, True


def load_support(directory: Path, *, comms_dir: Path | None = None) -> SupportPlaybook:
    """The support playbook in `directory` (the playbooks' `support/`); InvalidPlaybook
    listing every problem found. `comms_dir`: check each step's template is there."""
    problems: list[PlaybookProblem] = []
    documents = {name: _read(directory / name, problems) for name in FILES}
    calendars = _calendars(documents["calendars.yaml"], str(directory / FILES[0]), problems)
    ladder_file = str(directory / "ladder.yaml")
    ladder = _ladder(documents["ladder.yaml"], calendars, _Problems(ladder_file, problems))
    rules = ladder.rules if ladder is not None else RoutingRules()
    steps = _steps(documents["clocks.yaml"], rules, _Problems(str(directory / FILES[2]), problems))
    if ladder is not None:
        _check_targets(steps, ladder, _Problems(str(directory / FILES[2]), problems))
    clocks = _Problems(str(directory / FILES[2]), problems)
    on_resolved = clocks.checked(partial(_on_incident_resolved, documents["clocks.yaml"]))
    if comms_dir is not None:
        templates = [(s.id, s.template) for s in steps if s.template]
        templates += [(NOTICE_STEP + "*", name) for name in NOTICE_TEMPLATES.values()]
        for step_id, template in templates:
            if not (comms_dir / "cases" / f"{template}.txt.j2").is_file():
                clocks.add(
                    f"no template cases/{template}.txt.j2 in {comms_dir}",
                    step=step_id,
                    field="template",
                )
    patterns = load_patterns(directory, problems)
    verification = load_verification(directory, problems)
    if comms_dir is not None:
        named = [CANDIDATE_TEMPLATE, *verification_templates(verification)]
        for template in named:
            if not (comms_dir / template).is_file():
                clocks.add(f"no template {template} in {comms_dir}", field="template")
    if problems or ladder is None or on_resolved is None:
        raise InvalidPlaybook(problems)
    return SupportPlaybook(
        ladder=ladder,
        steps=tuple(steps),
        on_incident_resolved=on_resolved,
        patterns=patterns,
        verification=verification,
    )


def _on_incident_resolved(document: Any) -> CaseStatus:
    """`on_incident_resolved: resolved | pending` (resolved when not given)."""
    value = (
        document.get("on_incident_resolved", "resolved")
        if isinstance(document, Mapping)
        else "resolved"
    )
    if value not in (CaseStatus.RESOLVED.value, CaseStatus.PENDING.value):
        raise InvalidValue(
            "on_incident_resolved",
            f"{value!r}: give resolved (the case resolves with its incident) or pending "
            "(it waits for the customer's confirmation)",
        )
    return CaseStatus(value)


class _Problems:
    """Collects one file's problems."""

    def __init__(self, file: str, into: list[PlaybookProblem]) -> None:
        self.file = file
        self.into = into

    def add(self, message: str, *, step: str | None = None, field: str | None = None) -> None:
        self.into.append(PlaybookProblem(self.file, message, step=step, field=field))

    def checked(self, make: Callable[[], E], *, step: str | None = None) -> E | None:
        """`make()`, or None with its InvalidValue recorded."""
        try:
            return make()
        except InvalidValue as error:
            self.add(error.message, step=step, field=error.field)
            return None


def _read(path: Path, problems: list[PlaybookProblem]) -> Any:
    if not path.is_file():
        problems.append(PlaybookProblem(str(path), "missing: the support playbook needs it"))
        return None
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as error:
        problems.append(PlaybookProblem(str(path), f"not valid YAML: {error}"))
        return None


def _calendars(
    document: Any, file: str, problems: list[PlaybookProblem]
) -> dict[str, BusinessCalendar]:
    if document is None:
        return {}
    try:
        return load_calendars(document)
    except InvalidValue as error:
        problems.append(PlaybookProblem(file, error.message, field=error.field))
        return {}


# --- the ladder ------------------------------------------------------------------------------


def _ladder(
    document: Any, calendars: Mapping[str, BusinessCalendar], problems: _Problems
) -> Ladder | None:
    if not isinstance(document, Mapping) or not isinstance(document.get("levels"), Mapping):
        if document is not None:
            problems.add("give `levels:` (each level of the ladder) and `routing:`")
        return None
    unknown = sorted(set(document) - {"levels", "routing", "audiences"})
    if unknown:
        problems.add(f"unknown keys {', '.join(map(str, unknown))}")
    rungs: dict[Level, Rung] = {}
    for name, spec in document["levels"].items():
        level = problems.checked(partial(_enum, Level, name, "levels"))
        if level is None:
            continue
        rung = _rung(level, spec, calendars, problems)
        if rung is not None:
            rungs[level] = rung
    missing = [level.value for level in Level if level not in rungs]
    if missing and len(rungs) == len(document["levels"]):
        problems.add(f"levels missing: {', '.join(missing)}", field="levels")
    for rung in rungs.values():
        if rung.next is not None and rung.next not in rungs:
            problems.add(f"next: {rung.next.value} is not a level", field=rung.level.value)
    rules = problems.checked(lambda: _rules(document.get("routing", {})))
    audiences = problems.checked(lambda: _audiences(document.get("audiences", {})))
    if rules is None or audiences is None or len(rungs) != len(Level):
        return None
    return Ladder(rungs=rungs, rules=rules, audiences=audiences)


def _rung(
    level: Level, spec: Any, calendars: Mapping[str, BusinessCalendar], problems: _Problems
) -> Rung | None:
    where = f"levels.{level.value}"
    if not isinstance(spec, Mapping):
        problems.add("give title, method, calendar, contacts, lead, response", field=where)
        return None
    unknown = sorted(set(spec) - _RUNG_KEYS)
    if unknown:
        problems.add(f"unknown keys {', '.join(map(str, unknown))}", field=where)
    calendar = calendars.get(str(spec.get("calendar")))
    if calendar is None:
        known = ", ".join(calendars) or "none loaded"
        problems.add(
            f"calendar {spec.get('calendar')!r} is not in calendars.yaml ({known})",
            field=f"{where}.calendar",
        )
        return None
    return problems.checked(lambda: _make_rung(level, spec, calendar, where))


def _make_rung(
    level: Level, spec: Mapping[str, Any], calendar: BusinessCalendar, where: str
) -> Rung:
    response = spec.get("response")
    if not isinstance(response, Mapping) or not response:
        raise InvalidValue(f"{where}.response", "give response times, e.g. {pro: 4 business hours}")
    for key in response:
        if key not in _RESPONSE_KEYS:
            raise InvalidValue(
                f"{where}.response", f"{key!r}: keys are {', '.join(_RESPONSE_KEYS)}"
            )
    next_level, up = spec.get("next"), spec.get("up")
    return Rung(
        level=level,
        title=_text(spec.get("title"), f"{where}.title"),
        method=_enum(Method, spec.get("method"), f"{where}.method"),
        calendar=calendar,
        contacts=_destinations(spec.get("contacts"), f"{where}.contacts", required=True),
        lead=_destinations(spec.get("lead"), f"{where}.lead", required=True),
        emergency=_destinations(spec.get("emergency", []), f"{where}.emergency"),
        next=_enum(Level, next_level, f"{where}.next") if next_level is not None else None,
        up=_enum(Level, up, f"{where}.up") if up is not None else None,
        subject_prefix=str(spec.get("subject_prefix", "")),
        response={str(k): parse_span(v, f"{where}.response.{k}") for k, v in response.items()},
    )


def _rules(spec: Any) -> RoutingRules:
    if not isinstance(spec, Mapping):
        raise InvalidValue("routing", "give the thresholds, e.g. {l2_contacts: 3}")
    defaults = RoutingRules()
    unknown = sorted(set(spec) - set(vars(defaults)))
    if unknown:
        raise InvalidValue("routing", f"unknown keys {', '.join(map(str, unknown))}")
    values: dict[str, Any] = {}
    for name, value in spec.items():
        default = getattr(defaults, name)
        try:
            if isinstance(default, timedelta):
                values[name] = parse_duration(str(value))
            else:
                values[name] = type(default)(str(value))
        except (ValueError, ArithmeticError):
            raise InvalidValue(f"routing.{name}", f"{value!r} is not like {default}") from None
    return RoutingRules(**values)


def _audiences(spec: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(spec, Mapping):
        raise InvalidValue("audiences", "a mapping of names to destinations")
    return {str(n): _destinations(d, f"audiences.{n}", required=True) for n, d in spec.items()}


def _destinations(value: Any, where: str, *, required: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (required and not value):
        raise InvalidValue(where, 'a list of destinations, e.g. ["chat:#support"]')
    for item in value:
        kind, _, rest = str(item).partition(":")
        if kind not in ("chat", "email", "pager") or not rest:
            raise InvalidValue(where, f"{item!r}: write chat:#channel, email:address or pager:tier")
    return tuple(str(item) for item in value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(where, "give it as text")
    return value.strip()


def _enum(kind: type[E], value: Any, where: str) -> E:
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        names = ", ".join(str(member.value) for member in kind)  # type: ignore[attr-defined]
        raise InvalidValue(where, f"{value!r} is not one of {names}") from None


def parse_span(value: Any, where: str) -> Span:
    """`30m`, `4h`, `7d` (real time), `30 business minutes`, `4 business hours`,
    `2 business days` (open time of the level's calendar)."""
    text = str(value).strip().lower()
    match = _BUSINESS.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if unit == "day":
            return Span(business_days=amount, business=True)
        length = timedelta(minutes=amount) if unit == "minute" else timedelta(hours=amount)
        return Span(length, business=True)
    try:
        return Span(parse_duration(text))
    except ValueError:
        raise InvalidValue(
            where, f"{value!r}: write 4h, 30m, 4 business hours or 2 business days"
        ) from None


# --- the clocks ------------------------------------------------------------------------------


def _steps(document: Any, rules: RoutingRules, problems: _Problems) -> list[CaseStep]:
    if document is None:
        return []
    if not isinstance(document, Mapping) or not isinstance(document.get("steps"), list):
        problems.add("give `steps:`, a list of the case's timed steps")
        return []
    steps: list[CaseStep] = []
    for index, spec in enumerate(document["steps"]):
        name = str(spec.get("id")) if isinstance(spec, Mapping) else f"#{index + 1}"
        step = problems.checked(partial(_step, spec, rules), step=name)
        if step is None:
            continue
        if any(s.id == step.id for s in steps):
            problems.add("a second step with this id", step=step.id, field="id")
            continue
        steps.append(step)
    return steps


def _step(spec: Any, rules: RoutingRules) -> CaseStep:
    if not isinstance(spec, Mapping):
        raise InvalidValue("step", "each step is a mapping with id, action, anchor, after ...")
    unknown = sorted(set(spec) - _STEP_KEYS)
    if unknown:
        raise InvalidValue("step", f"unknown keys {', '.join(map(str, unknown))}")
    action = _enum(CaseAction, spec.get("action"), "action")
    window = spec.get("window", {})
    if not isinstance(window, Mapping) or set(window) - {"from", "to"}:
        raise InvalidValue("window", "give {from: 4h} and/or {to: 24h}")
    step = CaseStep(
        id=_text(spec.get("id"), "id"),
        description=_text(spec.get("description"), "description"),
        action=action,
        anchor=_enum(CaseAnchor, spec.get("anchor"), "anchor"),
        after=_delay(spec.get("after"), rules),
        target=str(spec["target"]) if spec.get("target") is not None else None,
        template=str(spec["template"]) if spec.get("template") is not None else None,
        every=parse_span(spec["every"], "every") if spec.get("every") is not None else None,
        until=_list(CaseStop, spec.get("until", []), "until"),
        levels=_list(Level, spec.get("levels", []), "levels"),
        priorities=_list(Severity, spec.get("priorities", []), "priorities"),
        plans=_list(Plan, spec.get("plans", []), "plans"),
        urgencies=_list(Urgency, spec.get("urgencies", []), "urgencies"),
        window_from=_real(window.get("from", "0m"), "window.from"),
        window_to=_real(window["to"], "window.to") if "to" in window else None,
    )
    if step.id.startswith(NOTICE_STEP):
        raise InvalidValue("id", f"ids starting {NOTICE_STEP!r} are the linked incident's notices")
    if step.target is None and action not in UNTARGETED:
        raise InvalidValue("target", "name who the step is for")
    if action in (CaseAction.NOTIFY, CaseAction.CUSTOMER_UPDATE) and step.template is None:
        raise InvalidValue("template", "name the message template (comms/<name>.txt.j2)")
    if step.every is not None and not (step.every.length or step.every.business_days):
        raise InvalidValue("every", "a repeat needs a span longer than nothing")
    return step


def _delay(value: Any, rules: RoutingRules) -> Delay:
    """A span, a share of the response time, or a time threshold of the routing rules by
    name (`l2_unresolved_after`), so a threshold is written once, in ladder.yaml."""
    text = str(value).strip().lower() if value is not None else ""
    threshold = getattr(rules, text, None) if text in vars(rules) else None
    if isinstance(threshold, timedelta):
        # The rules say "more than" the threshold: the clock looks a minute past it.
        return Delay(span=Span(threshold + timedelta(minutes=1)))
    match = _SHARE.match(text)
    if match:
        amount = float(match.group(1))
        share = amount / 100 if match.group(2) == "%" else amount
        if share <= 0:
            raise InvalidValue("after", "a share of the response time above nothing")
        return Delay(share=share)
    if not text:
        raise InvalidValue("after", "give the delay: 30m, 4 business hours, 75% response")
    return Delay(span=parse_span(value, "after"))


def _real(value: Any, where: str) -> timedelta:
    try:
        return parse_duration(str(value))
    except ValueError:
        raise InvalidValue(where, f"{value!r}: write a real-time span like 4h") from None


def _list(kind: type[E], value: Any, where: str) -> tuple[E, ...]:
    if not isinstance(value, list):
        raise InvalidValue(where, "a list, e.g. [resolved]")
    return tuple(_enum(kind, item, f"{where}[{i}]") for i, item in enumerate(value))


def _check_targets(steps: list[CaseStep], ladder: Ladder, problems: _Problems) -> None:
    levels = {level.value for level in Level}
    for step in steps:
        if step.action in UNTARGETED:
            continue  # the rules choose where it goes; resolving and comparing go nowhere
        target = step.target or ""
        if target in TARGET_WORDS or target in levels or target in ladder.audiences:
            if step.action is CaseAction.ESCALATE and target not in levels:
                problems.add("an escalation targets a level", step=step.id, field="target")
            continue
        problems.add(
            f"{target!r} is not a level, an audience of ladder.yaml or one of "
            f"{', '.join(TARGET_WORDS)}",
            step=step.id,
            field="target",
        )
