"""`playbooks/support/verification.yaml`: the decision table of account-ownership
verification, the proof rules and the clocks (`incident.domain.verification_policy`).

Optional in a support directory: a directory made before verification existed has none, and
then the shipped file stands in (the table is policy, not something to guess defaults for
in code). Every problem is reported with the file and the field; a table that leaves an
account state without a rule is refused, naming the state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import yaml

from incident.config import PROJECT_ROOT
from incident.domain.case_ladder import Span
from incident.domain.errors import InvalidValue, PlaybookProblem
from incident.domain.playbook import parse_duration
from incident.domain.verification_policy import (
    Change,
    DecisionRule,
    Feature,
    FeatureState,
    Need,
    NeedKind,
    ProofRules,
    SelfServeFlow,
    VerificationClocks,
    VerificationPolicy,
    missing_cells,
)

VERIFICATION_FILE = "verification.yaml"
SHIPPED = PROJECT_ROOT / "playbooks" / "support" / VERIFICATION_FILE
_KEYS = {"rules", "proof", "high_value_eur", "withdrawal_hold", "clocks", "channel"}
_RULE_KEYS = {"id", "why", "logged_in", *(f.value for f in Feature), *(k.value for k in NeedKind)}
_PROOF_KEYS = {"content_types", "max_file_size", "min_proofs", "min_transactions", "retention"}
_CLOCK_KEYS = {"reminders", "final_notice_after", "close_after"}
_SIZE = re.compile(r"^(\d+)\s*(B|KB|MB)$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024 * 1024}
E = TypeVar("E", SelfServeFlow, Change)


def load_verification(
    directory: Path, problems: list[PlaybookProblem], *, shipped: Path = SHIPPED
) -> VerificationPolicy:
    """The policy in `directory`/verification.yaml (the shipped file's when there is none);
    each problem found is added to `problems`, and a policy with no rules is returned."""
    path = directory / VERIFICATION_FILE
    if not path.is_file():
        path = shipped
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return _policy(document)
    except OSError as error:
        problems.append(PlaybookProblem(str(path), f"cannot be read: {error.strerror}"))
    except yaml.YAMLError as error:
        problems.append(PlaybookProblem(str(path), f"not valid YAML: {error}"))
    except InvalidValue as error:
        problems.append(PlaybookProblem(str(path), error.message, field=error.field))
    return VerificationPolicy(rules=())


def _policy(document: Any) -> VerificationPolicy:
    if not isinstance(document, Mapping):
        raise InvalidValue("verification", "give a mapping: rules, proof, clocks ...")
    _known(document, _KEYS, "")
    rules = document.get("rules")
    if not isinstance(rules, list) or not rules:
        raise InvalidValue("rules", "give the decision table: a list of rules")
    table = tuple(_rule(spec, index) for index, spec in enumerate(rules))
    ids = [rule.id for rule in table]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InvalidValue("rules", f"ids used twice: {', '.join(twice)}")
    missing = missing_cells(table)
    if missing:
        raise InvalidValue(
            "rules",
            f"{len(missing)} account states have no rule, e.g. {missing[0].words()}; "
            "add a rule for them (or a last rule with no conditions)",
        )
    return VerificationPolicy(
        rules=table,
        proof=_proof(document.get("proof", {})),
        clocks=_clocks(document.get("clocks", {})),
        high_value_eur=_amount(document.get("high_value_eur", 10000), "high_value_eur"),
        withdrawal_hold=_duration(document.get("withdrawal_hold", "72h"), "withdrawal_hold"),
        channel=_channel(document.get("channel")),
    )


def _channel(value: Any) -> str | None:
    """The management channel whose one message follows each verification (`chat:#...`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("chat:#") or len(value) < 7:
        raise InvalidValue("channel", "give the management channel like chat:#account-recovery")
    return value


def _known(spec: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(map(str, spec)) - keys)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InvalidValue(field, f"unknown key; the keys are {', '.join(sorted(keys))}")


def _rule(spec: Any, index: int) -> DecisionRule:
    where = f"rules[{index}]"
    if not isinstance(spec, Mapping):
        raise InvalidValue(where, "each rule is a mapping: id, why, conditions and an outcome")
    rule_id = spec.get("id")
    where = f"rules[{rule_id}]" if isinstance(rule_id, str) and rule_id.strip() else where
    _known(spec, _RULE_KEYS, where)
    why = spec.get("why")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise InvalidValue(f"{where}.id", "give the rule an id")
    if not isinstance(why, str) or not why.strip():
        raise InvalidValue(f"{where}.why", "say why the rule decides as it does")
    conditions = tuple(
        (feature, _states(spec[feature.value], f"{where}.{feature.value}"))
        for feature in Feature
        if feature.value in spec and spec[feature.value] != "any"
    )
    return DecisionRule(
        id=rule_id.strip(),
        need=_need(spec, rule_id.strip(), why.strip(), where),
        logged_in=_logged_in(spec.get("logged_in", "any"), f"{where}.logged_in"),
        conditions=conditions,
    )


def _logged_in(value: Any, where: str) -> bool | None:
    # YAML 1.1 reads yes and no as booleans.
    if value is True or value is False or value in ("yes", "no"):
        return value in (True, "yes")
    if value == "any":
        return None
    raise InvalidValue(where, f"{value!r}: give yes, no or any")


def _states(value: Any, where: str) -> frozenset[FeatureState]:
    items = value if isinstance(value, list) else [value]
    states: set[FeatureState] = set()
    for item in items:
        try:
            states.add(FeatureState(str(item)))
        except ValueError:
            names = ", ".join(s.value for s in FeatureState)
            raise InvalidValue(where, f"{item!r}: give any, or one or a list of {names}") from None
    if not states:
        raise InvalidValue(where, "an empty list matches nothing; give any, or the states")
    return frozenset(states)


def _need(spec: Mapping[str, Any], rule_id: str, why: str, where: str) -> Need:
    outcomes = [kind for kind in NeedKind if kind.value in spec]
    if len(outcomes) != 1:
        raise InvalidValue(where, "give exactly one outcome: self_serve, verify or nothing_to_do")
    kind = outcomes[0]
    body = spec[kind.value] or {}
    field = f"{where}.{kind.value}"
    if not isinstance(body, Mapping):
        raise InvalidValue(field, "give a mapping, e.g. {flow: settings, template: ...}")
    if kind is NeedKind.NOTHING_TO_DO:
        _known(body, set(), field)
        return Need(kind, rule_id, why)
    template = body.get("template")
    if not isinstance(template, str) or not template.strip():
        raise InvalidValue(f"{field}.template", "name the message to the customer")
    if kind is NeedKind.SELF_SERVE:
        _known(body, {"flow", "template"}, field)
        flow = _enum(SelfServeFlow, body.get("flow"), f"{field}.flow")
        return Need(kind, rule_id, why, flow=flow, template=template.strip())
    _known(body, {"changes", "template"}, field)
    changes = body.get("changes")
    if not isinstance(changes, list) or not changes:
        raise InvalidValue(f"{field}.changes", "give the changes to verify, e.g. [clear_2fa]")
    verified = frozenset(_enum(Change, c, f"{field}.changes") for c in changes)
    return Need(kind, rule_id, why, changes=verified, template=template.strip())


def _enum(kind: type[E], value: Any, where: str) -> E:
    try:
        return kind(str(value))
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise InvalidValue(where, f"{value!r}: give one of {names}") from None


def _proof(spec: Any) -> ProofRules:
    if not isinstance(spec, Mapping):
        raise InvalidValue("proof", "give content_types, max_file_size, min_proofs ...")
    _known(spec, _PROOF_KEYS, "proof")
    defaults = ProofRules()
    types = spec.get("content_types", sorted(defaults.content_types))
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise InvalidValue("proof.content_types", "give a list, e.g. [image/png, application/pdf]")
    min_proofs = _count(spec.get("min_proofs", defaults.min_proofs), "proof.min_proofs")
    min_tx = _count(
        spec.get("min_transactions", defaults.min_transactions), "proof.min_transactions"
    )
    if min_proofs < 1 or min_tx > min_proofs:
        raise InvalidValue("proof.min_proofs", "at least 1, and no fewer than min_transactions")
    return ProofRules(
        content_types=frozenset(t.strip().lower() for t in types),
        max_file_bytes=_size(spec.get("max_file_size", "5 MB")),
        min_proofs=min_proofs,
        min_transactions=min_tx,
        retention=_duration(spec.get("retention", "30d"), "proof.retention"),
    )


def _size(value: Any) -> int:
    match = _SIZE.match(str(value).strip())
    if match is None or int(match[1]) == 0:
        raise InvalidValue("proof.max_file_size", f"{value!r}: write it like 5 MB or 500 KB")
    return int(match[1]) * _UNITS[match[2].lower()]


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValue(where, f"{value!r}: give a whole number, 0 or more")
    return value


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise InvalidValue(where, f"{value!r}: give an amount in EUR, like 10000")
    return amount


def _duration(value: Any, where: str) -> timedelta:
    try:
        return parse_duration(str(value))
    except ValueError:
        raise InvalidValue(where, f"{value!r}: write a real-time span like 72h or 30d") from None


def _span(value: Any, where: str) -> Span:
    # Imported here: support_files will read this module, and a module-level import both
    # ways would be circular.
    from incident.adapters.files.support_files import parse_span

    return parse_span(value, where)


def _clocks(spec: Any) -> VerificationClocks:
    if not isinstance(spec, Mapping):
        raise InvalidValue("clocks", "give reminders, final_notice_after and close_after")
    _known(spec, _CLOCK_KEYS, "clocks")
    defaults = VerificationClocks()
    reminders = spec.get("reminders")
    if reminders is not None and not isinstance(reminders, list):
        raise InvalidValue("clocks.reminders", "give a list of spans, e.g. [48h, 5d]")
    clocks = VerificationClocks(
        reminders=defaults.reminders
        if reminders is None
        else tuple(_span(r, f"clocks.reminders[{i}]") for i, r in enumerate(reminders)),
        final_notice_after=_span(spec["final_notice_after"], "clocks.final_notice_after")
        if "final_notice_after" in spec
        else defaults.final_notice_after,
        close_after=_span(spec["close_after"], "clocks.close_after")
        if "close_after" in spec
        else defaults.close_after,
    )
    _check_order(clocks)
    return clocks


def _check_order(clocks: VerificationClocks) -> None:
    """Reminders, then the final notice, then the close. Only spans of one kind compare:
    business time depends on the calendar."""
    spans = [*clocks.reminders, clocks.final_notice_after, clocks.close_after]
    if any(span.business for span in spans):
        return
    lengths = [span.length + timedelta(days=span.business_days) for span in spans]
    if any(later <= earlier for earlier, later in pairwise(lengths)):
        raise InvalidValue(
            "clocks",
            "reminders in order, then final_notice_after, then close_after, each later",
        )


# What the verification steps send, besides the table's own templates (comms/verification/).
STEP_TEMPLATES = (
    "board",
    "verification_reminder",
    "verification_final_notice",
    "verification_approved",
    "verification_refused",
    "verification_closed_unverified",
)


def verification_templates(policy: VerificationPolicy) -> list[str]:
    """Every template a verification may send, as paths under comms/."""
    named = {rule.need.template for rule in policy.rules if rule.need.template}
    return [f"verification/{name}.txt.j2" for name in sorted(named | set(STEP_TEMPLATES))]
