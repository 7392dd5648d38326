"""The `incident` command line: `serve`, the engine's own commands, and the API client
commands people use against a running service."""

from incident.cli.commands import main

__all__ = ["main"]
