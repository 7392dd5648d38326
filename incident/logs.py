"""Structured logs: one JSON object per line (or plain text for a terminal).

Fields passed with `extra=` (incident_id, step, request_id ...) become keys of the object.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from incident.redaction import RedactingFilter, Redactor


def configure_logging(
    log_format: str = "json", level: int = logging.INFO, *, redact: Redactor | None = None
) -> None:
    """Log to stderr; `redact`: the configured secrets, kept out of every line."""
    handler = logging.StreamHandler(sys.stderr)
    if redact is not None:
        handler.addFilter(RedactingFilter(redact))
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
