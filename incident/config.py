"""Settings from the environment (prefix INCIDENT_), built by a function: nothing at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from incident.adapters.database import POSTGRES_PREFIXES, SQLITE_PREFIXES
from incident.domain.errors import InvalidValue

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///incident.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    playbooks_dir: Path = PROJECT_ROOT / "playbooks"
    comms_dir: Path = PROJECT_ROOT / "comms"
    runbooks_dir: Path = PROJECT_ROOT / "runbooks"
    base_url: str = "http://127.0.0.1:8080"
    conference_url_template: str | None = None

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read INCIDENT_* variables; a bad value raises InvalidValue naming the variable."""
    env = os.environ if environ is None else environ
    defaults = Settings()

    def path(name: str, default: Path) -> Path:
        value = env.get(name)
        return Path(value).expanduser() if value else default

    url = env.get("INCIDENT_DATABASE_URL", defaults.database_url).strip()
    if not url.startswith((*SQLITE_PREFIXES, *POSTGRES_PREFIXES)):
        raise InvalidValue(
            "INCIDENT_DATABASE_URL",
            f"{url!r} is not supported; use sqlite:///path/to/file.db or "
            "postgresql+asyncpg://user@host/dbname",
        )
    base_url = env.get("INCIDENT_BASE_URL", defaults.base_url).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidValue("INCIDENT_BASE_URL", f"{base_url!r} must start with http:// or https://")
    template = env.get("INCIDENT_CONFERENCE_URL_TEMPLATE") or None
    if template is not None:
        try:
            template.format(id=1, ref="INC-1", channel="inc-1")
        except (KeyError, IndexError, ValueError) as error:
            raise InvalidValue(
                "INCIDENT_CONFERENCE_URL_TEMPLATE",
                f"{template!r} has an unknown placeholder ({error}); use {{id}}, {{ref}} or "
                "{channel}",
            ) from None
    return Settings(
        database_url=url,
        playbooks_dir=path("INCIDENT_PLAYBOOKS_DIR", defaults.playbooks_dir),
        comms_dir=path("INCIDENT_COMMS_DIR", defaults.comms_dir),
        runbooks_dir=path("INCIDENT_RUNBOOKS_DIR", defaults.runbooks_dir),
        base_url=base_url,
        conference_url_template=template,
    )
