#!/usr/bin/env python3
"""The project's one task runner: people, the README's two commands and `.ci/run` call it.

Standard library only, so that a fresh machine with nothing but Python 3.11 and pip runs
it (no `make` needed). Each task first makes the virtual environment `.venv` and installs
the package (editable) with the extras the task needs; it reinstalls only when
`pyproject.toml` changed or an extra is missing since the last install (`setup` always
installs).

    python3 tasks.py                      the tasks, one line each
    python3 tasks.py serve [ARGS]         `incident serve ARGS` (HTTP on 127.0.0.1:8080)
    python3 tasks.py test [PYTEST ARGS]   lint, format check, types, then the test suite
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for mypy: the file stays runnable by an older Python, to say so
    from collections.abc import Callable

    Task = Callable[[list[str]], int]

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
BENCH = ROOT / "bench"
# What the last install put in .venv: the pyproject.toml it read and the extras it asked
# for, so that a task run again does not spend seconds asking pip to do nothing.
INSTALL_STAMP = VENV / "incident-tasks-install.json"
OLDEST_PYTHON = (3, 11)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run(*command: str | Path, env: dict[str, str] | None = None) -> int:
    """Run one command in the project's directory, showing it first, as `make` does."""
    words = [str(word) for word in command]
    shown = [os.path.relpath(words[0], ROOT) if Path(words[0]).is_absolute() else words[0]]
    _say("$ " + " ".join([*shown, *words[1:]]))
    return subprocess.run(words, cwd=ROOT, env=env, check=False).returncode


def _run_all(*commands: Sequence[str | Path]) -> int:
    """Run commands in order and stop at the first that fails, as `&&` does."""
    for command in commands:
        code = _run(*command)
        if code != 0:
            return code
    return 0


def _pyproject_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def _installed_extras() -> set[str] | None:
    """The extras the last install left in .venv, or None if pyproject.toml changed since
    (or nothing was installed through this file)."""
    try:
        stamp = json.loads(INSTALL_STAMP.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("pyproject") != _pyproject_digest():
        return None
    return set(stamp.get("extras", []))


def _install(extras: set[str], *, always: bool = False) -> int:
    """Make .venv if missing, then `pip install -e .[extras]` unless that is already done."""
    if not (BIN / "python").exists():
        _say(f"$ {Path(sys.executable).name} -m venv .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    installed = _installed_extras()
    if not always and installed is not None and extras <= installed:
        return 0
    # Keep what an earlier install brought: a `serve` after a `test` must not drop the
    # test tools, only a changed pyproject.toml starts the set afresh.
    wanted = extras | (installed or set())
    target = f".[{','.join(sorted(wanted))}]" if wanted else "."
    code = _run(BIN / "pip", "install", "-q", "-e", target)
    if code == 0:
        stamp = {"pyproject": _pyproject_digest(), "extras": sorted(wanted)}
        INSTALL_STAMP.write_text(json.dumps(stamp) + "\n")
    return code


def setup(args: list[str]) -> int:
    """Make .venv; install the package, its test and bench tools (always reinstalls)."""
    return _install({"test", "bench"}, always=True)


def serve(args: list[str]) -> int:
    """Install the package, then become `incident serve ARGS` (127.0.0.1:8080)."""
    code = _install(set())
    if code != 0:
        return code
    command = [str(BIN / "incident"), "serve", *args]
    _say("$ .venv/bin/incident " + " ".join(command[1:]))
    # exec, not a child: Ctrl-C and a supervisor's SIGTERM reach the server itself.
    os.chdir(ROOT)
    os.execv(command[0], command)


def lint(args: list[str]) -> int:
    """ruff's lint rules and its format check, over the whole repository."""
    return _install({"test"}) or _run_all(
        (BIN / "ruff", "check", "."), (BIN / "ruff", "format", "--check", ".")
    )


def format_code(args: list[str]) -> int:
    """Format the code and apply ruff's safe fixes (rewrites files)."""
    return _install({"test"}) or _run_all(
        (BIN / "ruff", "format", "."), (BIN / "ruff", "check", "--fix", ".")
    )


def typecheck(args: list[str]) -> int:
    """mypy over incident/ (strict), tests/, bench/ and this file (see pyproject.toml)."""
    return _install({"test"}) or _run(BIN / "mypy", *args)


def pytest(args: list[str]) -> int:
    """The test suite alone; ARGS go to pytest (`tasks.py pytest tests/unit -x`)."""
    return _install({"test"}) or _run(BIN / "pytest", *args)


def test(args: list[str]) -> int:
    """What CI checks: lint, format check, types, the whole suite (ARGS to pytest)."""
    return lint([]) or typecheck([]) or pytest(args)


def bench(args: list[str]) -> int:
    """Lists the benchmarks; `bench NAME [ARGS]` runs bench/NAME.py (bench/README.md)."""
    scripts = {path.stem: path for path in sorted(BENCH.glob("*.py"))}
    if not args or args[0] in ("-h", "--help"):
        width = max(map(len, scripts))
        for name, path in scripts.items():
            summary = (ast.get_docstring(ast.parse(path.read_text())) or "").split("\n\n")[0]
            print(f"{name:<{width}}  {' '.join(summary.split())}")
        print("\nRun one: python3 tasks.py bench NAME [--help | ARGS]; results: bench/README.md")
        return 0
    name, *rest = args
    if name.endswith(".py"):
        name = Path(name).stem
    if name not in scripts:
        _say(f"no benchmark {name!r}; there are: {', '.join(scripts)}")
        return 2
    return _install({"bench"}) or _run(BIN / "python", scripts[name], *rest)


def fresh_check(args: list[str]) -> int:
    """`test ARGS` in a fresh clone of HEAD, as CI runs it (`--keep`: keep the clone).

    The clone is made in a temporary directory from what is committed: uncommitted changes
    are not in it, and the clone makes its own .venv, as a new machine would."""
    keep = "--keep" in args
    rest = [arg for arg in args if arg != "--keep"]
    clone = Path(tempfile.mkdtemp(prefix="incident-fresh-"))
    try:
        code = _run("git", "clone", "-q", ROOT, clone)
        if code == 0:
            code = _run(sys.executable, clone / "tasks.py", "test", *rest)
    finally:
        if keep:
            _say(f"the clone is kept in {clone}")
        else:
            shutil.rmtree(clone, ignore_errors=True)
    return code


TASKS: dict[str, Task] = {
    "setup": setup,
    "serve": serve,
    "test": test,
    "lint": lint,
    "format": format_code,
    "typecheck": typecheck,
    "pytest": pytest,
    "bench": bench,
    "fresh-check": fresh_check,
}


def _usage() -> str:
    width = max(map(len, TASKS))
    lines = [f"usage: python3 {Path(__file__).name} TASK [ARGS]", "", "tasks:"]
    for name, task in TASKS.items():
        summary = " ".join((task.__doc__ or "").split("\n\n")[0].split())
        lines.append(f"  {name:<{width}}  {summary}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if sys.version_info < OLDEST_PYTHON:
        wanted = ".".join(map(str, OLDEST_PYTHON))
        _say(f"incident needs Python {wanted} or newer; this is {sys.version.split()[0]}")
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, *args = argv
    if name not in TASKS:
        _say(f"no task {name!r}\n\n{_usage()}")
        return 2
    return TASKS[name](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
