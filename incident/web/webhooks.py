"""Alert webhooks: Prometheus Alertmanager (`POST /webhooks/alertmanager`, payload version
"4") and Grafana alerting (`POST /webhooks/grafana`, version "1").

Each payload is validated (pydantic; vendors add fields, so unknown ones are allowed, but
the fields we use must have the right types), turned into a vendor-neutral
`AlertNotification` and handed to `services.alerts.ingest_alerts`. Callers authenticate with
a bearer token of at least the responder role; Alertmanager sends one with
`http_config: {authorization: {type: Bearer, credentials: ...}}`. Bad input is a 4xx
`{"error", "detail"}` and stores nothing.

The answer (200) says what the notification did: `result` (created, updated, resolved,
recorded, ignored; see `services.alerts.AlertOutcome`), the incident, and what went on its
timeline. `incident_alert_notifications_total{source, result}` counts them, with
`rejected` for 4xx answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from incident.domain.access import AccessRole
from incident.domain.alerts import (
    Alert,
    AlertNotification,
    AlertState,
    fallback_group_key,
    label_fingerprint,
)
from incident.domain.errors import DomainError
from incident.services.alerts import AlertOutcome, ingest_alerts
from incident.web.auth import authenticate
from incident.web.context import CONTAINER, METRICS
from incident.web.errors import ApiError, guarded, validation_detail

ALERTMANAGER_PATH = "/webhooks/alertmanager"
GRAFANA_PATH = "/webhooks/grafana"

Labels = dict[str, str]


class _Vendor(BaseModel):
    # Strict types (a label value must be a string, not a number), but vendors add fields
    # from version to version (notification_reason, routeLabels, values ...): allow them.
    # Field names are the vendors' camelCase ones (aliases).
    model_config = ConfigDict(strict=True, extra="allow", alias_generator=to_camel)


class AlertIn(_Vendor):
    """One alert, as both Alertmanager and Grafana send it."""

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    # Kept as given (RFC 3339, Go's nanoseconds, or Go's zero time): we only show them.
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class _Group(_Vendor):
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AlertIn] = Field(min_length=1)
    group_labels: Labels = Field(default_factory=dict)
    common_labels: Labels = Field(default_factory=dict)
    common_annotations: Labels = Field(default_factory=dict)
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, ge=0)


class AlertmanagerWebhook(_Group):
    """Alertmanager's `webhook_config` payload, version 4."""

    version: Literal["4"]
    group_key: str = Field(min_length=1)


class GrafanaWebhook(_Group):
    """Grafana alerting's webhook contact point payload, version 1."""

    version: Literal["1"]
    group_key: str = ""  # sent by Grafana; without it, the group is its set of alerts
    org_id: int | None = None
    title: str = ""
    state: str = ""
    message: str = ""


Payload = TypeVar("Payload", bound=_Group)


def to_notification(source: str, payload: _Group, group_key: str) -> AlertNotification:
    alerts = tuple(
        Alert(
            fingerprint=a.fingerprint or label_fingerprint(a.labels),
            state=AlertState(a.status),
            labels=a.labels,
            annotations=a.annotations,
            starts_at=a.starts_at[:64],
            generator_url=a.generator_url,
        )
        for a in payload.alerts
    )
    return AlertNotification(
        source=source,
        group_key=group_key or fallback_group_key([a.fingerprint for a in alerts]),
        status=AlertState(payload.status),
        alerts=alerts,
        common_labels=payload.common_labels,
        common_annotations=payload.common_annotations,
        receiver=payload.receiver,
        external_url=payload.external_url,
        truncated=payload.truncated_alerts,
    )


async def _payload(
    request: web.Request, model: type[Payload], *, what: str, version: str
) -> Payload:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "bad request", f"send {what} as a JSON body")
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported media type",
            f"the body must be application/json, not {request.content_type!r}",
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if any(p["type"] == "json_invalid" for p in problems):
            raise ApiError(400, "malformed JSON", "the body is not valid JSON") from None
        detail = validation_detail(error)
        for item in detail:
            if item["field"] == "version":
                item["problem"] = (
                    f"this endpoint takes {what}, whose version is {version!r} (a string); "
                    "check the sender and the URL"
                )
        raise ApiError(422, "invalid value", detail) from None


async def _receive(
    request: web.Request,
    *,
    source: str,
    parse: Callable[[web.Request], Awaitable[AlertNotification]],
) -> web.Response:
    metrics = request.app[METRICS]
    try:
        principal = authenticate(request, at_least=AccessRole.RESPONDER)
        notification = await parse(request)
        container = request.app[CONTAINER]
        outcome = await ingest_alerts(
            container.runtime,
            notification,
            routing=container.settings.alert_routing,
            by=principal,
        )
    except (ApiError, DomainError, ValidationError, web.HTTPException):
        metrics.alerts.labels(source, "rejected").inc()
        raise
    except Exception:
        metrics.alerts.labels(source, "failed").inc()
        raise
    metrics.alerts.labels(source, outcome.result).inc()
    return web.json_response(answer(outcome, notification))


def answer(outcome: AlertOutcome, notification: AlertNotification) -> dict[str, Any]:
    """What the sender (and whoever reads its logs) is told the notification did."""
    incident = outcome.incident
    changes = outcome.changes
    return {
        "result": outcome.result,
        "created": outcome.created,
        "detail": outcome.detail,
        "incident": None
        if incident is None
        else {
            "id": incident.id,
            "ref": incident.ref,
            "title": incident.title,
            "severity": incident.severity.value,
            "status": incident.status.value,
            "service": incident.service,
            "category": incident.category.value,
        },
        "group": {
            "source": notification.source,
            "generation": outcome.generation,
            "firing": notification.is_firing,
        },
        "alerts": {
            "received": len(notification.alerts),
            "joined": len(changes.joined),
            "firing_again": len(changes.refired),
            "resolved": len(changes.resolved),
            "unchanged": changes.unchanged,
        },
        "recorded": list(outcome.recorded),
    }


async def _alertmanager(request: web.Request) -> AlertNotification:
    payload = await _payload(
        request, AlertmanagerWebhook, what="Alertmanager's webhook payload", version="4"
    )
    return to_notification("alertmanager", payload, payload.group_key)


async def _grafana(request: web.Request) -> AlertNotification:
    payload = await _payload(request, GrafanaWebhook, what="Grafana's webhook payload", version="1")
    return to_notification("grafana", payload, payload.group_key)


async def alertmanager(request: web.Request) -> web.Response:
    return await _receive(request, source="alertmanager", parse=_alertmanager)


async def grafana(request: web.Request) -> web.Response:
    return await _receive(request, source="grafana", parse=_grafana)


def add_routes(app: web.Application) -> None:
    app.router.add_post(ALERTMANAGER_PATH, guarded(alertmanager))
    app.router.add_post(GRAFANA_PATH, guarded(grafana))
