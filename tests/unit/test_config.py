"""Settings: environment over config file, and every bad value named with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.config import DEFAULT_DATABASE_URL, SmtpServer, load_settings, unknown_variables
from incident.domain.access import AccessRole
from incident.domain.errors import InvalidValue
from incident.domain.incident import Category, Severity

TOKEN = "t" * 20
SMTP_PASSWORD = "S3cr3t-Pa55"
MAIL = {"INCIDENT_SMTP_FROM": "Incidents <incidents@example.com>"}


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.api_tokens == ()
    assert settings.slack_signing_secret is None
    assert settings.alert_routing.route({"severity": "critical", "tier": "1"}).severity is (
        Severity.P1
    )
    assert settings.alert_routing.route({}).severity is Severity.P4


def test_tokens_roles_and_names() -> None:
    settings = load_settings({"INCIDENT_API_TOKENS": f"{TOKEN}:admin:ops-bot, {'u' * 20}:viewer"})
    admin, viewer = settings.api_tokens
    assert (admin.role, admin.name) == (AccessRole.ADMIN, "ops-bot")
    assert (viewer.role, viewer.name) == (AccessRole.VIEWER, "api-viewer-2")
    assert settings.token(TOKEN) == admin
    assert settings.token("nope") is None
    assert TOKEN not in repr(settings)  # tokens never reach logs through repr


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"INCIDENT_API_TOKENS": f"{TOKEN}:root"}, ["INCIDENT_API_TOKENS", "unknown role 'root'"]),
        ({"INCIDENT_API_TOKENS": "short:admin"}, ["INCIDENT_API_TOKENS", "at least 16"]),
        ({"INCIDENT_API_TOKENS": TOKEN}, ["INCIDENT_API_TOKENS", "token:role"]),
        ({"INCIDENT_API_TOKENS": f"{TOKEN}:admin,{TOKEN}:viewer"}, ["listed twice"]),
        ({"INCIDENT_DATABASE_URL": "mysql://x"}, ["INCIDENT_DATABASE_URL", "sqlite:///"]),
        ({"INCIDENT_BASE_URL": "ftp://x"}, ["INCIDENT_BASE_URL", "http://"]),
        ({"INCIDENT_MAX_BODY_BYTES": "lots"}, ["INCIDENT_MAX_BODY_BYTES", "bytes"]),
        ({"INCIDENT_LOG_FORMAT": "xml"}, ["INCIDENT_LOG_FORMAT", "json or text"]),
        ({"INCIDENT_SLACK_ROLES": "U1:boss"}, ["INCIDENT_SLACK_ROLES", "unknown role 'boss'"]),
        ({"INCIDENT_CONFIG_FILE": "/no/such/file.yaml"}, ["INCIDENT_CONFIG_FILE", "cannot read"]),
        ({"INCIDENT_PAGERDUTY_ROUTING_KEY": "abc"}, ["PAGERDUTY_ROUTING_KEY", "has 32"]),
        ({"INCIDENT_PAGERDUTY_EVENTS_URL": "events"}, ["PAGERDUTY_EVENTS_URL", "http"]),
        ({"INCIDENT_STATUSPAGE_API_KEY": "k"}, ["STATUSPAGE_PAGE_ID", "both"]),
        (
            {"INCIDENT_SMTP_URL": "http://mail.example.com", **MAIL},
            ["INCIDENT_SMTP_URL", "the scheme 'http' is not supported", "smtp://", "smtps://"],
        ),
        ({"INCIDENT_SMTP_URL": "smtp://mail.example.com"}, ["INCIDENT_SMTP_FROM", "is needed"]),
        (
            {"INCIDENT_SMTP_URL": "smtp://mail.example.com", "INCIDENT_SMTP_FROM": "ops"},
            ["INCIDENT_SMTP_FROM", "'ops': give one e-mail address"],
        ),
        (
            {"INCIDENT_SMTP_URL": "smtp://h", "INCIDENT_SMTP_FROM": "a@example.com, b@example.com"},
            ["INCIDENT_SMTP_FROM", "give one e-mail address"],
        ),
        ({"INCIDENT_SMTP_URL": "smtp://h:99999", **MAIL}, ["INCIDENT_SMTP_URL", "1 to 65535"]),
        (
            {"INCIDENT_SMTP_URL": "smtp://h?tls=1", **MAIL},
            ["INCIDENT_SMTP_URL", "starttls=required"],
        ),
        ({"INCIDENT_COMPANY_NAME": "Acme\nBcc: x"}, ["INCIDENT_COMPANY_NAME", "one line"]),
    ],
)
def test_bad_environment_values_are_named(environ: dict[str, str], names: list[str]) -> None:
    with pytest.raises(InvalidValue) as caught:
        load_settings(environ)
    for name in names:
        assert name in str(caught.value)


def test_config_file_with_routing_and_env_overrides(tmp_path: Path) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text(
        f"""
database_url: sqlite:///{tmp_path}/from-file.db
api_tokens: ["{TOKEN}:responder:alertmanager"]
slack_roles: ["U123:admin"]
log_format: text
alert_routing:
  routes:
    - name: payments
      match: {{service: payments, severity: critical}}
      severity: P1
    - match: ["alertname=~Security.*"]
      severity: P2
      category: security
      service: edge
  default: {{severity: P3}}
  auto_resolve: [P4]
"""
    )
    settings = load_settings({"INCIDENT_CONFIG_FILE": str(config), "INCIDENT_LOG_FORMAT": "json"})
    assert settings.database_url.endswith("from-file.db")
    assert settings.log_format == "json"  # the environment wins
    assert settings.api_tokens[0].name == "alertmanager"
    assert settings.slack_roles == {"U123": AccessRole.ADMIN}
    routing = settings.alert_routing
    assert routing.route({"service": "payments", "severity": "critical"}).name == "payments"
    security = routing.route({"alertname": "SecurityScanFailed", "service": "x"})
    assert (security.severity, security.category) == (Severity.P2, Category.SECURITY)
    assert security.service_for({"service": "x"}) == "edge"
    assert routing.route({"service": "payments", "severity": "warning"}).severity is Severity.P3
    assert routing.auto_resolve == frozenset({Severity.P4})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("colour: blue\n", ["unknown settings ['colour']"]),
        ("- a\n- b\n", ["must hold a mapping"]),
        ("database_url: [\n", ["not valid YAML"]),
        ("alert_routing:\n  routes:\n    - match: {a: b}\n", ["routes[0].severity"]),
        (
            "alert_routing:\n  routes:\n    - {match: 'a=~(', severity: P1}\n",
            ["routes[0].match[0]", "bad regular expression"],
        ),
        ("alert_routing:\n  routes:\n    - {match: 'a', severity: P1}\n", ["not a matcher"]),
        ("alert_routing:\n  default: {severity: P7}\n", ["alert_routing.default.severity"]),
        ("alert_routing:\n  auto_resolve: P1\n", ["auto_resolve", "list"]),
    ],
)
def test_bad_config_files_name_file_and_key(tmp_path: Path, text: str, names: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(InvalidValue) as caught:
        load_settings({"INCIDENT_CONFIG_FILE": str(config)})
    for name in names:
        assert name in str(caught.value), str(caught.value)


def test_vendor_credentials_are_kept_out_of_repr() -> None:
    settings = load_settings(
        {
            "INCIDENT_PAGERDUTY_ROUTING_KEY": "R" * 32,
            "INCIDENT_PAGERDUTY_API_TOKEN": "pd-token-secret",
            "INCIDENT_SLACK_BOT_TOKEN": "xoxb-secret",
            "INCIDENT_STATUSPAGE_API_KEY": "sp-secret",
            "INCIDENT_STATUSPAGE_PAGE_ID": "page1",
        }
    )
    assert settings.pagerduty_routing_key == "R" * 32
    assert settings.statuspage_page_id == "page1"
    text = repr(settings)
    for secret in ("R" * 32, "pd-token-secret", "xoxb-secret", "sp-secret"):
        assert secret not in text


def test_cancelled_incidents_are_withdrawn_unless_said_otherwise(tmp_path: Path) -> None:
    assert load_settings({}).cancelled_incidents == "withdraw"
    settings = load_settings({"INCIDENT_CANCELLED_INCIDENTS": "no_impact"})
    assert settings.cancelled_incidents == "no_impact"
    config = tmp_path / "incident.yaml"
    config.write_text("cancelled_incidents: no_impact\n")
    assert load_settings({"INCIDENT_CONFIG_FILE": str(config)}).cancelled_incidents == "no_impact"


CANCELLED_HINT = (
    "use withdraw (a cancelled incident is taken off the status page) or no_impact (it stays "
    "there, resolved, as having had no impact)"
)


@pytest.mark.parametrize("value", ["delete", "No_Impact", "no-impact"])
def test_a_bad_cancelled_incidents_says_what_to_write(tmp_path: Path, value: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        load_settings({"INCIDENT_CANCELLED_INCIDENTS": value})
    assert str(caught.value) == f"INCIDENT_CANCELLED_INCIDENTS: {value!r}: {CANCELLED_HINT}"
    config = tmp_path / "incident.yaml"
    config.write_text(f"cancelled_incidents: {value}\n")
    with pytest.raises(InvalidValue) as caught:
        load_settings({"INCIDENT_CONFIG_FILE": str(config)})
    assert str(caught.value) == f"{config}: cancelled_incidents: {value!r}: {CANCELLED_HINT}"


def test_smtp_settings_from_the_environment_and_from_the_file(tmp_path: Path) -> None:
    assert load_settings({}).smtp is None
    assert load_settings({}).company_name == "Service"
    settings = load_settings(
        {
            "INCIDENT_SMTP_URL": f"smtp://alerts%40example.com:{SMTP_PASSWORD}@mail.example.com:587",
            "INCIDENT_SMTP_FROM": "Société Ops <ops@example.com>",
            "INCIDENT_COMPANY_NAME": "Acme",
        }
    )
    assert settings.smtp == SmtpServer(
        host="mail.example.com",
        port=587,
        require_starttls=True,  # a password never crosses in the clear
        username="alerts@example.com",
        password=SMTP_PASSWORD,
    )
    assert (settings.smtp_from, settings.company_name) == ("Société Ops <ops@example.com>", "Acme")
    assert SMTP_PASSWORD not in repr(settings)
    assert settings.smtp.address == "mail.example.com:587"
    plain = load_settings({"INCIDENT_SMTP_URL": "smtp://relay.internal", **MAIL}).smtp
    assert plain == SmtpServer(host="relay.internal", port=25)
    assert plain.security == "STARTTLS when offered"
    required = load_settings({"INCIDENT_SMTP_URL": "smtp://relay?starttls=required", **MAIL})
    assert required.smtp is not None and required.smtp.security == "STARTTLS"
    config = tmp_path / "incident.yaml"
    config.write_text(
        "smtp_url: smtps://mail.example.com\nsmtp_from: ops@example.com\ncompany_name: Acme\n"
    )
    from_file = load_settings({"INCIDENT_CONFIG_FILE": str(config)})
    assert from_file.smtp == SmtpServer(host="mail.example.com", port=465, implicit_tls=True)
    assert (from_file.smtp_from, from_file.company_name) == ("ops@example.com", "Acme")


@pytest.mark.parametrize(
    "url",
    [
        f"http://ops:{SMTP_PASSWORD}@mail.example.com",
        f"ops:{SMTP_PASSWORD}@mail.example.com",
        f"smtp://ops:{SMTP_PASSWORD}@mail.example.com:70000",
        f"smtp://ops:{SMTP_PASSWORD}@mail.example.com:port",
        f"smtp://ops:{SMTP_PASSWORD}@mail.example.com/inbox",
        f"smtp://ops:{SMTP_PASSWORD}@mail.example.com?starttls=maybe",
        f"smtps://ops:{SMTP_PASSWORD}@mail.example.com?starttls=required",
        f"smtp://:{SMTP_PASSWORD}@mail.example.com",
        f"smtp://ops:{SMTP_PASSWORD}/x@mail.example.com",  # an unencoded / in the password
    ],
)
def test_smtp_url_errors_never_repeat_the_password(url: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        load_settings({"INCIDENT_SMTP_URL": url, **MAIL})
    text = str(caught.value)
    assert text.startswith("INCIDENT_SMTP_URL: ")
    assert SMTP_PASSWORD not in text and "ops:" not in text


def test_components_from_the_environment_and_from_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        {"INCIDENT_COMPONENTS": "api:Public API, web:Website", "INCIDENT_STATUS_PAGE_NAME": "Acme"}
    )
    assert [(c.id, c.name) for c in settings.catalog.components] == [
        ("api", "Public API"),
        ("web", "Website"),
    ]
    assert settings.status_page_name == "Acme"
    config = tmp_path / "incident.yaml"
    config.write_text(
        "component_groups:\n"
        "  - {id: core, name: Core services}\n"
        "components:\n"
        "  - {id: api, name: API, group: core, description: REST and GraphQL}\n"
        "  - {id: email, name: Email delivery}\n"
    )
    catalog = load_settings({"INCIDENT_CONFIG_FILE": str(config)}).catalog
    assert [c.id for c in catalog.in_group("core")] == ["api"]
    assert catalog.require("api").description == "REST and GraphQL"
    assert catalog.groups[0].name == "Core services"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("components:\n  - {id: API, name: x}\n", "lower-case"),
        ("components:\n  - {id: api, name: A}\n  - {id: api, name: B}\n", "used twice"),
        ("components:\n  - {id: api, name: A, group: nope}\n", "not defined"),
        ("components:\n  - {id: api}\n", "needs an id and a name"),
        ("components:\n  - {id: api, name: A, colour: red}\n", "unknown keys"),
        ("components:\n  - api:API\n  - 42\n", "component 2 is a int: write each component as"),
    ],
)
def test_bad_components_are_named(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text(text)
    with pytest.raises(InvalidValue, match=problem) as caught:
        load_settings({"INCIDENT_CONFIG_FILE": str(config)})
    assert "components" in str(caught.value)


def test_a_component_list_may_mix_strings_and_mappings(tmp_path: Path) -> None:
    config = tmp_path / "incident.yaml"
    config.write_text(
        "components:\n  - api:Public API\n  - {id: web, name: Website, description: The site}\n"
    )
    catalog = load_settings({"INCIDENT_CONFIG_FILE": str(config)}).catalog
    assert [(c.id, c.name) for c in catalog.components] == [
        ("api", "Public API"),
        ("web", "Website"),
    ]


def test_unknown_incident_variables_are_named_with_the_likely_setting() -> None:
    warnings = unknown_variables(
        {
            "INCIDENT_API_TOKEN": "x",
            "INCIDENT_DATABSE_URL": "x",
            "INCIDENT_WHATEVER": "x",
            "INCIDENT_URL": "http://127.0.0.1:8080",  # the CLI's own
            "INCIDENT_CONFIG_FILE": "x",
            "INCIDENT_API_TOKENS": "x",
            "PATH": "/bin",
        }
    )
    assert warnings == [
        "INCIDENT_API_TOKEN is not a setting and is ignored; did you mean INCIDENT_API_TOKENS?",
        "INCIDENT_DATABSE_URL is not a setting and is ignored; did you mean INCIDENT_DATABASE_URL?",
        "INCIDENT_WHATEVER is not a setting and is ignored",
    ]


WEBHOOK_SECRET = "whsec-" + "s3cr3t" * 6


def test_the_account_webhook_takes_an_https_url_and_a_secret_kept_secret() -> None:
    assert load_settings({}).account_webhook_url is None
    settings = load_settings(
        {
            "INCIDENT_ACCOUNT_WEBHOOK_URL": "https://accounts.example.com/hooks/incident",
            "INCIDENT_ACCOUNT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    assert settings.account_webhook_url == "https://accounts.example.com/hooks/incident"
    assert settings.account_webhook_secret == WEBHOOK_SECRET
    assert settings.account_webhook_allow_http is False
    assert WEBHOOK_SECRET in settings.secrets() and WEBHOOK_SECRET not in repr(settings)
    local = load_settings(
        {
            "INCIDENT_ACCOUNT_WEBHOOK_URL": "http://127.0.0.1:9000/hook",
            "INCIDENT_ACCOUNT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "INCIDENT_ACCOUNT_WEBHOOK_ALLOW_HTTP": "true",
        }
    )
    assert local.account_webhook_allow_http is True


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"INCIDENT_ACCOUNT_WEBHOOK_URL": "https://a.example.com/h"}, "set both"),
        ({"INCIDENT_ACCOUNT_WEBHOOK_SECRET": WEBHOOK_SECRET}, "set both"),
        (
            {
                "INCIDENT_ACCOUNT_WEBHOOK_URL": "http://a.example.com/h",
                "INCIDENT_ACCOUNT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            "ALLOW_HTTP",
        ),
        (
            {
                "INCIDENT_ACCOUNT_WEBHOOK_URL": "ftp://a.example.com/h",
                "INCIDENT_ACCOUNT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            "https://",
        ),
        (
            {
                "INCIDENT_ACCOUNT_WEBHOOK_URL": "https://a.example.com/h",
                "INCIDENT_ACCOUNT_WEBHOOK_SECRET": "short-s3cr3t",
            },
            "at least 32",
        ),
        ({"INCIDENT_ACCOUNT_WEBHOOK_ALLOW_HTTP": "maybe"}, "true or false"),
    ],
)
def test_bad_account_webhook_settings_say_what_to_write(environ: dict[str, str], said: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        load_settings(environ)
    assert said in str(caught.value)
    assert "short-s3cr3t" not in str(caught.value) and WEBHOOK_SECRET not in str(caught.value)
