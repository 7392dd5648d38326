"""`playbooks/support/patterns.yaml`: when many customers' cases make an incident candidate
(`incident.domain.patterns.PatternRules`). Optional: without it, the defaults of
`PatternRules` apply and candidates are shown on the dashboard but posted nowhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from incident.domain.case import Plan
from incident.domain.errors import InvalidValue, PlaybookProblem
from incident.domain.patterns import PatternRules
from incident.domain.playbook import parse_duration

PATTERNS_FILE = "patterns.yaml"
_KEYS = {
    "threshold",
    "join_window",
    "novelty_window",
    "trigger",
    "alert_group_weight",
    "p1_enterprise_customers",
    "quiet_for",
    "channel",
    "remind_after",
}
_TRIGGER_KEYS = {"customers", "window", "weights"}


def load_patterns(directory: Path, problems: list[PlaybookProblem]) -> PatternRules:
    """The rules in `directory`/patterns.yaml (the defaults when there is none); each
    problem found is added to `problems`."""
    path = directory / PATTERNS_FILE
    if not path.is_file():
        return PatternRules()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return _rules(document or {})
    except yaml.YAMLError as error:
        problems.append(PlaybookProblem(str(path), f"not valid YAML: {error}"))
    except InvalidValue as error:
        problems.append(PlaybookProblem(str(path), error.message, field=error.field))
    return PatternRules()


def _rules(document: Any) -> PatternRules:
    if not isinstance(document, Mapping):
        raise InvalidValue("patterns", "give a mapping of the settings (threshold, trigger ...)")
    unknown = sorted(set(map(str, document)) - _KEYS)
    if unknown:
        raise InvalidValue(
            unknown[0], f"unknown setting; the settings are {', '.join(sorted(_KEYS))}"
        )
    trigger = document.get("trigger", {})
    if not isinstance(trigger, Mapping) or set(map(str, trigger)) - _TRIGGER_KEYS:
        raise InvalidValue("trigger", "give {customers: 5, window: 6h, weights: {pro: 2}}")
    defaults = PatternRules()
    threshold = _number(document, "threshold", defaults.threshold)
    if not 0 < threshold <= 100:
        raise InvalidValue("threshold", f"{threshold}: a similarity from 1 to 100")
    remind = document.get("remind_after", "30m")
    return PatternRules(
        threshold=threshold,
        join_window=_span(document, "join_window", defaults.join_window),
        novelty_window=_span(document, "novelty_window", defaults.novelty_window),
        trigger_customers=_number(trigger, "customers", defaults.trigger_customers),
        trigger_window=_span(trigger, "window", defaults.trigger_window),
        plan_weights=_weights(trigger.get("weights"), defaults),
        alert_group_weight=_number(document, "alert_group_weight", defaults.alert_group_weight),
        p1_enterprise_customers=int(
            _number(document, "p1_enterprise_customers", defaults.p1_enterprise_customers)
        ),
        quiet_for=_span(document, "quiet_for", defaults.quiet_for),
        channel=_channel(document.get("channel")),
        remind_after=None
        if remind in (None, "never")
        else _parse(parse_duration, remind, "remind_after"),
    )


def _parse(parse: Callable[[str], timedelta], value: Any, where: str) -> timedelta:
    try:
        return parse(str(value))
    except ValueError as error:
        raise InvalidValue(where, str(error)) from None


def _span(spec: Mapping[str, Any], name: str, default: timedelta) -> timedelta:
    return _parse(parse_duration, spec[name], name) if name in spec else default


def _number(spec: Mapping[str, Any], name: str, default: float) -> float:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidValue(name, f"{value!r}: give a number, 0 or more")
    return float(value)


def _weights(value: Any, defaults: PatternRules) -> dict[Plan, float]:
    if value is None:
        return dict(defaults.plan_weights)
    if not isinstance(value, Mapping):
        raise InvalidValue(
            "weights", "give each plan its weight: {starter: 1, pro: 2, enterprise: 5}"
        )
    weights = dict(defaults.plan_weights)
    for plan, weight in value.items():
        try:
            weights[Plan(str(plan))] = _number({"weight": weight}, "weight", 1.0)
        except ValueError:
            plans = ", ".join(p.value for p in Plan)
            raise InvalidValue(
                "weights", f"{plan!r} is not a plan; the plans are {plans}"
            ) from None
    return weights


def _channel(value: Any) -> tuple[str, ...]:
    """Where candidates are posted: `chat:#support-patterns`, `email:leads@example.com`."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and ":" in i for i in items):
        raise InvalidValue("channel", "give destinations like chat:#support-patterns")
    return tuple(items)
