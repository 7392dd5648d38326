"""`incident serve` as a real process on a free loopback port: what the CLI, fuzz and
process tests talk to. One owner for starting it, waiting until ready and checking it
stopped cleanly without a traceback."""

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


def wait_ready(
    port: int, timeout: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until /readyz says 200 (the service is up, its database and scheduler running);
    fails at once if `process` has already exited."""
    deadline = time.monotonic() + timeout
    status: int = 0
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"incident serve exited with {process.returncode}")
        try:
            status, body = get(f"http://127.0.0.1:{port}/readyz")
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout} s: {status} {body}")


@contextmanager
def incident_serve(database: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`incident serve` on `database` (a SQLite file) with these extra settings: its URL.

    `{port}` in a setting's value becomes the chosen port (for INCIDENT_BASE_URL). On the
    way out it is stopped with SIGTERM and must exit 0 with no traceback in its log."""
    port = free_port()
    log = database.with_suffix(".log")
    with log.open("w") as stderr:  # a file: a pipe nobody reads would fill and stall it
        process = subprocess.Popen(
            [sys.executable, "-m", "incident.cli", "serve", "--port", str(port)],
            env={
                **os.environ,
                "INCIDENT_DATABASE_URL": f"sqlite:///{database}",
                **{name: value.replace("{port}", str(port)) for name, value in (env or {}).items()},
            },
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_ready(port, process=process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    logged = log.read_text()
    assert process.returncode == 0, logged[-3000:]
    assert "Traceback" not in logged, logged[-4000:]
