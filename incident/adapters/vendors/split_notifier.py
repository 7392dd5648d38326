"""A Notifier (and Messenger) that hands each destination to the adapter for its kind.

Audiences mix kinds (`chat:#execs`, `email:cfo@example.com`). A destination's kind is what
comes before its first colon; `routes` maps kinds to the notifiers configured for them (chat
to Slack, email to SMTP) and every other destination, or one whose kind has no route, goes
to the default (the outbox). Every part gets the same step key, so a retried step sends only
what each part has not sent yet.

Messages about any kind of subject (`send`) are routed the same way (Slack, SMTP and, for
`pager:`, PagerDuty through `senders`), except that a route whose notifier serves incidents
only (it has no `send`) leaves its destinations to the default, which keeps them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Protocol, TypeVar

from incident.domain.incident import Incident
from incident.services.ports import (
    Messenger,
    Notifier,
    Topic,
    VendorError,
    failed_together,
)

N = TypeVar("N")


class NotifierAndMessenger(Notifier, Messenger, Protocol):
    """What takes every destination no route takes: incidents' notices and other messages
    alike (the outbox)."""


class SplitNotifier:
    """Routes destinations by kind: `routes` (kind -> notifier), else `default`.

    Each notifier gets its destinations in one call. The default goes first (the outbox
    does not fail) and every part is tried even when one fails, so one vendor's outage
    never holds back the others; the failures are raised together afterwards.
    """

    def __init__(
        self,
        routes: Mapping[str, Notifier],
        *,
        default: NotifierAndMessenger,
        senders: Mapping[str, Messenger] | None = None,
    ) -> None:
        """`senders`: adapters that take a kind of destination of other subjects' messages
        only (PagerDuty pages a support case that cannot wait; incidents page through their
        playbooks' page steps)."""
        self._routes = dict(routes)
        self._default = default
        self._messengers: dict[str, Messenger] = {
            kind: notifier for kind, notifier in routes.items() if isinstance(notifier, Messenger)
        }
        self._messengers.update(senders or {})

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
        parts = _split(destinations, self._routes, default=self._default)
        await _each_tried(
            partial(
                notifier.notify,
                incident=incident,
                audience=audience,
                destinations=part,
                subject=subject,
                body=body,
                key=key,
            )
            for notifier, part in parts
        )

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
        parts = _split(destinations, self._messengers, default=self._default)
        await _each_tried(
            partial(
                messenger.send,
                about=about,
                audience=audience,
                destinations=part,
                subject=subject,
                body=body,
                key=key,
            )
            for messenger, part in parts
        )


def _split(
    destinations: Sequence[str], routes: Mapping[str, N], *, default: N
) -> list[tuple[N, list[str]]]:
    """The destinations each adapter takes, in their order: the default's first."""
    parts: dict[int, tuple[N, list[str]]] = {id(default): (default, [])}
    for destination in destinations:
        kind = destination.partition(":")[0] if ":" in destination else ""
        adapter = routes.get(kind, default)
        parts.setdefault(id(adapter), (adapter, []))[1].append(destination)
    return [(adapter, part) for adapter, part in parts.values() if part]


async def _each_tried(calls: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Run every call, even after one failed; then raise the failures together: one as it
    is, several as one VendorUnavailable if any may pass later (waiting for the longest
    Retry-After), else as one VendorRejected."""
    failures: list[VendorError] = []
    for call in calls:
        try:
            await call()
        except VendorError as error:
            failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        vendor = ", ".join(dict.fromkeys(e.vendor for e in failures))
        raise failed_together(vendor, "; ".join(str(e) for e in failures), failures)
