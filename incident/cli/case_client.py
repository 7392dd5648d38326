"""The CLI's client of /api/v1/cases, on the API client's connection and error handling:
every failure is a `ClientError` that keeps the server's answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from incident.cli.client import ApiClient


class CaseClient:
    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def open(self, body: Mapping[str, Any]) -> Any:
        return self._api.request("POST", "/cases", json=body)

    def list(self, *, statuses: Sequence[str], levels: Sequence[str]) -> Any:
        """Each filter repeated (`?level=cio&level=ceo`), as the API reads it."""
        params: dict[str, Any] = {}
        if statuses:
            params["status"] = list(statuses)
        if levels:
            params["level"] = list(levels)
        return self._api.request("GET", "/cases", params=params)

    def linked_to(self, incident_id: int) -> Any:
        """The cases linked to an incident, and how many customers they are of."""
        return self._api.request("GET", f"/incidents/{incident_id}/cases")

    def show(self, case_id: int) -> Any:
        return self._api.request("GET", f"/cases/{case_id}")

    def update(self, case_id: int, body: Mapping[str, Any]) -> Any:
        """Only the fields in `body` change."""
        return self._api.request("PATCH", f"/cases/{case_id}", json=body)

    def progress(self, case_id: int, *, note: str, to_customer: bool) -> Any:
        body = {"note": note, "to_customer": to_customer}
        return self._api.request("POST", f"/cases/{case_id}/progress", json=body)

    def escalate(
        self,
        case_id: int,
        *,
        to: str,
        reason: str,
        urgency: str | None = None,
        urgency_note: str | None = None,
        override: str | None = None,
    ) -> Any:
        optional = {"urgency": urgency, "urgency_note": urgency_note, "override": override}
        body = {"to": to, "reason": reason}
        body.update({name: value for name, value in optional.items() if value is not None})
        return self._api.request("POST", f"/cases/{case_id}/escalate", json=body)

    def confirm(self, case_id: int) -> Any:
        return self._api.request("POST", f"/cases/{case_id}/confirm", json={})

    def deescalate(self, case_id: int, *, to: str, why: str, note: str) -> Any:
        body = {"to": to, "why": why, "note": note}
        return self._api.request("POST", f"/cases/{case_id}/deescalate", json=body)

    def decide(self, case_id: int, *, level: str, approved: bool, note: str) -> Any:
        body = {"level": level, "approved": approved, "note": note}
        return self._api.request("POST", f"/cases/{case_id}/decisions", json=body)

    def resolve(self, case_id: int, *, resolution: str) -> Any:
        body = {"resolution": resolution}
        return self._api.request("POST", f"/cases/{case_id}/resolve", json=body)

    def link(self, case_id: int, *, incident_id: int) -> Any:
        body = {"incident": incident_id}
        return self._api.request("POST", f"/cases/{case_id}/link", json=body)

    def unlink(self, case_id: int) -> Any:
        return self._api.request("POST", f"/cases/{case_id}/unlink", json={})
