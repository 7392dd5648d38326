"""Alert groups in domain words: what a notification changed, titles, identities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incident.domain.alert_routing import AlertRouting
from incident.domain.alerts import (
    Alert,
    AlertGroup,
    AlertNotification,
    AlertRecord,
    AlertState,
    fallback_group_key,
    group_key_hash,
    label_fingerprint,
    listing,
)
from incident.domain.text import TITLE

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIRING, RESOLVED = AlertState.FIRING, AlertState.RESOLVED


def alert(fingerprint: str, state: AlertState = FIRING, **labels: str) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        state=state,
        labels={"alertname": "DiskFull", **labels},
        annotations={"summary": f"disk {fingerprint} full"},
    )


def note(*alerts: Alert, status: AlertState | None = None, **kw: object) -> AlertNotification:
    firing = any(a.state is FIRING for a in alerts)
    return AlertNotification(
        source="alertmanager",
        group_key="{}:{}",
        status=status or (FIRING if firing else RESOLVED),
        alerts=alerts,
        **kw,  # type: ignore[arg-type]
    )


def test_apply_reports_joined_refired_resolved_and_unchanged() -> None:
    group, first = AlertGroup.start(
        note(alert("a"), alert("b")), generation=1, incident_id=7, at=T0
    )
    assert [a.fingerprint for a in first.joined] == ["a", "b"]
    assert group.firing and group.alerts["a"] == AlertRecord(FIRING, "DiskFull", "")

    later = T0 + timedelta(minutes=5)
    changes = group.apply(note(alert("a"), alert("b", RESOLVED), alert("c")), at=later)
    assert [a.fingerprint for a in changes.joined] == ["c"]
    assert [a.fingerprint for a in changes.resolved] == ["b"]
    assert changes.unchanged == 1 and changes
    assert group.updated_at == later

    changes = group.apply(note(alert("b"), alert("a", RESOLVED), alert("c", RESOLVED)), at=later)
    assert [a.fingerprint for a in changes.refired] == ["b"]
    assert [a.fingerprint for a in changes.resolved] == ["a", "c"]
    assert group.firing

    changes = group.apply(note(alert("b", RESOLVED)), at=later)
    assert not group.firing and [a.fingerprint for a in changes.resolved] == ["b"]

    repeat = group.apply(note(alert("b", RESOLVED)), at=later)
    assert not repeat and repeat.unchanged == 1


def test_a_group_fires_while_the_sender_says_so_even_with_alerts_left_out() -> None:
    group, _ = AlertGroup.start(note(alert("a")), generation=1, incident_id=1, at=T0)
    group.apply(note(alert("a", RESOLVED), status=FIRING, truncated=3), at=T0)
    assert group.firing


def test_records_round_trip_through_json() -> None:
    record = AlertRecord(RESOLVED, "DiskFull", "2026-01-01T00:00:00.123456789Z")
    assert AlertRecord.from_json(record.to_json()) == record


def test_title_names_the_alert_the_service_and_the_summary() -> None:
    one = note(
        alert("a", service="checkout"),
        common_labels={"alertname": "DiskFull", "service": "checkout"},
        common_annotations={"summary": "  disk   full\non checkout  "},
    )
    assert one.title({"service": "checkout"}) == "DiskFull on checkout: disk full on checkout"
    # one alert without common annotations: its own summary
    assert note(alert("a")).title({}) == "DiskFull: disk a full"
    mixed = note(alert("a"), Alert(fingerprint="b", state=FIRING, labels={"alertname": "CpuHigh"}))
    assert mixed.title({}) == "CpuHigh and 1 more alerts"
    nameless = note(Alert(fingerprint="x", state=FIRING, labels={"alertname": "   "}))
    assert nameless.title({}) == "alert"


def test_title_is_clipped_to_what_an_incident_accepts() -> None:
    long = note(alert("a"), common_annotations={"summary": "x" * 500})
    title = long.title({})
    assert len(title) == TITLE.max_length and title.endswith("…")


def test_routing_uses_firing_alerts_and_common_labels() -> None:
    routing = AlertRouting.default_rules()
    group = note(
        alert("a", RESOLVED, severity="critical"),
        alert("b", severity="warning"),
        common_labels={"service": "checkout"},
    )
    route, labels = group.route(routing)
    assert route.name == "warning"  # the resolved critical alert no longer counts
    assert labels["service"] == "checkout"
    resolved = note(alert("a", RESOLVED, severity="critical"))
    assert resolved.route(routing)[0].name == "critical"


def test_identities() -> None:
    assert label_fingerprint({"b": "2", "a": "1"}) == label_fingerprint({"a": "1", "b": "2"})
    assert label_fingerprint({"a": "1"}) != label_fingerprint({"a": "2"})
    assert len(label_fingerprint({})) == 16
    assert fallback_group_key(["b", "a", "b"]) == "fingerprints:a,b"
    assert note(alert("a")).key_hash == group_key_hash("{}:{}")
    assert len(group_key_hash("x" * 10_000)) == 64


def test_listing_counts_what_it_leaves_out() -> None:
    alerts = [alert(f"h{i}", instance=f"h{i}:9100") for i in range(12)]
    text = listing(alerts)
    assert text.startswith("DiskFull (instance=h0:9100): disk h0 full; ")
    assert text.endswith("; and 2 more")
    assert "h9:9100" in text and "h10:9100" not in text
