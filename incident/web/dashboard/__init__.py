"""The commander's dashboard (/ui): server-rendered pages behind a token login."""

from __future__ import annotations

from incident.web.dashboard.routes import add_routes

__all__ = ["add_routes"]
