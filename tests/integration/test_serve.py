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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_ready(port: int, timeout: float = 30) -> None:
    """Until /readyz says 200 (the service is up, its database and scheduler running)."""
    deadline = time.monotonic() + timeout
    status, body = 0, {}
    while time.monotonic() < deadline:
        try:
            status, body = get(f"http://127.0.0.1:{port}/readyz")
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout} s: {status} {body}")


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
        status, body = 0, {}
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
