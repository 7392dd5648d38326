"""Incident response orchestration: timed playbooks on durable timers."""

__version__ = "0.1.0"
