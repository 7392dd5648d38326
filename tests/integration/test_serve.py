"""`incident serve` as a real process: starts on SQLite, is ready, shuts down on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.served_process import free_port, get, wait_ready


def test_serve_starts_on_sqlite_is_ready_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "served.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", str(port)],
        env={**os.environ, "INCIDENT_DATABASE_URL": f"sqlite:///{database}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status, body = 0, dict[str, object]()
        while time.monotonic() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        assert status == 200, body
        assert body == {"ready": True, "problems": []}
        assert get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "alive"})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runbooks/paging.md") as page:
            assert page.headers["Content-Type"].startswith("text/markdown")
            assert page.read().decode().startswith("#")
        for bad in ("..%2Fpyproject.toml", "nope.md", ".hidden.md"):
            status, body = get(f"http://127.0.0.1:{port}/runbooks/{bad}")
            assert status == 404 and body["error"] == "not found"
        assert database.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "serving on" in stdout and "outbox" in stdout
    assert "Traceback" not in stderr


def test_serve_refuses_to_start_on_invalid_settings(tmp_path: Path) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text("alert_routing:\n  routes:\n    - {match: 'severity=critical'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "incident.cli", "serve", "--port", str(free_port())],
        env={
            **os.environ,
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "INCIDENT_CONFIG_FILE": str(config),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "alert_routing.routes[0].severity" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing created


def test_serve_says_which_integrations_are_live(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", str(port)],
        env={
            **os.environ,
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
            "INCIDENT_API_TOKENS": "abcdefghijklmnopqrst:responder:alertmanager",
            "INCIDENT_SLACK_SIGNING_SECRET": "s3cr3t",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            metrics = response.read().decode()
        assert 'incident_open_incidents{severity="P1"} 0.0' in metrics
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "1 token(s) (responder)" in stdout
    assert "signature checked with INCIDENT_SLACK_SIGNING_SECRET" in stdout
    assert "abcdefghijklmnopqrst" not in stdout + stderr and "s3cr3t" not in stdout + stderr
    # Structured logs: one JSON object per line, the engine's start and stop among them.
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records]
    assert "engine started" in messages and "engine stopped" in messages


def test_a_second_serve_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "one.db"
    env = {**os.environ, "INCIDENT_DATABASE_URL": f"sqlite:///{database}"}
    port = free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port)
        second = subprocess.run(
            [sys.executable, "-m", "incident.cli", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert f"already served by pid {first.pid}" in second.stderr
        assert "PostgreSQL" in second.stderr and "Traceback" not in second.stderr
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200  # the first one carries on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def _serve_refused(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "incident.cli", "serve", *args],
        env={**os.environ, "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_serve_refuses_a_busy_port_or_an_impossible_one_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _serve_refused(tmp_path, "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in busy.stderr
    assert "another process listens there" in busy.stderr
    assert "database" not in busy.stderr
    impossible = _serve_refused(tmp_path, "--port", "99999")
    assert "'99999' is not a port; give a number from 0 to 65535" in impossible.stderr


def test_serve_hides_passwords_and_refuses_what_would_crash_later(tmp_path: Path) -> None:
    password = "S3cr3t-P4ss"
    wrong_scheme = _serve_refused(
        tmp_path, INCIDENT_DATABASE_URL=f"postgres://dana:{password}@db.example.com/incidents"
    )
    assert password not in wrong_scheme.stderr
    assert "postgres://dana:***@db.example.com/incidents" in wrong_scheme.stderr
    plain_http = _serve_refused(
        tmp_path,
        INCIDENT_PAGERDUTY_ROUTING_KEY="R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32",
        INCIDENT_PAGERDUTY_EVENTS_URL="http://events.example.com",
    )
    assert "INCIDENT_PAGERDUTY_EVENTS_URL" in plain_http.stderr
    assert "must start with https://" in plain_http.stderr


def test_serve_warns_about_unknown_incident_variables(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", str(port)],
        env={
            **os.environ,
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'warn.db'}",
            "INCIDENT_API_TOKEN": "typo-token-0123456789:admin",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert (
        "warning: INCIDENT_API_TOKEN is not a setting and is ignored; did you mean "
        "INCIDENT_API_TOKENS?" in stderr
    )
    assert "typo-token" not in stderr
