"""Alert routing rules: labels -> severity, service and category; config errors say where."""

from __future__ import annotations

from typing import Any

import pytest

from incident.domain.alert_routing import AlertRouting, Matcher
from incident.domain.errors import InvalidValue
from incident.domain.incident import Category, Severity

DEFAULT = AlertRouting.default_rules()


@pytest.mark.parametrize(
    ("labels", "severity", "rule"),
    [
        ({"severity": "critical", "tier": "1"}, Severity.P1, "critical-tier-1"),
        ({"severity": "critical", "tier": "tier-1"}, Severity.P1, "critical-tier-1"),
        ({"severity": "critical", "tier": "2"}, Severity.P2, "critical"),
        ({"severity": "critical"}, Severity.P2, "critical"),
        ({"severity": "warning"}, Severity.P3, "warning"),
        ({"severity": "major"}, Severity.P3, "warning"),
        ({"severity": "info"}, Severity.P4, "default"),
        ({}, Severity.P4, "default"),
        # regexes match the whole value, as in Alertmanager
        ({"severity": "critical", "tier": "10"}, Severity.P2, "critical"),
        ({"severity": "warnings"}, Severity.P4, "default"),
    ],
)
def test_default_rules(labels: dict[str, str], severity: Severity, rule: str) -> None:
    route = DEFAULT.route(labels)
    assert (route.severity, route.name) == (severity, rule)


def test_default_rules_never_auto_resolve_p1_or_p2() -> None:
    assert DEFAULT.auto_resolve == {Severity.P3, Severity.P4}
    assert AlertRouting.parse(None) == DEFAULT


@pytest.mark.parametrize(
    ("text", "labels", "holds"),
    [
        ("env=prod", {"env": "prod"}, True),
        ("env=prod", {"env": "staging"}, False),
        ("env=prod", {}, False),
        ("env!=prod", {"env": "staging"}, True),
        ("env!=prod", {}, True),
        ("env!=prod", {"env": "prod"}, False),
        ("env=~prod|staging", {"env": "staging"}, True),
        ("env=~prod", {"env": "prod-eu"}, False),
        ("env!~prod.*", {"env": "prod-eu"}, False),
        ("env!~prod.*", {"env": "dev"}, True),
        ('team="payments"', {"team": "payments"}, True),
        ("  env = prod  ", {"env": "prod"}, True),
        ("env=", {}, True),  # an empty value matches a missing label, as in Alertmanager
    ],
)
def test_matchers(text: str, labels: dict[str, str], holds: bool) -> None:
    assert Matcher.parse(text, where="test").holds(labels) is holds


def test_a_configured_rule_set() -> None:
    routing = AlertRouting.parse(
        {
            "routes": [
                {
                    "name": "security",
                    "match": ["team=security"],
                    "severity": "P1",
                    "category": "security",
                    "service": "identity",
                },
                {"match": {"severity": "page"}, "severity": "p2", "service_label": "app"},
                {"match": "severity=ticket", "severity": "P4"},
            ],
            "default": {"severity": "P3"},
            "auto_resolve": ["P4", "P1"],
        }
    )
    security = routing.route({"team": "security", "service": "login"})
    assert (security.severity, security.category) == (Severity.P1, Category.SECURITY)
    assert security.service_for({"service": "login"}) == "identity"  # fixed service wins
    page = routing.route({"severity": "page", "app": "billing", "service": "other"})
    assert (page.name, page.severity) == ("rule-2", Severity.P2)
    assert page.service_for({"severity": "page", "app": "billing"}) == "billing"
    assert routing.route({"severity": "ticket"}).severity is Severity.P4
    assert routing.route({"anything": "else"}).severity is Severity.P3
    assert routing.auto_resolve == {Severity.P1, Severity.P4}


def test_the_service_falls_back_to_the_job_label() -> None:
    route = DEFAULT.route({})
    assert route.service_for({"service": "checkout", "job": "checkout-api"}) == "checkout"
    assert route.service_for({"job": "checkout-api"}) == "checkout-api"
    assert route.service_for({}) == ""


def test_a_group_takes_its_most_severe_alert() -> None:
    route, labels = DEFAULT.route_group(
        [
            {"severity": "warning", "service": "a"},
            {"severity": "critical", "service": "b"},
            {"severity": "critical", "tier": "1", "service": "c"},
            {"severity": "critical", "tier": "1", "service": "d"},
        ]
    )
    assert route.severity is Severity.P1
    assert labels["service"] == "c"  # ties go to the earlier alert


def test_a_group_tie_goes_to_the_earlier_rule() -> None:
    routing = AlertRouting.parse(
        {
            "routes": [
                {"name": "db", "match": ["team=db"], "severity": "P2", "service": "database"},
                {"name": "web", "match": ["team=web"], "severity": "P2", "service": "website"},
            ]
        }
    )
    route, _ = routing.route_group([{"team": "web"}, {"team": "db"}])
    assert route.name == "db"


def test_an_empty_group_takes_the_default_rule() -> None:
    route, labels = DEFAULT.route_group([])
    assert route is DEFAULT.default and labels == {}


@pytest.mark.parametrize(
    ("raw", "where", "says"),
    [
        ("P1", "alert_routing", "must be a mapping"),
        ({"rules": []}, "alert_routing", "unknown keys ['rules']"),
        ({"routes": {"a": 1}}, "alert_routing.routes", "must be a list"),
        ({"routes": ["severity=critical"]}, "alert_routing.routes[0]", "a rule is a mapping"),
        ({"routes": [{"match": "a=b"}]}, "alert_routing.routes[0].severity", "every rule names"),
        (
            {"routes": [{"match": "a=b", "severity": "P5"}]},
            "alert_routing.routes[0].severity",
            "unknown severity 'P5'",
        ),
        (
            {"routes": [{"match": "a=b", "severity": "P1", "category": "oops"}]},
            "alert_routing.routes[0].category",
            "unknown category 'oops'",
        ),
        (
            {"routes": [{"match": "a=b", "severity": "P1", "playbook": "x"}]},
            "alert_routing.routes[0]",
            "unknown keys ['playbook']",
        ),
        (
            {"routes": [{}, {"match": ["a==b"], "severity": "P1"}]},
            "alert_routing.routes[0].severity",
            "every rule names",
        ),
        (
            {"routes": [{"match": ["a = b", "not a matcher"], "severity": "P1"}]},
            "alert_routing.routes[0].match[1]",
            "is not a matcher",
        ),
        (
            {"routes": [{"match": ["a=~("], "severity": "P1"}]},
            "alert_routing.routes[0].match[0]",
            "bad regular expression",
        ),
        (
            {"routes": [{"match": 3, "severity": "P1"}]},
            "alert_routing.routes[0].match",
            "a list of matchers",
        ),
        (
            {"default": {"match": "a=b", "severity": "P4"}},
            "alert_routing.default",
            "takes no match",
        ),
        ({"auto_resolve": "P4"}, "alert_routing.auto_resolve", "must be a list"),
        ({"auto_resolve": ["P9"]}, "alert_routing.auto_resolve[0]", "unknown severity"),
    ],
)
def test_configuration_errors_say_where_and_what(raw: Any, where: str, says: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        AlertRouting.parse(raw)
    assert caught.value.field == where
    assert says in caught.value.message


def test_the_config_file_location_is_named() -> None:
    with pytest.raises(InvalidValue) as caught:
        AlertRouting.parse({"routes": [{"severity": "P7"}]}, where="incident.yaml: alert_routing")
    assert caught.value.field == "incident.yaml: alert_routing.routes[0].severity"
