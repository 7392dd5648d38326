"""A Notifier that hands each destination to the adapter for its kind.

Audiences mix kinds (`chat:#execs`, `email:cfo@example.com`): chat destinations go to the
chat vendor when one is configured, everything else to the next notifier (the outbox until
an e-mail adapter exists). Both parts use the same step key, so a retried step sends only
what each side has not sent yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from incident.domain.incident import Incident
from incident.services.ports import Notifier


class SplitNotifier:
    def __init__(self, *, chat: Notifier, other: Notifier) -> None:
        self._chat = chat
        self._other = other

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
        chat = [d for d in destinations if d.startswith("chat:")]
        other = [d for d in destinations if not d.startswith("chat:")]
        # The other side first: the outbox does not fail, so a chat outage cannot make the
        # e-mails wait for it (and a retry finds them already kept).
        if other:
            await self._other.notify(
                incident=incident,
                audience=audience,
                destinations=other,
                subject=subject,
                body=body,
                key=key,
            )
        if chat:
            await self._chat.notify(
                incident=incident,
                audience=audience,
                destinations=chat,
                subject=subject,
                body=body,
                key=key,
            )
