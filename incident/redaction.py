"""Secrets kept out of everything people and machines read: error texts stored on the
timeline and with a step (`last_error`), and every log line.

Each vendor adapter already leaves its own credentials out of the errors it raises; this is
the one place that also catches what a vendor echoes back in a field the adapter passes on
(Slack's `error`, say), whichever adapter it came through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_LENGTH = 6  # shorter values would redact ordinary words


class Redactor:
    """Replaces every configured secret in a text with `[redacted]`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found = {s for s in secrets if s and len(s) >= MIN_LENGTH}
        # Longest first: a secret that contains another is replaced whole.
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its arguments and string extras."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._redact:
            return True
        record.msg = self._redact(record.getMessage())
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in self._STANDARD and isinstance(value, str):
                setattr(record, name, self._redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback carries the exception's text: format it now, redacted.
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
