"""The README's two commands are the ones CI and people actually run, through tasks.py."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib

from incident.config import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
TASKS = PROJECT_ROOT / "tasks.py"


def run_tasks(*args: str) -> subprocess.CompletedProcess[str]:
    # -S: without site-packages, as on a fresh machine before anything is installed; -I:
    # nothing from the environment or the current directory.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(TASKS), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def listed_tasks() -> set[str]:
    result = run_tasks()
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"^  (\S+)  ", result.stdout, flags=re.MULTILINE))


def test_ci_runs_the_readme_test_command() -> None:
    readme = README.read_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.startswith("python3 tasks.py")]
    assert commands == ["python3 tasks.py test"]
    assert f"```sh\n{commands[0]}\n```" in readme


def test_the_readme_commands_name_tasks_that_exist_with_the_standard_library_alone() -> None:
    readme = README.read_text()
    tasks = listed_tasks()
    assert {"setup", "serve", "test", "lint", "typecheck", "bench"} <= tasks
    assert "```sh\npython3 tasks.py serve\n```" in readme
    mentioned = set(re.findall(r"python3 tasks\.py ([a-z-]+)", readme))
    assert {"serve", "test"} <= mentioned <= tasks
    # The Tasks paragraph names every task, each as the head of a list item.
    paragraph = readme.split("\n### Tasks\n", 1)[1].split("\n## ", 1)[0]
    heads = set(re.findall(r"^- `([a-z-]+)", paragraph, flags=re.MULTILINE))
    assert heads | {"format"} == tasks  # format shares lint's item


def test_an_unknown_task_is_refused_with_the_list() -> None:
    result = run_tasks("tset")
    assert result.returncode == 2
    assert "no task 'tset'" in result.stderr and "  test  " in result.stderr


def test_bench_lists_every_benchmark_without_installing_anything() -> None:
    result = run_tasks("bench")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines()[:-2] if line}
    assert listed == {path.stem for path in (PROJECT_ROOT / "bench").glob("*.py")}
    unknown = run_tasks("bench", "nope")
    assert unknown.returncode == 2 and "no benchmark 'nope'" in unknown.stderr


def test_the_readme_states_the_per_test_time_limit_pyproject_sets() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    assert pytest_options["xfail_strict"] is True
    assert "--strict-config" in pytest_options["addopts"].split()
    assert f"time limit ({pytest_options['timeout']} s unless" in README.read_text()


# A class longer than this holds more than one concept: split it by concern.
LONGEST_CLASS = 300


def test_no_class_in_the_service_is_longer_than_the_limit() -> None:
    too_long = []
    for path in sorted((PROJECT_ROOT / "incident").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_CLASS:
                    too_long.append(f"{path.relative_to(PROJECT_ROOT)}: {node.name} ({lines})")
    assert too_long == []


def test_the_engine_knows_nothing_of_incidents() -> None:
    """The scheduler package serves every kind of subject: no incident-specific import."""
    for path in sorted((PROJECT_ROOT / "incident" / "scheduler").glob("*.py")):
        text = path.read_text()
        for banned in ("incident.domain.incident", "incident.services.incidents", "Incident"):
            assert banned not in text, f"{path.name} mentions {banned}"
