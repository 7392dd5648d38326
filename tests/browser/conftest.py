"""Real-browser tests: `incident serve` as a real process on a temporary SQLite file and a
free port, driven by headless Chromium through chromedriver (Selenium).

Debian's `chromium` and `chromium-driver` provide the browser (`.ci/run` installs them).
In CI (CI=true) these tests must run: a missing browser fails them. Elsewhere they are
skipped, saying what to install. Screenshots go to `test-artifacts/browser/` at the
repository root (or INCIDENT_TEST_ARTIFACTS), kept after the run.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from incident.config import PROJECT_ROOT
from tests.served_process import incident_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
COMMANDER_TOKEN = "browser-commander-0123456789"
VIEWER_TOKEN = "browser-viewer-0123456789ab"
COMPONENTS = "api:API,web:Website,email:Email delivery"


def _missing(why: str) -> None:
    why += (
        "; install them with `apt-get install chromium chromium-driver` (.ci/run does this in CI)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the browser tests: {why}")
    pytest.skip(why)


def _require_browser() -> None:
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if absent:
        _missing(f"{' and '.join(absent)} not found")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("the selenium package is not installed (pip install -e '.[test]')")


@dataclass(frozen=True)
class Service:
    """A running `incident serve`."""

    url: str

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {COMMANDER_TOKEN}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def artifacts() -> Path:
    directory = Path(os.environ.get("INCIDENT_TEST_ARTIFACTS", PROJECT_ROOT / "test-artifacts"))
    directory = directory / "browser"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    _require_browser()
    settings = {
        "INCIDENT_API_TOKENS": f"{COMMANDER_TOKEN}:commander:casey,{VIEWER_TOKEN}:viewer:vic",
        "INCIDENT_COMPONENTS": COMPONENTS,
        "INCIDENT_STATUS_PAGE_NAME": "Acme Status",
        "INCIDENT_BASE_URL": "http://127.0.0.1:{port}",
        "INCIDENT_LOG_FORMAT": "text",
    }
    with incident_serve(tmp_path_factory.mktemp("browser") / "incident.db", settings) as url:
        yield Service(url)


@pytest.fixture
def browser(service: Service) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
