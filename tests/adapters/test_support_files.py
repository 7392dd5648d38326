"""Where the support playbook is found: a set of playbooks from before support cases (no
`support/`) gets the shipped one, so an upgrade keeps the service starting; one with its
own `support/` uses it, broken or not (a broken one is refused, never replaced)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from incident.adapters.files.support_files import SUPPORT_DIR, load_support, support_directory
from incident.config import PROJECT_ROOT
from incident.domain.case import CaseStatus, Plan
from incident.domain.errors import InvalidPlaybook
from incident.domain.patterns import PatternRules

SHIPPED = PROJECT_ROOT / "playbooks"


def test_playbooks_without_support_get_the_shipped_one(tmp_path: Path) -> None:
    assert support_directory(tmp_path, shipped=SHIPPED) == (SHIPPED / SUPPORT_DIR, True)


def test_playbooks_with_their_own_support_use_it_even_broken(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED / SUPPORT_DIR, tmp_path / SUPPORT_DIR)
    (tmp_path / SUPPORT_DIR / "clocks.yaml").write_text("steps: [{id: x}]\n", encoding="utf-8")
    directory, shipped = support_directory(tmp_path, shipped=SHIPPED)
    assert (directory, shipped) == (tmp_path / SUPPORT_DIR, False)
    with pytest.raises(InvalidPlaybook, match=r"clocks\.yaml"):
        load_support(directory)


def _support_with(tmp_path: Path, name: str, text: str | None) -> Path:
    """A copy of the shipped support playbook with `name` written as `text` (None: removed)."""
    shutil.copytree(SHIPPED / SUPPORT_DIR, tmp_path / SUPPORT_DIR)
    path = tmp_path / SUPPORT_DIR / name
    if text is None:
        path.unlink()
    else:
        path.write_text(text, encoding="utf-8")
    return tmp_path / SUPPORT_DIR


def test_the_shipped_patterns_and_link_rules_are_read() -> None:
    playbook = load_support(SHIPPED / SUPPORT_DIR)
    rules = playbook.patterns
    assert (rules.threshold, rules.trigger_customers, rules.trigger_window) == (
        25.0,
        5.0,
        timedelta(hours=6),
    )
    assert rules.plan_weights[Plan.ENTERPRISE] == 5.0 and rules.quiet_for == timedelta(days=7)
    assert rules.channel == ("chat:#support-patterns",)
    assert playbook.on_incident_resolved is CaseStatus.PENDING


def test_without_patterns_yaml_the_defaults_apply_and_nothing_is_posted(tmp_path: Path) -> None:
    playbook = load_support(_support_with(tmp_path, "patterns.yaml", None))
    assert playbook.patterns == PatternRules() and playbook.patterns.channel == ()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("threshold: 140\n", "field 'threshold': 140.0: a similarity from 1 to 100"),
        ("trigger: {customers: -1}\n", "field 'customers': -1: give a number, 0 or more"),
        ("trigger: {weights: {platinum: 9}}\n", "'platinum' is not a plan"),
        ("join_window: soon\n", "field 'join_window': 'soon' is not a duration"),
        ("chanel: chat:#x\n", "field 'chanel': unknown setting"),
        ("channel: support-patterns\n", "field 'channel': give destinations like chat:#"),
    ],
)
def test_a_bad_patterns_yaml_is_refused_saying_where(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(InvalidPlaybook) as refused:
        load_support(_support_with(tmp_path, "patterns.yaml", text))
    assert "patterns.yaml" in str(refused.value) and said in str(refused.value)


def test_a_bad_on_incident_resolved_is_refused(tmp_path: Path) -> None:
    clocks = (SHIPPED / SUPPORT_DIR / "clocks.yaml").read_text(encoding="utf-8")
    text = clocks.replace("on_incident_resolved: pending", "on_incident_resolved: closed")
    with pytest.raises(InvalidPlaybook, match="'closed': give resolved"):
        load_support(_support_with(tmp_path, "clocks.yaml", text))
