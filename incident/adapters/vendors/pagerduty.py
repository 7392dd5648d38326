"""PagerDuty as the Pager: pages through the Events API v2, finds who is on call (REST API v2).

The `pagerduty` package's clients are synchronous: every HTTP attempt runs on a worker
thread, one attempt per hand-off, and the waits between attempts are on the event loop
(through the Clock), so a slow or failing PagerDuty never blocks it. The package's own retry
loop is switched off (it sleeps on the worker thread, ignores Retry-After and by default
retries HTTP 429 for ever); this adapter retries instead, a bounded number of times, and then
raises `VendorUnavailable`, leaving the rest to the scheduler's durable retry.

Idempotency: one `dedup_key` per incident and paging tier (`inc-42/tier3`), never per step
occurrence, so a retried or repeated page of the same team updates one PagerDuty alert. Each
key is stored (VendorRefs, names `dedup:1`, `dedup:2` ...) before its first trigger, so
acknowledging or resolving the incident reaches every alert it opened, even after a crash.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
import pagerduty

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.retries import (
    Failure,
    RetryBudget,
    VendorRetry,
    retry_after_seconds,
)
from incident.clock import Clock
from incident.domain.incident import Incident, Severity
from incident.services.ports import (
    OnCall,
    Topic,
    VendorError,
    VendorRejected,
    each_said,
    failed_together,
)

log = logging.getLogger("incident.adapters.pagerduty")

VENDOR = "pagerduty"
VENDOR_NAME = "PagerDuty"
EVENTS_URL = "https://events.pagerduty.com"
API_URL = "https://api.pagerduty.com"
# PagerDuty's documented limit for `payload.summary`; longer summaries are cut, not refused.
SUMMARY_LIMIT = 1024
# The Accept header that selects REST API v2, and the Content-Type the published spec lists
# as a required header of every REST operation (GET included).
REST_ACCEPT = "application/vnd.pagerduty+json;version=2"
REST_CONTENT_TYPE = "application/json"
ONCALLS_PAGE = 100  # entries per page of GET /oncalls
ONCALLS_PAGES = 10  # a war room needs the first few people, not a directory

SEVERITIES: Mapping[Severity, str] = {
    Severity.P1: "critical",
    Severity.P2: "error",
    Severity.P3: "warning",
    Severity.P4: "info",
}

T = TypeVar("T")


# --- errors ----------------------------------------------------------------------------------


# --- domain results --------------------------------------------------------------------------


# --- clients ---------------------------------------------------------------------------------


def events_client(
    *,
    routing_key: str,
    base_url: str = EVENTS_URL,
    timeout: float = 10.0,
    verify: ssl.SSLContext | bool = True,
    trust_env: bool = True,
) -> pagerduty.EventsApiV2Client:
    """An Events API v2 client for `PagerDutyPager` (the caller owns it and closes it).

    `timeout` bounds each HTTP attempt (connect, read, write); `verify`: an SSL context that
    trusts a private CA (tests), or True for the system's. The base URL must be https.
    """
    client = pagerduty.EventsApiV2Client(
        routing_key, base_url=base_url.rstrip("/"), verify=verify, trust_env=trust_env
    )
    _set_timeout(client, timeout)
    return client


def rest_client(
    *,
    api_token: str,
    base_url: str = API_URL,
    timeout: float = 10.0,
    verify: ssl.SSLContext | bool = True,
    trust_env: bool = True,
) -> pagerduty.RestApiV2Client:
    """A REST API v2 client (`Authorization: Token token=...`) for the on-call lookup."""
    client = pagerduty.RestApiV2Client(
        api_token, base_url=base_url.rstrip("/"), verify=verify, trust_env=trust_env
    )
    _set_timeout(client, timeout)
    return client


def _set_timeout(client: pagerduty.ApiClient, seconds: float) -> None:
    # The package sends `client.timeout` with every request; it is declared as an int.
    client.timeout = httpx2.Timeout(seconds)  # type: ignore[assignment]


def _one_attempt_per_call(client: pagerduty.ApiClient) -> None:
    """Make the package hand every failure straight back instead of retrying it itself."""
    # A status listed in `retry` is given up on once more than `max_http_attempts` retries
    # were made in all: with -1, before the first one. (0 in `retry` would mean "default",
    # which for 429 is to retry without limit.)
    client.retry = dict.fromkeys((429, 500, 502, 503, 504), 1)
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    # We log every failed attempt ourselves (structured, with the incident id); the
    # package's own lines would repeat them, and its "exceeded ... attempts (-1)" misleads.
    quiet = logging.Logger("pagerduty.client")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    client.log = quiet


# --- one attempt, on a worker thread ---------------------------------------------------------


class _Failed(Exception):
    """One attempt failed; raised on the worker thread, read by `PagerDutyPager._failure_of`
    for the retry loop."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # the raw header value, if the vendor sent one


def _attempt(call: Callable[[], T], secrets: Sequence[str]) -> T:
    try:
        return call()
    except pagerduty.Error as error:
        raise _classify(error, secrets) from None


def _classify(error: pagerduty.Error, secrets: Sequence[str]) -> _Failed:
    response = error.response
    if response is None:
        cause = error.__cause__
        if isinstance(cause, httpx2.TimeoutException):
            return _Failed("timed out", retryable=True)
        if isinstance(cause, httpx2.ConnectError):
            return _Failed("could not connect", retryable=True)
        if isinstance(cause, httpx2.TransportError):
            return _Failed(f"connection failed ({type(cause).__name__})", retryable=True)
        return _Failed("the request could not be made", retryable=False)
    status = int(response.status_code)
    if response.is_success:
        return _Failed(f"malformed response (HTTP {status})", retryable=True)
    retry_after = response.headers.get("retry-after") or response.headers.get("ratelimit-reset")
    if status == 429:
        return _Failed("rate limited (HTTP 429)", retryable=True, retry_after=retry_after)
    if status >= 500:
        return _Failed(f"server error (HTTP {status})", retryable=True, retry_after=retry_after)
    hint = " (check the routing key or API token)" if status in (401, 403) else ""
    detail = _error_detail(response, secrets)
    return _Failed(f"refused the request (HTTP {status}){hint}{detail}", retryable=False)


def _error_detail(response: httpx2.Response, secrets: Sequence[str]) -> str:
    """The vendor's own words about a refusal, short, with any credential blanked out."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # REST API v2 wraps its error
    if not isinstance(body, dict):
        return ""
    parts = [str(body["message"])] if body.get("message") else []
    errors = body.get("errors")
    if isinstance(errors, list):
        parts += [str(e) for e in errors]
    text = "; ".join(parts)[:300]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return f": {text}" if text else ""


def _send_event(
    client: pagerduty.EventsApiV2Client, action: str, dedup_key: str, properties: dict[str, Any]
) -> str:
    returned = client.send_event(action, dedup_key=dedup_key, **properties)
    if returned != dedup_key:
        raise _Failed("malformed response (another dedup_key came back)", retryable=True)
    return dedup_key


def _fetch_on_calls(
    client: pagerduty.RestApiV2Client,
    *,
    escalation_policy_id: str | None,
    schedule_id: str | None,
    service_id: str | None,
) -> list[OnCall]:
    if service_id is not None:
        service = client.rget(f"/services/{quote(service_id, safe='')}")
        policy = service.get("escalation_policy") if isinstance(service, dict) else None
        if not isinstance(policy, dict) or not isinstance(policy.get("id"), str):
            raise _Failed("malformed response (service without escalation policy)", retryable=True)
        escalation_policy_id = policy["id"]
    # `include[]=users` embeds each user (with e-mail) instead of a bare reference.
    params: dict[str, Any] = {"include[]": ["users"], "limit": ONCALLS_PAGE}
    if escalation_policy_id is not None:
        params["escalation_policy_ids[]"] = [escalation_policy_id]
    if schedule_id is not None:
        params["schedule_ids[]"] = [schedule_id]
    # Paged here rather than with the package's `iter_all`, which on a page without `more`
    # only warns and returns what it has: a half answer must fail, not pass for everyone.
    entries: list[Any] = []
    for page in range(ONCALLS_PAGES):
        body = client.jget("/oncalls", params={**params, "offset": page * ONCALLS_PAGE})
        oncalls = body.get("oncalls") if isinstance(body, dict) else None
        more = body.get("more") if isinstance(body, dict) else None
        if not isinstance(oncalls, list) or not isinstance(more, bool):
            raise _Failed("malformed response (on-call list)", retryable=True)
        entries += oncalls
        if not more:
            return _on_calls(entries)
    raise _Failed(f"more than {ONCALLS_PAGES * ONCALLS_PAGE} on-call entries", retryable=False)


def _on_calls(entries: Iterable[Any]) -> list[OnCall]:
    """One OnCall per person, at the lowest (first-paged) level they hold, in paging order."""
    people: dict[str, OnCall] = {}
    for entry in entries:
        user = entry.get("user") if isinstance(entry, dict) else None
        level = entry.get("escalation_level") if isinstance(entry, dict) else None
        if not isinstance(user, dict) or not isinstance(level, int):
            raise _Failed("malformed response (on-call entry)", retryable=True)
        name, email = user.get("name") or user.get("summary"), user.get("email")
        if not isinstance(name, str) or not isinstance(email, str):
            raise _Failed(
                "malformed response (on-call user without name or e-mail)", retryable=True
            )
        known = people.get(email.lower())
        if known is None or level < known.escalation_level:
            people[email.lower()] = OnCall(name=name, email=email, escalation_level=level)
    return sorted(people.values(), key=lambda p: (p.escalation_level, p.name))


# --- the adapter -----------------------------------------------------------------------------


class PagerDutyPager:
    """Implements Pager with PagerDuty's Events API v2, plus acknowledge / resolve of every
    alert an incident opened, and the REST API v2 on-call lookup for the war room.

    It is handed its clients (see `events_client` and `rest_client`; their creator closes
    them) and switches off their own retrying: this adapter's bounded retry replaces it.
    """

    def __init__(
        self,
        *,
        events: pagerduty.EventsApiV2Client,
        refs: VendorRefs,
        clock: Clock,
        rest: pagerduty.RestApiV2Client | None = None,
        retry: RetryBudget | None = None,
        executor: Executor | None = None,
        source: str = "incident-service",
        base_url: str | None = None,
        escalation_policies: Mapping[str, str] | None = None,
    ) -> None:
        """`executor`: the threads that make the blocking HTTP calls (default: the loop's
        default executor); `source`: PagerDuty's `payload.source` when an incident names no
        service; `base_url`: how links in the alert reach this service's incident page."""
        self._events = events
        self._rest = rest
        self._refs = refs
        self._clock = clock
        self._retrying = VendorRetry(
            vendor=VENDOR_NAME,
            budget=retry or RetryBudget(),
            clock=clock,
            failure_of=self._failure_of,
            log=log,
            retry_action="pagerduty_retry",
            gave_up_action="pagerduty_gave_up",
        )
        self._executor = executor
        self._source = source
        self._base_url = base_url.rstrip("/") if base_url else None
        # Our on-call tier -> its PagerDuty escalation policy, for `on_call`.
        self._policies = dict(escalation_policies or {})
        for client in (events, rest):
            if client is not None:
                _one_attempt_per_call(client)
        if rest is not None:
            rest.headers["Content-Type"] = REST_CONTENT_TYPE
        self._secrets = tuple(str(c.auth_method.secret) for c in (events, rest) if c is not None)

    # --- Pager -------------------------------------------------------------------------------

    async def page(self, *, incident: Incident, tier: str, summary: str, key: str) -> str:
        """Trigger the alert of (incident, tier); returns its dedup_key.

        Every page of one tier for one incident, a retry or a re-page, is a trigger with the
        same dedup_key: PagerDuty adds it to the one open alert instead of opening another.
        """
        incident_id = _id(incident)
        dedup_key = dedup_key_for(incident, tier)
        # Remembered before the trigger: a crash between the two still lets resolve find it.
        await self._remember(incident_id, dedup_key)
        properties = self._trigger_properties(incident, tier=tier, summary=summary, key=key)
        call = functools.partial(_send_event, self._events, "trigger", dedup_key, properties)
        await self._call(f"trigger of {dedup_key}", call, incident_id=incident_id)
        log.info(
            "paged through PagerDuty",
            extra={
                "action": "pagerduty_triggered",
                "incident_id": incident_id,
                "tier": tier,
                "dedup_key": dedup_key,
                "key": key,
            },
        )
        return dedup_key

    # --- Messenger: `pager:` destinations of any other kind of subject -----------------------

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Page each `pager:<tier>` destination about a subject that is not an incident (a
        support case that cannot wait): one alert per (subject, tier), whatever the step,
        so a reminder or a retry adds to the open alert instead of opening another. Every
        tier is tried; the failures are raised together."""
        failures: list[tuple[str, VendorError]] = []
        for destination in dict.fromkeys(destinations):
            tier = destination.removeprefix(PAGER_PREFIX)
            if not destination.startswith(PAGER_PREFIX) or not tier:
                raise ValueError(f"PagerDutyPager pages pager: destinations, not {destination!r}")
            dedup_key = f"{about.subject.key}/{tier}"
            properties = self._topic_properties(
                about, tier=tier, subject=subject, body=body, key=key
            )
            call = functools.partial(_send_event, self._events, "trigger", dedup_key, properties)
            try:
                await self._call(f"trigger of {dedup_key}", call, incident_id=None)
            except VendorError as error:
                failures.append((destination, error))
                continue
            log.info(
                "paged through PagerDuty",
                extra={"action": "pagerduty_triggered", "subject": about.label, "tier": tier},
            )
        if failures:
            reason = f"page {audience}: {each_said(failures)}"
            raise failed_together(VENDOR_NAME, reason, [e for _, e in failures])

    def _topic_properties(
        self, about: Topic, *, tier: str, subject: str, body: str, key: str
    ) -> dict[str, Any]:
        summary = " ".join(subject.split())
        if len(summary) > SUMMARY_LIMIT:
            summary = summary[: SUMMARY_LIMIT - 1] + "…"
        payload: dict[str, Any] = {
            "summary": summary,
            "source": self._source,
            "severity": "critical",  # only what cannot wait is paged
            "timestamp": about.began_at.isoformat(),
            "group": tier,
            "class": about.subject.kind,
            "custom_details": {"subject": about.label, "tier": tier, "step": key, "body": body},
        }
        return {"payload": payload, "client": "incident-service"}

    async def acknowledge(self, *, incident: Incident, key: str) -> None:
        """Acknowledge every PagerDuty alert this incident triggered (none: nothing sent)."""
        await self._follow_up(incident, "acknowledge", key=key)

    async def resolve(self, *, incident: Incident, key: str) -> None:
        """Resolve every PagerDuty alert this incident triggered (none: nothing sent)."""
        await self._follow_up(incident, "resolve", key=key)

    # --- on call -----------------------------------------------------------------------------

    async def who_is_on_call(
        self,
        *,
        escalation_policy_id: str | None = None,
        schedule_id: str | None = None,
        service_id: str | None = None,
    ) -> list[OnCall]:
        """Who is on call now for an escalation policy, a schedule, or a service (through its
        escalation policy): one entry per person, first-paged level first."""
        if escalation_policy_id is None and schedule_id is None and service_id is None:
            raise ValueError("name an escalation policy, a schedule or a service")
        if self._rest is None:
            raise VendorRejected(VENDOR_NAME, "on-call lookup: no REST API token configured")
        call = functools.partial(
            _fetch_on_calls,
            self._rest,
            escalation_policy_id=escalation_policy_id,
            schedule_id=schedule_id,
            service_id=service_id,
        )
        return await self._call("on-call lookup", call, incident_id=None)

    async def on_call(self, *, tier: str) -> list[OnCall]:
        """The Pager port's lookup: who is on call for one of our tiers, through the
        escalation policy configured for it (nobody when none is, or no REST token)."""
        policy = self._policies.get(tier)
        if policy is None or self._rest is None:
            return []
        return await self.who_is_on_call(escalation_policy_id=policy)

    # --- internals ---------------------------------------------------------------------------

    async def _follow_up(self, incident: Incident, action: str, *, key: str) -> None:
        incident_id = _id(incident)
        for dedup_key in await self._dedup_keys(incident_id):
            call = functools.partial(_send_event, self._events, action, dedup_key, {})
            await self._call(f"{action} of {dedup_key}", call, incident_id=incident_id)
            log.info(
                f"PagerDuty alert {action}d",
                extra={
                    "action": f"pagerduty_{action}d",
                    "incident_id": incident_id,
                    "dedup_key": dedup_key,
                    "key": key,
                },
            )

    async def _remember(self, incident_id: int, dedup_key: str) -> None:
        # Slots dedup:1, dedup:2 ...: the first slot not held by another key is ours (a
        # concurrent page of another tier that takes it first just moves us one further).
        slot = 1
        while True:
            stored = await self._refs.remember(incident_id, VENDOR, f"dedup:{slot}", dedup_key)
            if stored == dedup_key:
                return
            slot += 1

    async def _dedup_keys(self, incident_id: int) -> list[str]:
        keys: list[str] = []
        while True:
            found = await self._refs.find(incident_id, VENDOR, f"dedup:{len(keys) + 1}")
            if found is None:
                return keys
            keys.append(found)

    def _trigger_properties(
        self, incident: Incident, *, tier: str, summary: str, key: str
    ) -> dict[str, Any]:
        if len(summary) > SUMMARY_LIMIT:
            summary = summary[: SUMMARY_LIMIT - 1] + "…"
        payload: dict[str, Any] = {
            "summary": summary,
            "source": incident.service or self._source,
            "severity": SEVERITIES[incident.severity],
            "timestamp": incident.declared_at.isoformat(),
            "group": tier,
            "class": incident.category.value,
            "custom_details": {
                "incident": incident.ref,
                "title": incident.title,
                "severity": incident.severity.value,
                "status": incident.status.value,
                "tier": tier,
                "declared_by": incident.declared_by,
                "step": key,
            },
        }
        if incident.service:
            payload["component"] = incident.service
        properties: dict[str, Any] = {"payload": payload, "client": "incident-service"}
        if self._base_url is not None:
            link = f"{self._base_url}/ui/incidents/{incident.id}"
            properties["client_url"] = link
            properties["links"] = [{"href": link, "text": f"{incident.ref} timeline"}]
        return properties

    async def _call(self, operation: str, call: Callable[[], T], *, incident_id: int | None) -> T:
        """Run `call` (one blocking HTTP exchange) on a worker thread, retrying transient
        failures a bounded number of times with waits on the event loop."""
        loop = asyncio.get_running_loop()
        return await self._retrying.run(
            operation,
            lambda: loop.run_in_executor(self._executor, _attempt, call, self._secrets),
            incident_id=incident_id,
        )

    def _failure_of(self, error: Exception) -> Failure | None:
        """What a failed attempt means to the retry loop; PagerDuty's Retry-After (or its
        ratelimit-reset) is waited for, and handed on to the scheduler when too long."""
        if not isinstance(error, _Failed):
            return None
        asked = retry_after_seconds(error.retry_after, self._clock.now())
        return Failure(error.reason, retryable=error.retryable, retry_after=asked, wait=asked)


PAGER_PREFIX = "pager:"


def dedup_key_for(incident: Incident, tier: str) -> str:
    """The one PagerDuty alert of this incident for this on-call tier."""
    return f"inc-{_id(incident)}/{tier}"


def _id(incident: Incident) -> int:
    if incident.id is None:
        raise ValueError("the incident must be stored (have an id) before it can page")
    return incident.id
