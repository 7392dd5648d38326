"""`incident case open | list | show | update | note | escalate | confirm | deescalate |
approve | resolve | link | unlink`: support cases through a running service's REST API
(/api/v1/cases; `list --incident` reads /api/v1/incidents/{id}/cases).

Run by `api_commands` like every API command (--url, --token, --json; output for people by
default, in case_output.py). A refusal that names fields (a context missing or malformed,
a body the server cannot take) is printed one field a line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from incident.cli import case_output as out
from incident.cli.case_client import CaseClient
from incident.cli.client import ApiClient, ClientError
from incident.domain.case_routing import Urgency

Outcome = tuple[Any, Callable[[Any], str]]  # the API's response, and how people read it

# The facts `open` and `update` send when given (their dest is the API's field name).
_FACTS = (
    "priority",
    "customer_email",
    "contacts",
    "disputed_amount",
    "csr",
    "usdt_amount",
    "flags",
    "crypto",
    "checklist",
    "category",
    "component",
)
CONTEXT_REFUSED = "context missing or malformed"


def run(api: ApiClient, args: argparse.Namespace) -> Outcome:
    try:
        return _RUN[args.case_command](CaseClient(api), args)
    except ClientError as error:
        problems = out.problems(error.detail)
        if not problems:
            raise
        lines = [f"{error.request} refused ({error.status}) {error.error}:", *problems]
        if error.error == CONTEXT_REFUSED and args.case_command == "escalate":
            lines.append(out.gate_hint(args.id))
        raise ClientError("\n".join(lines)) from None


def _facts(args: argparse.Namespace) -> dict[str, Any]:
    body = {name: getattr(args, name) for name in _FACTS if getattr(args, name) is not None}
    if args.context_file is not None:
        body["context"] = args.context_file
    elif args.context is not None:
        body["context"] = _context(args.context)
    return body


def _context(pairs: list[tuple[str, object]]) -> dict[str, object]:
    context: dict[str, object] = {}
    for key, value in pairs:
        if key in context:
            raise ClientError(f"--context {key} is given twice; give each key once")
        context[key] = value
    return context


def _open(client: CaseClient, args: argparse.Namespace) -> Outcome:
    body = {
        "reference": args.reference,
        "customer_id": args.customer_id,
        "summary": args.summary,
        "plan": args.plan,
        **_facts(args),
    }
    return client.open(body), _said("opened")


def _list(client: CaseClient, args: argparse.Namespace) -> Outcome:
    if args.incident is not None:
        if args.status or args.level:
            raise ClientError(
                "--incident lists every case linked to the incident, whatever its status or "
                "level: leave out --status and --level"
            )
        return client.linked_to(args.incident), out.linked
    return client.list(statuses=args.status, levels=args.level), out.listing


def _show(client: CaseClient, args: argparse.Namespace) -> Outcome:
    return client.show(args.id), out.show


def _update(client: CaseClient, args: argparse.Namespace) -> Outcome:
    body = _facts(args)
    for name in ("summary", "plan"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.expected_resolution is not None:
        body["expected_resolution_at"] = args.expected_resolution.isoformat()
    return client.update(args.id, body), _said("updated")


def _note(client: CaseClient, args: argparse.Namespace) -> Outcome:
    result = client.progress(args.id, note=args.text, to_customer=args.to_customer)
    return result, _said("answer to the customer recorded" if args.to_customer else "note added")


def _escalate(client: CaseClient, args: argparse.Namespace) -> Outcome:
    result = client.escalate(
        args.id,
        to=args.level,
        reason=args.reason,
        urgency=Urgency.CANNOT_WAIT.value if args.cannot_wait is not None else None,
        urgency_note=args.cannot_wait,
        override=args.override,
    )
    return result, _said("escalated")


def _confirm(client: CaseClient, args: argparse.Namespace) -> Outcome:
    return client.confirm(args.id), _said("receipt confirmed")


def _deescalate(client: CaseClient, args: argparse.Namespace) -> Outcome:
    result = client.deescalate(args.id, to=args.level, why=args.why, note=args.note)
    return result, _said(f"de-escalated ({args.why.replace('_', ' ')})")


def _approve(client: CaseClient, args: argparse.Namespace) -> Outcome:
    result = client.decide(args.id, level=args.level, approved=not args.decline, note=args.note)
    verb = "declined" if args.decline else "approved"
    return result, _said(f"{verb} as the {args.level.upper()}")


def _resolve(client: CaseClient, args: argparse.Namespace) -> Outcome:
    return client.resolve(args.id, resolution=args.resolution), _said("resolved")


def _link(client: CaseClient, args: argparse.Namespace) -> Outcome:
    result = client.link(args.id, incident_id=args.incident)
    return result, _said(f"linked to INC-{args.incident}")


def _unlink(client: CaseClient, args: argparse.Namespace) -> Outcome:
    return client.unlink(args.id), _said("unlinked")


def _said(verb: str) -> Callable[[Any], str]:
    return lambda result: out.changed(result, verb)


_RUN: dict[str, Callable[[CaseClient, argparse.Namespace], Outcome]] = {
    "open": _open,
    "list": _list,
    "show": _show,
    "update": _update,
    "note": _note,
    "escalate": _escalate,
    "confirm": _confirm,
    "deescalate": _deescalate,
    "approve": _approve,
    "resolve": _resolve,
    "link": _link,
    "unlink": _unlink,
}
ACTIONS = tuple(_RUN)
