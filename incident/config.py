"""Settings from the environment (prefix INCIDENT_) and an optional YAML config file.

Built by a function: nothing is read at import. The config file (INCIDENT_CONFIG_FILE)
holds the same settings in lower case without the prefix (`database_url: ...`) plus the
structured ones (`alert_routing`); an environment variable wins over the file. Every bad
value raises InvalidValue naming the variable (or file and key) and what to write instead.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.policy import default as default_email_policy
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from incident.adapters.database.databases import POSTGRES_PREFIXES, SQLITE_PREFIXES
from incident.domain.access import AccessRole, Principal
from incident.domain.alert_routing import AlertRouting
from incident.domain.case_access import SupportRoles, parse_support_roles
from incident.domain.errors import InvalidValue
from incident.domain.incident import Category
from incident.domain.status_page import Catalog, Component, ComponentGroup

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///incident.db"
ENV_PREFIX = "INCIDENT_"
SMTP_URL_FORM = (
    "smtp://[user[:password]@]host[:port] (STARTTLS when the server offers it; required with "
    "a user, or with ?starttls=required) or smtps://[user[:password]@]host[:port] (TLS from "
    "the start), percent-encoding @ : / ? # in the user and password"
)

# Every setting a config file may hold (lower case, no prefix); anything else is a typo.
KNOWN_KEYS = frozenset(
    {
        "database_url",
        "scheduler_lease",
        "playbooks_dir",
        "comms_dir",
        "runbooks_dir",
        "base_url",
        "conference_url_template",
        "api_tokens",
        "slack_signing_secret",
        "slack_roles",
        "max_body_bytes",
        "log_format",
        "alert_routing",
        "pagerduty_routing_key",
        "pagerduty_events_url",
        "pagerduty_api_token",
        "pagerduty_api_url",
        "slack_bot_token",
        "slack_api_url",
        "statuspage_api_key",
        "statuspage_page_id",
        "statuspage_api_url",
        "statuspage_components",
        "cancelled_incidents",
        "approval_categories",
        "support_roles",
        "pagerduty_escalation_policies",
        "smtp_url",
        "smtp_from",
        "account_webhook_url",
        "account_webhook_secret",
        "account_webhook_allow_http",
        "company_name",
        "status_page_name",
        "components",
        "component_groups",
    }
)


@dataclass(frozen=True)
class ApiToken:
    """A bearer token and who it acts as (`name` goes on the timeline)."""

    token: str = field(repr=False)
    role: AccessRole
    name: str

    @property
    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role)


@dataclass(frozen=True)
class SmtpServer:
    """The mail server of INCIDENT_SMTP_URL, parsed. The password never shows in repr."""

    host: str
    port: int
    implicit_tls: bool = False  # smtps://: TLS from the first byte
    # smtp://: STARTTLS when offered; this makes it required (set with a user, so a password
    # never crosses the network in the clear, or by ?starttls=required).
    require_starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def security(self) -> str:
        if self.implicit_tls:
            return "TLS"
        return "STARTTLS" if self.require_starttls else "STARTTLS when offered"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # How long a replica's claim on a step lasts unless renewed (it renews every third of
    # it while it works): how soon another replica takes over the steps of one that died.
    scheduler_lease: timedelta = timedelta(minutes=1)
    playbooks_dir: Path = PROJECT_ROOT / "playbooks"
    comms_dir: Path = PROJECT_ROOT / "comms"
    runbooks_dir: Path = PROJECT_ROOT / "runbooks"
    base_url: str = "http://127.0.0.1:8080"
    conference_url_template: str | None = None
    api_tokens: tuple[ApiToken, ...] = ()
    slack_signing_secret: str | None = field(default=None, repr=False)
    # Slack user id -> role; anyone else in the workspace is a responder.
    slack_roles: Mapping[str, AccessRole] = field(default_factory=dict)
    max_body_bytes: int = 256 * 1024
    log_format: str = "json"
    alert_routing: AlertRouting = field(default_factory=AlertRouting.default_rules)
    # Vendors: each is live when its credentials are set, else the outbox serves its port.
    pagerduty_routing_key: str | None = field(default=None, repr=False)
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_api_token: str | None = field(default=None, repr=False)
    pagerduty_api_url: str = "https://api.pagerduty.com"
    # Our on-call tier -> PagerDuty escalation policy id, to invite who is on call.
    pagerduty_escalation_policies: Mapping[str, str] = field(default_factory=dict)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    statuspage_api_key: str | None = field(default=None, repr=False)
    statuspage_page_id: str | None = None
    statuspage_api_url: str = "https://api.statuspage.io/v1"
    # Our service name -> Statuspage component id, for component statuses.
    statuspage_components: Mapping[str, str] = field(default_factory=dict)
    # E-mail: `email:` destinations go through this server, from `smtp_from`.
    smtp: SmtpServer | None = None
    smtp_from: str | None = None  # `Name <address>` or `address`, checked
    # The account system: account instructions are POSTed to this URL, signed with the secret
    # (HMAC-SHA256, see adapters/vendors/account_webhook.py); https:// only, unless
    # `account_webhook_allow_http` (a local receiver in tests or development).
    account_webhook_url: str | None = None
    account_webhook_secret: str | None = field(default=None, repr=False)
    account_webhook_allow_http: bool = False
    # Our company's name, in e-mail subjects (`[Acme] [INC-12 P1] ...`) and signatures.
    company_name: str = "Service"
    # The built-in public status page: its name and the components it lists.
    status_page_name: str = "Service Status"
    catalog: Catalog = field(default_factory=Catalog)
    # A cancelled incident (false alarm, declined, merged) on the status pages, ours and
    # Statuspage: `withdraw` takes it off; `no_impact` keeps it, resolved with no impact.
    cancelled_incidents: Literal["withdraw", "no_impact"] = "withdraw"
    # Incidents of these categories hold every automatic customer-facing text (status page,
    # notifications, holding updates) until their commander approves it.
    approval_categories: frozenset[Category] = frozenset({Category.SECURITY})
    # Support roles by the name people act under (`alice=agent, dana=cio`): who may
    # override the context gate, route a case to the CEO, decide as the CIO or the CEO.
    support_roles: SupportRoles = field(default_factory=SupportRoles)

    def secrets(self) -> tuple[str, ...]:
        """Every credential configured: what no error text or log line may show."""
        found = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.statuspage_api_key,
            self.pagerduty_routing_key,
            self.pagerduty_api_token,
            self.account_webhook_secret,
            *(t.token for t in self.api_tokens),
        ]
        if self.smtp is not None and self.smtp.password:
            found.append(self.smtp.password)
        if "@" in self.database_url and ":" in self.database_url.split("://", 1)[-1]:
            credentials = self.database_url.split("://", 1)[-1].split("@", 1)[0]
            found.append(credentials.partition(":")[2])
        return tuple(s for s in found if s)

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)

    def token(self, presented: str) -> ApiToken | None:
        found = None
        for candidate in self.api_tokens:
            # Compare against every token, in constant time each: no early exit to time.
            if hmac.compare_digest(candidate.token.encode(), presented.encode()):
                found = candidate
        return found


class _Source:
    """Where each setting comes from: the environment first, then the config file."""

    def __init__(self, env: Mapping[str, str], file_values: Mapping[str, Any]) -> None:
        self._env = env
        self._file = file_values

    def raw(self, key: str) -> tuple[str, Any]:
        """(where it came from, value) for a key."""
        name = ENV_PREFIX + key.upper()
        if name in self._env:
            return name, self._env[name]
        if key in self._file:
            return f"{self._file['__file__']}: {key}", self._file[key]
        return name, None

    def text(self, key: str, default: str | None) -> tuple[str, str | None]:
        where, value = self.raw(key)
        if value is None or value == "":
            return where, default
        if not isinstance(value, str | int | float):
            raise InvalidValue(where, "must be a string")
        return where, str(value).strip()

    def path(self, key: str, default: Path) -> Path:
        _, value = self.text(key, None)
        return Path(value).expanduser() if value else default

    def http_url(self, key: str, default: str, *, https_only: bool = False) -> str:
        where, value = self.text(key, default)
        assert value is not None
        value = value.rstrip("/") if key == "base_url" else value
        shown = _without_password(value)
        if https_only and not value.startswith("https://"):
            raise InvalidValue(where, f"{shown!r} must start with https:// (PagerDuty's client)")
        if not value.startswith(("https://", "http://")):
            raise InvalidValue(where, f"{shown!r} must start with http:// or https://")
        return value

    def credential(self, key: str) -> str | None:
        return self.text(key, None)[1] or None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read INCIDENT_* variables and the config file they may name."""
    env = os.environ if environ is None else environ
    source = _Source(env, _read_config_file(env.get(f"{ENV_PREFIX}CONFIG_FILE")))
    defaults = Settings()
    where, url = source.text("database_url", defaults.database_url)
    assert url is not None
    if not url.startswith((*SQLITE_PREFIXES, *POSTGRES_PREFIXES)):
        raise InvalidValue(
            where,
            f"{_without_password(url)!r} is not supported; use sqlite:///path/to/file.db or "
            "postgresql+asyncpg://user@host/dbname",
        )
    where, lease_text = source.text("scheduler_lease", None)
    lease = defaults.scheduler_lease
    if lease_text is not None:
        from incident.domain.playbook import parse_duration

        try:
            lease = parse_duration(lease_text)
        except ValueError:
            lease = timedelta(0)
        if not timedelta(seconds=1) <= lease <= timedelta(hours=1):
            raise InvalidValue(where, f"{lease_text!r}: give a duration from 1s to 1h, like 1m")
    where, template = source.text("conference_url_template", None)
    if template is not None:
        try:
            template.format(id=1, ref="INC-1", channel="inc-1")
        except (KeyError, IndexError, ValueError) as error:
            raise InvalidValue(
                where,
                f"{template!r} has an unknown placeholder ({error}); use {{id}}, {{ref}} or "
                "{channel}",
            ) from None
    where, max_body = source.text("max_body_bytes", str(defaults.max_body_bytes))
    assert max_body is not None
    if not max_body.isdigit() or not 1024 <= int(max_body) <= 64 * 1024 * 1024:
        raise InvalidValue(where, f"{max_body!r}: give a size in bytes from 1024 to 67108864")
    where, log_format = source.text("log_format", defaults.log_format)
    if log_format not in ("json", "text"):
        raise InvalidValue(where, f"{log_format!r}: use json or text")
    where, routing_raw = source.raw("alert_routing")
    if isinstance(routing_raw, str):
        raise InvalidValue(where, "alert_routing is structured: set it in the config file")
    return Settings(
        database_url=url,
        scheduler_lease=lease,
        playbooks_dir=source.path("playbooks_dir", defaults.playbooks_dir),
        comms_dir=source.path("comms_dir", defaults.comms_dir),
        runbooks_dir=source.path("runbooks_dir", defaults.runbooks_dir),
        base_url=source.http_url("base_url", defaults.base_url),
        conference_url_template=template,
        api_tokens=_parse_tokens(*source.raw("api_tokens")),
        slack_signing_secret=source.credential("slack_signing_secret"),
        slack_roles=_parse_slack_roles(*source.raw("slack_roles")),
        max_body_bytes=int(max_body),
        log_format=log_format or "json",
        alert_routing=AlertRouting.parse(routing_raw, where=where),
        status_page_name=source.text("status_page_name", defaults.status_page_name)[1]
        or defaults.status_page_name,
        company_name=_company_name(*source.text("company_name", defaults.company_name)),
        catalog=_parse_catalog(source),
        cancelled_incidents=_cancelled_incidents(*source.text("cancelled_incidents", None)),
        approval_categories=_approval_categories(*source.raw("approval_categories")),
        support_roles=_support_roles(*source.raw("support_roles")),
        **_vendors(source, defaults),
    )


def _parse_catalog(source: _Source) -> Catalog:
    """Components: `id:Name,...` (environment) or, in the file, a list of `id:Name`
    strings or of mappings with id, name, and optional description and group."""
    groups_where, groups_raw = source.raw("component_groups")
    where, raw = source.raw("components")
    groups = [
        ComponentGroup(id=g["id"], name=g["name"], description=g.get("description", ""))
        for g in _entries(groups_where, groups_raw, "component group")
    ]
    components = [
        Component(
            id=c["id"],
            name=c["name"],
            description=c.get("description", ""),
            group=c.get("group") or None,
        )
        for c in _entries(where, raw, "component")
    ]
    try:
        return Catalog.build(components, groups)
    except InvalidValue as error:
        raise InvalidValue(where, error.message) from None


def _entries(where: str, value: Any, what: str) -> list[dict[str, str]]:
    if value is None or value == "":
        return []
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return [{"id": k, "name": v} for k, v in _pairs(where, value, f"{what} id:Name")]
    if not isinstance(value, list):
        raise InvalidValue(where, f"a list of {what}s (id, name, description)")
    entries = []
    for index, item in enumerate(value, start=1):
        if isinstance(item, str):
            # `id:Name` strings and mappings in one list: take each as it is written.
            entries += [{"id": k, "name": v} for k, v in _pairs(where, item, f"{what} id:Name")]
            continue
        if not isinstance(item, Mapping):
            raise InvalidValue(
                where,
                f"{what} {index} is a {type(item).__name__}: write each {what} as an `id:Name` "
                "string or as a mapping with id and name (and description, group)",
            )
        if not {"id", "name"} <= set(item):
            raise InvalidValue(where, f"{what} {index} needs an id and a name")
        unknown = set(item) - {"id", "name", "description", "group"}
        if unknown:
            raise InvalidValue(where, f"{what} {index} has unknown keys {sorted(unknown)}")
        entries.append({k: str(v) for k, v in item.items()})
    return entries


def _vendors(source: _Source, defaults: Settings) -> dict[str, Any]:
    routing_key = source.credential("pagerduty_routing_key")
    if routing_key is not None and len(routing_key) != 32:
        raise InvalidValue(
            f"{ENV_PREFIX}PAGERDUTY_ROUTING_KEY",
            f"is {len(routing_key)} characters; a PagerDuty integration key has 32 (the "
            "service's Events API v2 integration)",
        )
    statuspage_key = source.credential("statuspage_api_key")
    page_id = source.credential("statuspage_page_id")
    if (statuspage_key is None) != (page_id is None):
        raise InvalidValue(
            f"{ENV_PREFIX}STATUSPAGE_PAGE_ID",
            "set both INCIDENT_STATUSPAGE_API_KEY and INCIDENT_STATUSPAGE_PAGE_ID, or neither",
        )
    smtp_where, smtp_url = source.text("smtp_url", None)
    smtp = parse_smtp_url(smtp_url, where=smtp_where) if smtp_url else None
    from_where, smtp_from = source.text("smtp_from", None)
    if smtp is not None and smtp_from is None:
        raise InvalidValue(
            from_where,
            "is needed with INCIDENT_SMTP_URL: the sender of our e-mail, like "
            "Incidents <incidents@example.com>",
        )
    return {
        **_account_webhook(source),
        "smtp": smtp,
        "smtp_from": _mailbox(from_where, smtp_from) if smtp_from is not None else None,
        "pagerduty_routing_key": routing_key,
        # The pagerduty package refuses any base URL but https:// (a local fake serves TLS).
        "pagerduty_events_url": source.http_url(
            "pagerduty_events_url", defaults.pagerduty_events_url, https_only=True
        ),
        "pagerduty_api_token": source.credential("pagerduty_api_token"),
        "pagerduty_api_url": source.http_url(
            "pagerduty_api_url", defaults.pagerduty_api_url, https_only=True
        ),
        "pagerduty_escalation_policies": _parse_mapping(
            *source.raw("pagerduty_escalation_policies"), what="tier:escalation_policy_id"
        ),
        "slack_bot_token": source.credential("slack_bot_token"),
        "slack_api_url": source.http_url("slack_api_url", defaults.slack_api_url),
        "statuspage_api_key": statuspage_key,
        "statuspage_page_id": page_id,
        "statuspage_api_url": source.http_url("statuspage_api_url", defaults.statuspage_api_url),
        "statuspage_components": _parse_mapping(
            *source.raw("statuspage_components"), what="service:component_id"
        ),
    }


ACCOUNT_WEBHOOK_SECRET_MIN = 32  # characters: a signing key worth its name


def _account_webhook(source: _Source) -> dict[str, Any]:
    """INCIDENT_ACCOUNT_WEBHOOK_URL and _SECRET (both or neither), and _ALLOW_HTTP."""
    allow_http = _flag(*source.text("account_webhook_allow_http", None))
    url_where, url = source.text("account_webhook_url", None)
    secret = source.credential("account_webhook_secret")
    if (url is None) != (secret is None):
        raise InvalidValue(
            f"{ENV_PREFIX}ACCOUNT_WEBHOOK_SECRET",
            "set both INCIDENT_ACCOUNT_WEBHOOK_URL and INCIDENT_ACCOUNT_WEBHOOK_SECRET, or "
            "neither (without them, account instructions are kept in the outbox only)",
        )
    if url is not None:
        shown = _without_password(url)
        if not url.startswith(("https://", "http://")) or not urlsplit(url).hostname:
            raise InvalidValue(url_where, f"{shown!r} must be an https:// URL")
        if url.startswith("http://") and not allow_http:
            raise InvalidValue(
                url_where,
                f"{shown!r} is plain http: instructions about customers' accounts go over "
                "https:// only (set INCIDENT_ACCOUNT_WEBHOOK_ALLOW_HTTP=true for a local "
                "receiver in tests or development)",
            )
    if secret is not None and len(secret) < ACCOUNT_WEBHOOK_SECRET_MIN:
        raise InvalidValue(
            f"{ENV_PREFIX}ACCOUNT_WEBHOOK_SECRET",
            f"is {len(secret)} characters; give at least {ACCOUNT_WEBHOOK_SECRET_MIN} "
            "(random, shared with the account system only)",
        )
    return {
        "account_webhook_url": url,
        "account_webhook_secret": secret,
        "account_webhook_allow_http": allow_http,
    }


def _flag(where: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidValue(where, f"{value!r}: use true or false")


def parse_smtp_url(value: str, *, where: str) -> SmtpServer:
    """INCIDENT_SMTP_URL as a SmtpServer. Errors name `where` and never repeat the value:
    it may hold a password."""
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in ("smtp", "smtps"):
        named = (
            f"the scheme {scheme!r} is not supported"
            if separator and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme)
            else "it does not start with smtp:// or smtps://"
        )
        raise InvalidValue(where, f"{named}; write {SMTP_URL_FORM}")
    parts = urlsplit(value.strip())
    implicit_tls = parts.scheme.lower() == "smtps"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or not parts.hostname:
        raise InvalidValue(
            where, f"it needs a host and, if given, a port from 1 to 65535; write {SMTP_URL_FORM}"
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidValue(
            where, f"a mail server URL has no path or #fragment; write {SMTP_URL_FORM}"
        )
    require_starttls = False
    for name, setting in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls" or setting != "required":
            raise InvalidValue(where, "the only option is ?starttls=required (for smtp://)")
        if implicit_tls:
            raise InvalidValue(where, "smtps:// is TLS from the start: drop ?starttls=required")
        require_starttls = True
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise InvalidValue(
            where, f"give both a user and a password, or neither; write {SMTP_URL_FORM}"
        )
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        require_starttls=not implicit_tls and (require_starttls or username is not None),
        username=username,
        password=password,
    )


def _mailbox(where: str, value: str) -> str:
    """One e-mail address, optionally with a display name, as a From header shows it."""
    hint = "give one e-mail address, like Incidents <incidents@example.com> or ops@example.com"
    try:
        header = default_email_policy.header_factory("From", value)
        addresses = header.addresses
    except (IndexError, ValueError):
        raise InvalidValue(where, f"{value!r}: {hint}") from None
    if header.defects or len(addresses) != 1:
        raise InvalidValue(where, f"{value!r}: {hint}")
    (address,) = addresses
    if not address.username or not address.domain:
        raise InvalidValue(where, f"{value!r}: {hint}")
    if not address.addr_spec.isascii():
        raise InvalidValue(where, f"{value!r}: the address itself must be ASCII (the name may not)")
    return str(address)


def _company_name(where: str, value: str | None) -> str:
    if value is None:
        return Settings.company_name
    if not value.isprintable() or len(value) > 100:
        raise InvalidValue(where, "give a name on one line, of at most 100 characters")
    return value


def _read_config_file(name: str | None) -> dict[str, Any]:
    if not name:
        return {"__file__": ""}
    path = Path(name).expanduser()
    where = f"{ENV_PREFIX}CONFIG_FILE"
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidValue(where, f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise InvalidValue(where, f"{path} is not valid YAML: {error}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise InvalidValue(where, f"{path} must hold a mapping of settings")
    unknown = set(loaded) - KNOWN_KEYS
    if unknown:
        raise InvalidValue(
            str(path), f"unknown settings {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    return {**loaded, "__file__": str(path)}


def _pairs(where: str, value: Any, what: str) -> list[tuple[str, str]]:
    """`a:b,c:d` (environment) or a list of `a:b` strings (file) as pairs."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InvalidValue(where, f"a comma-separated list of {what}")
    pairs = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, str) or ":" not in item:
            raise InvalidValue(where, f"entry {index} is not {what}")
        left, _, right = item.strip().partition(":")
        pairs.append((left.strip(), right.strip()))
    return pairs


def _parse_tokens(where: str, value: Any) -> tuple[ApiToken, ...]:
    """`token:role` or `token:role:name`; the name defaults to `api-<role>-<n>`."""
    tokens: list[ApiToken] = []
    for index, (token, rest) in enumerate(_pairs(where, value, "token:role[:name]"), start=1):
        role_text, _, name = rest.partition(":")
        if len(token) < 16:
            raise InvalidValue(
                where, f"token {index} is {len(token)} characters; use at least 16 random ones"
            )
        role = AccessRole.parse(role_text, where=f"{where} (token {index})")
        if any(t.token == token for t in tokens):
            raise InvalidValue(where, f"token {index} is listed twice")
        tokens.append(ApiToken(token=token, role=role, name=name or f"api-{role.value}-{index}"))
    return tuple(tokens)


def _parse_slack_roles(where: str, value: Any) -> dict[str, AccessRole]:
    return {
        user: AccessRole.parse(role, where=f"{where} ({user})")
        for user, role in _pairs(where, value, "slack_user_id:role")
    }


def _without_password(url: str) -> str:
    """A URL as it may be shown: any password replaced by ***."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


# Variables with the prefix that are not settings of the service: the config file's name,
# and the CLI's and the test suite's own.
OTHER_VARIABLES = frozenset({"CONFIG_FILE", "URL", "TOKEN", "TEST_POSTGRES", "TEST_ARTIFACTS"})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each INCIDENT_* variable that is no setting (a typo is otherwise
    silently ignored), with the setting it most likely meant."""
    import difflib

    names = sorted(KNOWN_KEYS | {k.lower() for k in OTHER_VARIABLES})
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        key = variable.removeprefix(ENV_PREFIX).lower()
        if key in names:
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
        hint = f"; did you mean {ENV_PREFIX}{close[0].upper()}?" if close else ""
        warnings.append(f"{variable} is not a setting and is ignored{hint}")
    return warnings


def _approval_categories(where: str, value: Any) -> frozenset[Category]:
    """`security,legal` (environment) or a list (file); `none` for no approvals at all."""
    if value is None or value == "":
        return Settings.approval_categories
    if isinstance(value, str):
        if value.strip().lower() == "none":
            return frozenset()
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidValue(where, "give categories like security,legal (or none)")
    return frozenset(Category.parse(v, where=where) for v in value if v.strip())


def _support_roles(where: str, value: Any) -> SupportRoles:
    """`alice=agent, dana=cio` (environment) or a mapping of names to roles (file)."""
    if value is None or value == "":
        return SupportRoles()
    if isinstance(value, Mapping):
        value = ",".join(f"{name}={role}" for name, role in value.items())
    if not isinstance(value, str):
        raise InvalidValue(where, "give name=role pairs, like alice=agent, dana=cio")
    return parse_support_roles(value, where=where)


def _cancelled_incidents(where: str, value: str | None) -> Literal["withdraw", "no_impact"]:
    if value is None or value == "withdraw":
        return "withdraw"
    if value == "no_impact":
        return "no_impact"
    raise InvalidValue(
        where,
        f"{value!r}: use withdraw (a cancelled incident is taken off the status page) or "
        "no_impact (it stays there, resolved, as having had no impact)",
    )


def _parse_mapping(where: str, value: Any, *, what: str) -> dict[str, str]:
    """`name:id,...` (environment), or a mapping or list of them (file)."""
    if isinstance(value, Mapping):
        value = [f"{k}:{v}" for k, v in value.items()]
    mapping = {}
    for name, ident in _pairs(where, value, what):
        if not name or not ident:
            raise InvalidValue(where, f"{name}:{ident} is not {what}")
        mapping[name] = ident
    return mapping
