"""A small client of our own REST API, for the CLI (`incident declare`, `list`, `show` ...).

Every failure becomes `ClientError` with a sentence a person can act on: the server's own
`{"error", "detail"}` for a refusal, or what to check when the server cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class ClientError(Exception):
    """The request did not succeed; the message says why and what to do."""


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
            return response.json()
        try:
            body = response.json()
            message = f"{body['error']}: {_detail(body['detail'])}"
        except (ValueError, KeyError, TypeError):
            message = response.text[:300] or response.reason_phrase
        hint = ""
        if response.status_code == 401:
            hint = " (set --token or INCIDENT_TOKEN to a token from INCIDENT_API_TOKENS)"
        raise ClientError(f"{method} {path} refused ({response.status_code}) {message}{hint}")

    def declare(
        self,
        *,
        title: str,
        severity: str,
        service: str = "",
        impact: str = "",
        category: str = "general",
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {
            "title": title,
            "severity": severity,
            "service": service,
            "impact": impact,
            "category": category,
        }
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

    def update(self, incident_id: int, *, message: str, status: str | None) -> Any:
        body: dict[str, Any] = {"message": message}
        if status:
            body["status"] = status
        return self._call("POST", f"/incidents/{incident_id}/updates", json=body)

    def note(self, incident_id: int, *, text: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/notes", json={"text": text})

    def resolve(self, incident_id: int, *, summary: str) -> Any:
        return self._call("POST", f"/incidents/{incident_id}/resolve", json={"summary": summary})


def _detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{item.get('field', '?')}: {item.get('problem', '?')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)
