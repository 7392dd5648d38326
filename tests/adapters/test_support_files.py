"""Where the support playbook is found: a set of playbooks from before support cases (no
`support/`) gets the shipped one, so an upgrade keeps the service starting; one with its
own `support/` uses it, broken or not (a broken one is refused, never replaced)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from incident.adapters.files.support_files import SUPPORT_DIR, load_support, support_directory
from incident.config import PROJECT_ROOT
from incident.domain.errors import InvalidPlaybook

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
