"""The README's two commands are the ones CI and people actually run."""

from __future__ import annotations

from incident.config import PROJECT_ROOT


def test_ci_runs_the_readme_test_command() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command.replace(" -q", "") in readme.replace(" -q", "")
