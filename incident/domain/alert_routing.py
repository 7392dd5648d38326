"""Routing rules: which severity, service and category an alert group becomes.

Pure. Rules come from configuration (`alert_routing` in the config file); the first rule
whose matchers all hold for the group's labels wins, else the default rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from incident.domain.errors import InvalidValue
from incident.domain.incident import Category, Severity


@dataclass(frozen=True)
class Matcher:
    """`label=value`, `label!=value`, `label=~regex` or `label!~regex` (as in Alertmanager)."""

    label: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def holds(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        match self.op:
            case "=":
                return actual == self.value
            case "!=":
                return actual != self.value
            case "=~":
                assert self.pattern is not None
                return self.pattern.fullmatch(actual) is not None
            case _:
                assert self.pattern is not None
                return self.pattern.fullmatch(actual) is None

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"

    @classmethod
    def parse(cls, text: str, *, where: str) -> Matcher:
        found = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", text)
        if found is None:
            raise InvalidValue(
                where,
                f"{text!r} is not a matcher; write label=value, label!=value, "
                "label=~regex or label!~regex",
            )
        label, op, value = found.groups()
        value = value.strip("\"'")
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as error:
                raise InvalidValue(where, f"bad regular expression {value!r}: {error}") from None
        return cls(label=label, op=op, value=value, pattern=pattern)


@dataclass(frozen=True)
class Route:
    name: str
    matchers: tuple[Matcher, ...]
    severity: Severity
    category: Category = Category.GENERAL
    service: str | None = None  # fixed service; else the group's `service_label`
    service_label: str = "service"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.holds(labels) for m in self.matchers)

    def service_for(self, labels: Mapping[str, str]) -> str:
        return self.service or labels.get(self.service_label, "") or labels.get("job", "")


@dataclass(frozen=True)
class AlertRouting:
    routes: tuple[Route, ...]
    default: Route
    # Severities whose incidents an "all alerts resolved" notification may resolve. Never
    # P1/P2 by default: a person decides those are over.
    auto_resolve: frozenset[Severity] = frozenset({Severity.P3, Severity.P4})

    def route(self, labels: Mapping[str, str]) -> Route:
        return next((r for r in self.routes if r.matches(labels)), self.default)

    def route_group(
        self, label_sets: Sequence[Mapping[str, str]]
    ) -> tuple[Route, Mapping[str, str]]:
        """The route for a group of alerts: the most severe of their routes (ties go to the
        earlier rule, then the earlier alert), with the labels that chose it.

        One critical alert in a group of warnings makes the group critical: an incident is
        as severe as its worst alert.
        """
        if not label_sets:
            return self.default, {}
        order = {id(r): i for i, r in enumerate(self.routes)}
        routed = [(self.route(labels), labels) for labels in label_sets]
        return min(
            routed, key=lambda pair: (pair[0].severity.rank, order.get(id(pair[0]), len(order)))
        )

    @classmethod
    def default_rules(cls) -> AlertRouting:
        def route(name: str, severity: Severity, *matchers: str) -> Route:
            parsed = tuple(Matcher.parse(m, where="alert_routing") for m in matchers)
            return Route(name=name, matchers=parsed, severity=severity)

        return cls(
            routes=(
                route("critical-tier-1", Severity.P1, "severity=critical", "tier=~1|tier-1|tier1"),
                route("critical", Severity.P2, "severity=critical"),
                route("warning", Severity.P3, "severity=~warning|major"),
            ),
            default=route("default", Severity.P4),
        )

    @classmethod
    def parse(cls, raw: object, *, where: str = "alert_routing") -> AlertRouting:
        """From the config file's `alert_routing` mapping; errors name the rule and field."""
        if raw is None:
            return cls.default_rules()
        if not isinstance(raw, Mapping):
            raise InvalidValue(where, "must be a mapping with routes, default and auto_resolve")
        unknown = set(raw) - {"routes", "default", "auto_resolve"}
        if unknown:
            raise InvalidValue(
                where, f"unknown keys {sorted(unknown)}; use routes, default, auto_resolve"
            )
        routes_raw = raw.get("routes", [])
        if not isinstance(routes_raw, list):
            raise InvalidValue(f"{where}.routes", "must be a list of rules")
        routes = tuple(
            _parse_route(item, where=f"{where}.routes[{index}]", default_name=f"rule-{index + 1}")
            for index, item in enumerate(routes_raw)
        )
        default_raw = raw.get("default", {"severity": "P4"})
        default = _parse_route(default_raw, where=f"{where}.default", default_name="default")
        if default.matchers:
            raise InvalidValue(f"{where}.default", "the default rule takes no match")
        auto = raw.get("auto_resolve", ["P3", "P4"])
        if not isinstance(auto, list):
            raise InvalidValue(f"{where}.auto_resolve", "must be a list of severities, e.g. [P4]")
        auto_resolve = frozenset(
            Severity.parse(str(s), where=f"{where}.auto_resolve[{i}]") for i, s in enumerate(auto)
        )
        return cls(routes=routes, default=default, auto_resolve=auto_resolve)


def _parse_route(raw: object, *, where: str, default_name: str) -> Route:
    if not isinstance(raw, Mapping):
        raise InvalidValue(where, "a rule is a mapping with match, severity, service, category")
    allowed = {"name", "match", "severity", "service", "service_label", "category"}
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidValue(where, f"unknown keys {sorted(unknown)}; use {sorted(allowed)}")
    if "severity" not in raw:
        raise InvalidValue(f"{where}.severity", "every rule names the severity it declares")
    match_raw = raw.get("match", [])
    if isinstance(match_raw, Mapping):
        # {label: value} is shorthand for label=value.
        match_raw = [f"{k}={v}" for k, v in match_raw.items()]
    if isinstance(match_raw, str):
        match_raw = [match_raw]
    if not isinstance(match_raw, list):
        raise InvalidValue(f"{where}.match", "a list of matchers such as severity=critical")
    matchers = tuple(
        Matcher.parse(str(m), where=f"{where}.match[{i}]") for i, m in enumerate(match_raw)
    )
    service = raw.get("service")
    return Route(
        name=str(raw.get("name", default_name)),
        matchers=matchers,
        severity=Severity.parse(str(raw["severity"]), where=f"{where}.severity"),
        category=Category.parse(str(raw.get("category", "general")), where=f"{where}.category"),
        service=str(service) if service is not None else None,
        service_label=str(raw.get("service_label", "service")),
    )
