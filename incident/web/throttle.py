"""Failed logins, counted per client: after too many in a while, that client is refused for
a while, whatever it sends (a token guessed right on the 300th try is still refused).

Kept in this process's memory: each replica counts on its own, which bounds a guesser at
`LIMIT` tries per window per replica. The client is the connection's address (behind a
proxy, the proxy's: configure the proxy's own rate limit then).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW = 300.0  # seconds of memory
LIMIT = 10  # failed logins a client may make in WINDOW
MAX_CLIENTS = 10_000  # clients remembered at once (the oldest are forgotten first)


class FailedLogins:
    """Failures per client within `WINDOW` seconds of `monotonic()`."""

    def __init__(
        self, monotonic: Callable[[], float], *, limit: int = LIMIT, window: float = WINDOW
    ) -> None:
        self._monotonic = monotonic
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        cutoff = self._monotonic() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def blocked_for(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may now)."""
        failures = self._recent(client)
        if failures is None or len(failures) < self._limit:
            return 0.0
        return max(0.0, failures[0] + self._window - self._monotonic())

    def failed(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
            del self._failures[next(iter(self._failures))]
        self._failures.setdefault(client, deque(maxlen=self._limit)).append(self._monotonic())
