"""`incident declare | list | show | ack | update | note | resolve` as real processes against
a real `incident serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.served_process import incident_serve

RESPONDER = "cli-responder-token-0123"
COMMANDER = "cli-commander-token-0123"
VIEWER = "cli-viewer-token-01234567"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-api") / "served.db") as url:
        yield url


@contextmanager
def running_server(database: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`incident serve` on a free port with the three tokens, on a SQLite file: its URL."""
    tokens = f"{RESPONDER}:responder:rob,{COMMANDER}:commander:cleo,{VIEWER}:viewer"
    with incident_serve(database, {"INCIDENT_API_TOKENS": tokens, **(env or {})}) as url:
        yield url


def cli(
    *args: str,
    url: str | None = None,
    token: str | None = RESPONDER,
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """`incident ARGS` as a process: only INCIDENT_URL and INCIDENT_TOKEN (and `env`) set;
    `stdout`: a file descriptor to write to instead of capturing."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    if url:
        environ["INCIDENT_URL"] = url
    if token:
        environ["INCIDENT_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "incident.cli", *args],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
        check=False,
    )


def test_declare_show_ack_update_note_resolve(server: str) -> None:
    declared = cli("declare", "P1", "Checkout API down", "--service", "checkout", url=server)
    assert declared.returncode == 0, declared.stderr
    assert declared.stdout.startswith("declared: INC-")
    assert "next steps:" in declared.stdout
    ref = declared.stdout.split()[1]
    number = ref.removeprefix("INC-")

    shown = cli("show", ref, url=server)
    assert shown.returncode == 0, shown.stderr
    assert "P1 investigating: Checkout API down [checkout]" in shown.stdout
    upcoming = shown.stdout.split("upcoming steps:")[1].split("timeline:")[0]
    assert "customer-update" in upcoming and "escalate-vp-clevel" in upcoming
    assert "(in 4h)" in upcoming  # the VP / C-level escalation, 4 h after declaring

    as_json = json.loads(cli("show", number, "--json", url=server).stdout)
    assert as_json["incident"]["ref"] == ref
    assert all(step["due_at"] for step in as_json["upcoming"])

    assert cli("ack", number, url=server).stdout.startswith(f"acknowledged: {ref}")
    updated = cli("update", number, "Cause found", "--status", "identified", url=server)
    assert updated.returncode == 0 and f"{ref} P1 identified" in updated.stdout
    assert cli("note", number, "rolled back", url=server).returncode == 0

    refused = cli("resolve", number, "fixed", url=server)
    assert refused.returncode == 1
    assert "refused (403)" in refused.stderr and "commander" in refused.stderr
    resolved = cli("resolve", number, "Rolled back deploy 42", url=server, token=COMMANDER)
    assert resolved.returncode == 0 and f"{ref} P1 resolved" in resolved.stdout

    listed = cli("list", "--status", "resolved", url=server, token=VIEWER)
    assert listed.returncode == 0 and ref in listed.stdout
    timeline = cli("show", number, url=server).stdout.split("timeline:")[1]
    for text in ("declared", "acknowledged by rob", "Cause found", "rolled back"):
        assert text in timeline


def test_idempotency_key_declares_once(server: str) -> None:
    first = cli("declare", "P3", "Slow search", "--idempotency-key", "k-1", url=server)
    second = cli("declare", "P3", "Slow search", "--idempotency-key", "k-1", url=server)
    assert first.stdout.startswith("declared: ")
    assert second.stdout.startswith("already declared: ")
    assert first.stdout.split()[1] == second.stdout.split()[2]


def test_mistakes_are_readable_and_exit_non_zero(server: str) -> None:
    cases = [
        (cli("list", url=server, token=None), "no API token"),
        (cli("list", url=server, token="wrong-token-0123456789"), "refused (401)"),
        (cli("declare", "P9", "x", url=server), "severity: Input should be 'P1'"),
        (cli("show", "999999", url=server), "refused (404)"),
        (cli("show", "abc", url=server), "is not an incident id"),
        (cli("list", url="http://127.0.0.1:9"), "cannot reach http://127.0.0.1:9"),
        (cli("list", url="ftp://x"), "must start with http"),
    ]
    for result, message in cases:
        assert result.returncode != 0, result
        assert message in result.stderr, (message, result.stderr)
        assert "Traceback" not in result.stderr
