"""Prometheus metrics, on a registry of the application's own (no process-wide state)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from incident.domain.incident import Incident, Severity
from incident.services.engine import StepReport

# Lateness from a few milliseconds (the look-ahead keeps us there) to minutes (a backlog
# after an outage).
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.open_incidents = Gauge(
            "incident_open_incidents",
            "Incidents not yet resolved, by severity.",
            ["severity"],
            registry=self.registry,
        )
        self.steps = Counter(
            "incident_steps",
            "Playbook step occurrences run, by action and outcome "
            "(done, retry, failed, skipped, cancelled).",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.lateness = Histogram(
            "incident_step_lateness_seconds",
            "From a step's due time to when it started.",
            ["action"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.vendor_failures = Counter(
            "incident_vendor_call_failures",
            "Effects that failed at the vendor (each failed attempt), by action.",
            ["action"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "incident_alert_notifications",
            "Alert webhook notifications received, by source and what they did.",
            ["source", "result"],
            registry=self.registry,
        )
        self.slack_commands = Counter(
            "incident_slack_commands",
            "Slack slash commands, by subcommand and result.",
            ["command", "result"],
            registry=self.registry,
        )
        for severity in Severity:
            self.open_incidents.labels(severity.value).set(0)

    def step_finished(self, report: StepReport) -> None:
        action = report.occurrence.action
        self.steps.labels(action, report.result).inc()
        if report.result in ("retry", "failed"):
            self.vendor_failures.labels(action).inc()
        if report.result in ("done", "retry", "failed"):
            self.lateness.labels(action).observe(max(0.0, report.lateness.total_seconds()))

    def set_open_incidents(self, incidents: list[Incident]) -> None:
        counts = Tally(i.severity for i in incidents)
        for severity in Severity:
            self.open_incidents.labels(severity.value).set(counts.get(severity, 0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
