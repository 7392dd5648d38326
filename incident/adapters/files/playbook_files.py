"""Reads the playbooks directory and checks it against comms/ and runbooks/.

Every problem is reported (not only the first), each naming file, line, step and field.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from incident.domain.audiences import Directory, parse_directory
from incident.domain.errors import InvalidPlaybook, PlaybookProblem
from incident.domain.incident import Severity
from incident.domain.playbook import Action, Playbook, PlaybookSet, parse_playbook

AUDIENCES_FILE = "audiences.yaml"
# libyaml's loader when PyYAML was built with it (the wheels are): about 10x faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_playbooks(
    directory: Path, *, comms_dir: Path | None = None, runbooks_dir: Path | None = None
) -> PlaybookSet:
    """Load and check every playbook; raise InvalidPlaybook listing every problem found."""
    if not directory.is_dir():
        raise InvalidPlaybook(
            [
                PlaybookProblem(
                    str(directory),
                    "no such directory; point INCIDENT_PLAYBOOKS_DIR at the playbooks",
                )
            ]
        )
    problems: list[PlaybookProblem] = []
    directory_file = directory / AUDIENCES_FILE
    audiences = Directory()
    if directory_file.is_file():
        try:
            audiences = parse_directory(_read(directory_file), source=str(directory_file))
        except InvalidPlaybook as error:
            problems += error.problems
    else:
        problems.append(
            PlaybookProblem(
                str(directory_file),
                "missing: it names the audiences and on-call tiers that steps may target",
            )
        )
    playbooks: dict[Severity, Playbook] = {}
    unreadable = False  # a file that failed may be the missing severity: don't say it twice
    for path in sorted(directory.glob("*.y*ml")):
        if path.name == AUDIENCES_FILE:
            continue
        try:
            document = _read(path)
            playbook = parse_playbook(document, source=str(path))
        except InvalidPlaybook as error:
            lines = _step_lines(path)
            problems += [replace(p, line=p.line or lines.get(p.step or "")) for p in error.problems]
            unreadable = True
            continue
        if playbook.severity in playbooks:
            problems.append(
                PlaybookProblem(
                    str(path),
                    f"a second playbook for {playbook.severity.value} "
                    f"(the first is {playbooks[playbook.severity].source})",
                    field="severity",
                )
            )
            continue
        playbooks[playbook.severity] = playbook
        problems += _cross_check(playbook, audiences, comms_dir, runbooks_dir, _step_lines(path))
    for severity in Severity:
        if severity not in playbooks and not unreadable:
            problems.append(
                PlaybookProblem(
                    str(directory), f"no playbook for {severity.value}; every severity needs one"
                )
            )
    if problems:
        raise InvalidPlaybook(problems)
    return PlaybookSet(playbooks=playbooks, directory=audiences)


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidPlaybook(
            [PlaybookProblem(str(path), f"not valid YAML: {error}", line=line)]
        ) from None
    except OSError as error:
        raise InvalidPlaybook([PlaybookProblem(str(path), f"cannot read: {error}")]) from None


def _step_lines(path: Path) -> dict[str, int]:
    """The line of each step's `id`, for messages that point into the file."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (yaml.YAMLError, OSError):
        return {}
    lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "steps" and isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                lines[f"#{index + 1}"] = item.start_mark.line + 1
                if isinstance(item, yaml.MappingNode):
                    for step_key, step_value in item.value:
                        if step_key.value == "id":
                            lines[str(step_value.value)] = item.start_mark.line + 1
    return lines


def _cross_check(
    playbook: Playbook,
    audiences: Directory,
    comms_dir: Path | None,
    runbooks_dir: Path | None,
    lines: dict[str, int],
) -> list[PlaybookProblem]:
    problems = []
    for step in playbook.steps:
        source_id = step.id.split(".")[0]

        def problem(message: str, field: str, step_id: str = source_id) -> PlaybookProblem:
            return PlaybookProblem(
                playbook.source, message, step=step_id, field=field, line=lines.get(step_id)
            )

        if step.action is Action.PAGE:
            if step.target not in audiences.oncall:
                problems.append(
                    problem(
                        f"on-call tier {step.target!r} is not in {AUDIENCES_FILE} "
                        f"(known: {', '.join(sorted(audiences.oncall)) or 'none'})",
                        "target",
                    )
                )
        elif step.target is not None and step.target not in audiences.audiences:
            problems.append(
                problem(
                    f"audience {step.target!r} is not in {AUDIENCES_FILE} "
                    f"(known: {', '.join(sorted(audiences.audiences)) or 'none'})",
                    "target",
                )
            )
        if comms_dir is not None and step.template is not None:
            if not (comms_dir / f"{step.template}.txt.j2").is_file():
                problems.append(
                    problem(
                        f"template {step.template!r} not found: expected "
                        f"{comms_dir / (step.template + '.txt.j2')}",
                        "template",
                    )
                )
        if runbooks_dir is not None and step.runbook is not None:
            if not (runbooks_dir / step.runbook).is_file():
                problems.append(
                    problem(f"runbook {step.runbook!r} not found in {runbooks_dir}", "runbook")
                )
    # A deadline's expanded steps repeat the same problem; report each once.
    unique: dict[str, PlaybookProblem] = {str(p): p for p in problems}
    return list(unique.values())
