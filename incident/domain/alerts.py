"""Alert notifications in domain words: what a monitoring system told us about an alert group.

Pure. The web layer turns each vendor's webhook (Alertmanager, Grafana) into an
`AlertNotification`; `AlertGroup` is what we keep about one group between notifications and
`AlertGroup.apply` says what a notification changed (alerts that joined, fired again,
resolved), so the use case can put exactly that on the timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from incident.domain.alert_routing import AlertRouting, Route
from incident.domain.text import LABEL, TITLE, TextRule, shorten

LISTED = 10  # alerts named in one timeline entry; the rest are counted
LISTING = 4000  # characters of them at most
# Alert data is cleaned to fit these, never refused: an alert must not be lost to its words.
IMPACT = TextRule("impact", 2000, required=False)
SUMMARY = TextRule("summary", 300, one_line=True, required=False)  # one alert's, listed


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert of a group, as the monitoring system last described it."""

    fingerprint: str
    state: AlertState
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: str = ""  # as the sender gave it (RFC 3339); only shown, never computed with
    generator_url: str = ""

    @property
    def name(self) -> str:
        return LABEL.clean(self.labels.get("alertname", "")) or "alert"

    def describe(self) -> str:
        """`HighErrorRate (instance=host:8080): 5xx ratio above 5%`, for the timeline."""
        where = next(
            (
                f"{k}={LABEL.clean(self.labels[k])}"
                for k in ("instance", "pod", "host", "zone")
                if k in self.labels
            ),
            "",
        )
        text = self.name + (f" ({where})" if where else "")
        summary = SUMMARY.clean(self.annotations.get("summary", ""))
        return f"{text}: {summary}" if summary else text


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable fingerprint from the labels, for senders that give none (16 hex digits,
    like Alertmanager's own)."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AlertNotification:
    """One webhook delivery: the current state of one alert group."""

    source: str  # "alertmanager", "grafana"
    group_key: str
    status: AlertState  # the sender's view of the whole group
    alerts: tuple[Alert, ...]
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    receiver: str = ""
    external_url: str = ""
    truncated: int = 0  # alerts the sender left out (max_alerts)

    @property
    def key_hash(self) -> str:
        """The group's identity in storage: group keys can be long and hold any character."""
        return group_key_hash(self.group_key)

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.state is AlertState.FIRING)

    @property
    def is_firing(self) -> bool:
        """Any alert of the group fires (some may have been left out of a long list)."""
        return self.status is AlertState.FIRING or bool(self.firing)

    def route(self, routing: AlertRouting) -> tuple[Route, Mapping[str, str]]:
        """The most severe route of the firing alerts (all alerts if none fires), and the
        labels that chose it (they name the service)."""
        candidates = self.firing or self.alerts
        return routing.route_group([{**self.common_labels, **a.labels} for a in candidates])

    def title(self, labels: Mapping[str, str]) -> str:
        """`HighErrorRate on checkout: checkout-api 5xx ratio above 5% for 10m`."""
        names = sorted({a.name for a in (self.firing or self.alerts)})
        name = LABEL.clean(self.common_labels.get("alertname", "")) or (
            names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more alerts"
        )
        service = LABEL.clean(labels.get("service", ""))
        head = f"{name} on {service}" if service else name
        summary = self.common_annotations.get("summary", "").strip()
        if not summary and len(self.firing or self.alerts) == 1:
            summary = (self.firing or self.alerts)[0].annotations.get("summary", "").strip()
        return TITLE.clean(f"{head}: {summary}" if summary else head) or "Alert group"

    def impact(self) -> str:
        description = self.common_annotations.get("description", "").strip()
        count = len(self.firing)
        lines = [f"{count} alert{'s' if count != 1 else ''} firing ({self.source})."]
        if description:
            lines.append(description)
        return IMPACT.clean(" ".join(lines))


def group_key_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


def fallback_group_key(fingerprints: Sequence[str]) -> str:
    """For senders without a group key: the group is its set of alerts."""
    return "fingerprints:" + ",".join(sorted(set(fingerprints)))


@dataclass(frozen=True)
class AlertRecord:
    """What we keep about one alert of a group."""

    state: AlertState
    name: str
    since: str  # the sender's startsAt, ISO 8601, as given

    def to_json(self) -> dict[str, str]:
        return {"state": self.state.value, "name": self.name, "since": self.since}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AlertRecord:
        return cls(
            state=AlertState(raw["state"]), name=str(raw["name"]), since=str(raw.get("since", ""))
        )


@dataclass(frozen=True)
class AlertChanges:
    """What one notification changed in a group, in the notification's own order."""

    joined: tuple[Alert, ...] = ()  # not seen before in this group
    refired: tuple[Alert, ...] = ()  # seen resolved before, firing again
    resolved: tuple[Alert, ...] = ()  # seen firing before (or new), now resolved
    unchanged: int = 0

    def __bool__(self) -> bool:
        return bool(self.joined or self.refired or self.resolved)


@dataclass
class AlertGroup:
    """One alert group's incident: generation N of a group key is the Nth incident it caused.

    A group whose incident is over (resolved or closed) and which fires again starts the
    next generation, with a new incident.
    """

    source: str
    group_key: str
    generation: int
    incident_id: int
    alerts: dict[str, AlertRecord]
    firing: bool
    created_at: datetime
    updated_at: datetime

    @property
    def key_hash(self) -> str:
        return group_key_hash(self.group_key)

    @classmethod
    def start(
        cls, notification: AlertNotification, *, generation: int, incident_id: int, at: datetime
    ) -> tuple[AlertGroup, AlertChanges]:
        group = cls(
            source=notification.source,
            group_key=notification.group_key,
            generation=generation,
            incident_id=incident_id,
            alerts={},
            firing=True,
            created_at=at,
            updated_at=at,
        )
        return group, group.apply(notification, at=at)

    def apply(self, notification: AlertNotification, *, at: datetime) -> AlertChanges:
        """Take in the group's current state; return what changed since the last one."""
        joined: list[Alert] = []
        refired: list[Alert] = []
        resolved: list[Alert] = []
        unchanged = 0
        for alert in notification.alerts:
            before = self.alerts.get(alert.fingerprint)
            if alert.state is AlertState.FIRING:
                if before is None:
                    joined.append(alert)
                elif before.state is AlertState.RESOLVED:
                    refired.append(alert)
                else:
                    unchanged += 1
            elif before is None or before.state is AlertState.FIRING:
                resolved.append(alert)
            else:
                unchanged += 1
            self.alerts[alert.fingerprint] = AlertRecord(
                state=alert.state,
                name=alert.name,
                since=alert.starts_at,
            )
        # The notification is the whole group as the sender sees it now (alerts it dropped
        # have resolved and were reported): the group fires while any alert in it does.
        self.firing = notification.is_firing
        self.updated_at = at
        return AlertChanges(tuple(joined), tuple(refired), tuple(resolved), unchanged)


def listing(alerts: Sequence[Alert]) -> str:
    """Up to LISTED alerts described, then how many more (at most LISTING characters)."""
    shown = "; ".join(a.describe() for a in alerts[:LISTED])
    more = len(alerts) - LISTED
    return shorten(shown, LISTING) + (f"; and {more} more" if more > 0 else "")
