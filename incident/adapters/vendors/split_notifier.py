"""A Notifier that hands each destination to the adapter for its kind.

Audiences mix kinds (`chat:#execs`, `email:cfo@example.com`). A destination's kind is what
comes before its first colon; `routes` maps kinds to the notifiers configured for them (chat
to Slack, email to SMTP) and every other destination, or one whose kind has no route, goes
to the default (the outbox). Every part gets the same step key, so a retried step sends only
what each part has not sent yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from incident.domain.incident import Incident
from incident.services.ports import Notifier, VendorError, VendorRejected, VendorUnavailable


class SplitNotifier:
    """Routes destinations by kind: `routes` (kind -> notifier), else `default`."""

    def __init__(self, routes: Mapping[str, Notifier], *, default: Notifier) -> None:
        self._routes = dict(routes)
        self._default = default

    async def notify(
        self,
        *,
        incident: Incident,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Each notifier gets its destinations in one call. The default goes first (the
        outbox does not fail) and every part is tried even when one fails, so one vendor's
        outage never holds back the others; the failures are raised together afterwards."""
        parts: dict[int, tuple[Notifier, list[str]]] = {id(self._default): (self._default, [])}
        for destination in destinations:
            kind = destination.partition(":")[0] if ":" in destination else ""
            notifier = self._routes.get(kind, self._default)
            parts.setdefault(id(notifier), (notifier, []))[1].append(destination)
        failures: list[VendorError] = []
        for notifier, part in parts.values():
            if not part:
                continue
            try:
                await notifier.notify(
                    incident=incident,
                    audience=audience,
                    destinations=part,
                    subject=subject,
                    body=body,
                    key=key,
                )
            except VendorError as error:
                failures.append(error)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            vendor = ", ".join(dict.fromkeys(e.vendor for e in failures))
            reason = "; ".join(str(e) for e in failures)
            unavailable = [e for e in failures if isinstance(e, VendorUnavailable)]
            if unavailable:
                waits = [e.retry_after for e in unavailable if e.retry_after is not None]
                raise VendorUnavailable(vendor, reason, retry_after=max(waits, default=None))
            raise VendorRejected(vendor, reason)
