"""A small client of our own REST API, for the CLI (`incident declare`, `list`, `show` ...).

Every failure becomes `ClientError` with a sentence a person can act on: the server's own
`{"error", "detail"}` for a refusal, or what to check when the server cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx


class ClientError(Exception):
    """The request did not succeed; the message says why and what to do.

    A refusal by the server also keeps what it answered: `request` (`POST /cases/3/escalate`),
    `status`, `error` and `detail` as sent (a list of {field, problem} when it names fields),
    for a command that shows them its own way."""

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        status: int | None = None,
        error: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.request, self.status, self.error, self.detail = request, status, error, detail


class ApiClient:
    def __init__(self, base_url: str, token: str, *, http: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = http

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self._send(method, path, json=json, params=params, headers=headers).json()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Any call of the API, answered as JSON: for the clients of other resources
        (`incident.cli.case_client`)."""
        return self._call(method, path, json=json, params=params)

    def _document(self, path: str) -> str:
        """A document the API answers as text (Markdown), not JSON."""
        return self._send("GET", path, headers={"Accept": "text/markdown"}).text

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = f"{self.base_url}/api/v1{path}"
        try:
            response = self._http.request(
                method,
                url,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {self._token}", **(headers or {})},
            )
        except httpx.TimeoutException:
            raise ClientError(f"{self.base_url} did not answer in time") from None
        except httpx.HTTPError as error:
            raise ClientError(
                f"cannot reach {self.base_url} ({error}); is `incident serve` running there? "
                "Set --url or INCIDENT_URL"
            ) from None
        if response.is_success:
            return response
        raise _refusal(f"{method} {path}", response)

    def declare(
        self,
        *,
        title: str,
        severity: str,
        service: str = "",
        impact: str = "",
        category: str = "general",
        components: Mapping[str, str] | None = None,
        public_title: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body: dict[str, Any] = {
            "title": title,
            "severity": severity,
            "service": service,
            "impact": impact,
            "category": category,
        }
        if components:
            body["components"] = dict(components)
        if public_title is not None:
            body["public_title"] = public_title
        return self._call("POST", "/incidents", json=body, headers=headers)

    def list(self, *, statuses: list[str], severities: list[str]) -> Any:
        params = {}
        if statuses:
            params["status"] = ",".join(statuses)
        if severities:
            params["severity"] = ",".join(severities)
        return self._call("GET", "/incidents", params=params)

    def show(self, incident_id: int) -> Any:
        return self._call("GET", f"/incidents/{incident_id}")

    def acknowledge(self, incident_id: int) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/acknowledge", json={})

    def update(
        self,
        incident_id: int,
        *,
        message: str,
        status: str | None,
        components: Mapping[str, str] | None = None,
    ) -> Any:
        body: dict[str, Any] = {"message": message}
        if status:
            body["status"] = status
        if components:
            body["components"] = dict(components)
        return self._call("POST", f"/incidents/{incident_id}/updates", json=body)

    def note(self, incident_id: int, *, text: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/notes", json={"text": text})

    def resolve(self, incident_id: int, *, summary: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/resolve", json={"summary": summary})

    def timeline(self, incident_id: int, *, kinds: Sequence[str], public: bool) -> Any:
        params: dict[str, Any] = {"kind": ",".join(kinds)} if kinds else {}
        if public:
            params["public"] = "true"
        return self._call("GET", f"/incidents/{incident_id}/timeline", params=params)

    def change_status(self, incident_id: int, *, status: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/status", json={"status": status})

    def severity(self, incident_id: int, *, severity: str, reason: str) -> Any:
        body = {"severity": severity, "reason": reason}
        return self._call("POST", f"/incidents/{incident_id}/severity", json=body)

    def assign_role(self, incident_id: int, *, role: str, person: str) -> Any:
        body = {"role": role, "person": person}
        return self._call("POST", f"/incidents/{incident_id}/roles", json=body)

    def rca(self, incident_id: int, *, link: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/rca", json={"link": link})

    def components(self, incident_id: int, components: Mapping[str, str]) -> Any:
        body = {"components": dict(components)}
        return self._call("PUT", f"/incidents/{incident_id}/components", json=body)

    def public_title(self, incident_id: int, *, public_title: str) -> Any:
        body = {"public_title": public_title}
        return self._call("PUT", f"/incidents/{incident_id}/public-title", json=body)

    def skip(self, incident_id: int, step: str, *, reason: str) -> Any:
        path = f"/incidents/{incident_id}/steps/{quote(step, safe='')}/skip"
        return self._call("POST", path, json={"reason": reason})

    def snooze(self, incident_id: int, step: str, *, minutes: int, reason: str) -> Any:
        path = f"/incidents/{incident_id}/steps/{quote(step, safe='')}/snooze"
        return self._call("POST", path, json={"minutes": minutes, "reason": reason})

    def edit(
        self,
        incident_id: int,
        *,
        title: str | None = None,
        impact: str | None = None,
        service: str | None = None,
        category: str | None = None,
    ) -> Any:
        """Only the fields given change."""
        fields = {"title": title, "impact": impact, "service": service, "category": category}
        body = {name: value for name, value in fields.items() if value is not None}
        return self._call("PATCH", f"/incidents/{incident_id}", json=body)

    def cancel(self, incident_id: int, *, reason: str, note: str = "") -> Any:
        body = {"reason": reason, "note": note}
        return self._call("POST", f"/incidents/{incident_id}/cancel", json=body)

    def reopen(self, incident_id: int, *, reason: str, status: str | None = None) -> Any:
        body = {"reason": reason, **({"status": status} if status else {})}
        return self._call("POST", f"/incidents/{incident_id}/reopen", json=body)

    def merge(self, incident_id: int, *, into: int) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/merge", json={"into": into})

    def approve(self, incident_id: int, step: str) -> Any:
        path = f"/incidents/{incident_id}/steps/{quote(step, safe='')}/approve"
        return self._call("POST", path, json={})

    def follow_ups(self, incident_id: int) -> Any:
        return self._call("GET", f"/incidents/{incident_id}/follow-ups")

    def add_follow_up(self, incident_id: int, *, title: str, owner: str, due_at: str) -> Any:
        body = {"title": title, "owner": owner, "due_at": due_at}
        return self._call("POST", f"/incidents/{incident_id}/follow-ups", json=body)

    def complete_follow_up(self, incident_id: int, follow_up: int) -> Any:
        path = f"/incidents/{incident_id}/follow-ups/{follow_up}/done"
        return self._call("POST", path, json={})

    def timeline_markdown(self, incident_id: int) -> str:
        return self._document(f"/incidents/{incident_id}/timeline.md")

    def postmortem(self, incident_id: int) -> str:
        return self._document(f"/incidents/{incident_id}/postmortem")

    def schedule_maintenance(
        self,
        *,
        name: str,
        message: str,
        scheduled_for: str,
        scheduled_until: str,
        components: Sequence[str],
    ) -> Any:
        body = {
            "name": name,
            "message": message,
            "scheduled_for": scheduled_for,
            "scheduled_until": scheduled_until,
            "components": list(components),
        }
        return self._call("POST", "/maintenances", json=body)

    def maintenances(self) -> Any:
        return self._call("GET", "/maintenances")

    def maintenance(self, maintenance_id: int) -> Any:
        return self._call("GET", f"/maintenances/{maintenance_id}")

    def update_maintenance(self, maintenance_id: int, *, message: str, status: str | None) -> Any:
        body: dict[str, Any] = {"message": message}
        if status:
            body["status"] = status
        return self._call("POST", f"/maintenances/{maintenance_id}/updates", json=body)

    def outbox(self, *, incident_id: int | None, limit: int | None) -> Any:
        params: dict[str, Any] = {}
        if incident_id is not None:
            params["incident"] = incident_id
        if limit is not None:
            params["limit"] = limit
        return self._call("GET", "/outbox", params=params)

    def whoami(self) -> Any:
        return self._call("GET", "/me")


def _refusal(request: str, response: httpx.Response) -> ClientError:
    """The server's `{"error", "detail"}` (or what it said instead) as a ClientError."""
    kind: str | None = None
    detail: Any = None
    try:
        body = response.json()
        kind, detail = str(body["error"]), body["detail"]
        message = f"{kind}: {_detail(detail)}"
    except (ValueError, KeyError, TypeError):
        message = response.text[:300] or response.reason_phrase
    hint = ""
    if response.status_code == 401:
        hint = " (set --token or INCIDENT_TOKEN to a token from INCIDENT_API_TOKENS)"
    return ClientError(
        f"{request} refused ({response.status_code}) {message}{hint}",
        request=request,
        status=response.status_code,
        error=kind,
        detail=detail,
    )


def _detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{item.get('field', '?')}: {item.get('problem', '?')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)
