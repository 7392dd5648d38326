"""Who may do what with support cases: agents, tier leads, managers, the CIO, the CEO.

Pure. A person's support role is configured by name (`INCIDENT_SUPPORT_ROLES`:
`alice=agent, bob=tier_lead, carol=manager, dana=cio, erik=ceo`). Someone with no support
role acts by their access role: a responder as an agent, a commander as a tier lead, an
admin as a manager; a viewer may only look. The CIO and the CEO are only ever named.

The rules the procedures set: only managers (and the executives) override the context
gate; only the CIO routes a case to the CEO; each approval is given by its named approver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from incident.domain.access import AccessRole, Actor, Principal
from incident.domain.case_routing import Level
from incident.domain.errors import Forbidden, InvalidValue


class SupportRole(StrEnum):
    AGENT = "agent"
    TIER_LEAD = "tier_lead"
    MANAGER = "manager"
    CIO = "cio"
    CEO = "ceo"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {
    SupportRole.AGENT: 1,
    SupportRole.TIER_LEAD: 2,
    SupportRole.MANAGER: 3,
    SupportRole.CIO: 4,
    SupportRole.CEO: 4,
}
_BY_ACCESS = {
    AccessRole.RESPONDER: SupportRole.AGENT,
    AccessRole.COMMANDER: SupportRole.TIER_LEAD,
    AccessRole.ADMIN: SupportRole.MANAGER,
}


class CaseRight(StrEnum):
    VIEW = "view cases"
    WORK = "open, update and work cases (notes, customer updates, receipt, resolution)"
    ESCALATE = "escalate and de-escalate cases"
    OVERRIDE_GATE = "escalate without the full context (overriding the gate)"
    ROUTE_TO_CEO = "route a case to the CEO"
    APPROVE_AS_CIO = "decide as the CIO"
    APPROVE_AS_CEO = "decide as the CEO"


# The least a role needs for each action; None: only the named roles of `_ONLY`.
_NEEDED: dict[CaseRight, SupportRole | None] = {
    CaseRight.VIEW: None,
    CaseRight.WORK: SupportRole.AGENT,
    CaseRight.ESCALATE: SupportRole.AGENT,
    CaseRight.OVERRIDE_GATE: SupportRole.MANAGER,
    CaseRight.ROUTE_TO_CEO: None,
    CaseRight.APPROVE_AS_CIO: None,
    CaseRight.APPROVE_AS_CEO: None,
}
_ONLY: dict[CaseRight, SupportRole] = {
    CaseRight.ROUTE_TO_CEO: SupportRole.CIO,
    CaseRight.APPROVE_AS_CIO: SupportRole.CIO,
    CaseRight.APPROVE_AS_CEO: SupportRole.CEO,
}
APPROVER = {Level.CIO: CaseRight.APPROVE_AS_CIO, Level.CEO: CaseRight.APPROVE_AS_CEO}


@dataclass(frozen=True)
class SupportRoles:
    """People's support roles, by the name they act under."""

    by_name: Mapping[str, SupportRole] = field(default_factory=dict)

    def of(self, principal: Principal) -> SupportRole | None:
        named = self.by_name.get(principal.name)
        if named is not None:
            return named
        return _BY_ACCESS.get(principal.role)

    def may(self, by: Actor, action: CaseRight) -> bool:
        """Whether `by` may take `action` (for showing only the forms a person may use). A
        bare name is the service itself (routing, the clocks, scripts): trusted."""
        if not isinstance(by, Principal) or action is CaseRight.VIEW:
            return True
        return _allowed(self.of(by), action)

    def check(self, by: Actor, action: CaseRight) -> None:
        """Raise Forbidden, saying who may, unless `by` may take `action`."""
        if self.may(by, action):
            return
        assert isinstance(by, Principal)
        role = self.of(by)
        what = role.value if role is not None else f"{by.role.value}, no support role"
        raise Forbidden(f"{by.name} ({what}) may not {action.value}; {_who(action)}")


def _allowed(role: SupportRole | None, action: CaseRight) -> bool:
    if role is None:
        return False
    only = _ONLY.get(action)
    if only is not None:
        return role is only
    needed = _NEEDED[action]
    return needed is None or role.rank >= needed.rank


def _who(action: CaseRight) -> str:
    only = _ONLY.get(action)
    if only is not None:
        return f"only the {only.value.upper()} may"
    needed = _NEEDED[action]
    assert needed is not None
    names = [r.value.replace("_", " ") + "s" for r in SupportRole if r.rank >= needed.rank]
    return f"only {', '.join(names)} may"


def parse_support_roles(text: str, *, where: str = "support_roles") -> SupportRoles:
    """`alice=agent, bob=tier_lead, dana=cio` (a name may hold one role)."""
    roles: dict[str, SupportRole] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, role = part.rpartition("=")
        name = name.strip()
        try:
            parsed = SupportRole(role.strip().lower())
        except ValueError:
            parsed = None
        if not name or parsed is None:
            known = ", ".join(r.value for r in SupportRole)
            raise InvalidValue(where, f"{part!r}: write name=role, the role one of {known}")
        if name in roles:
            raise InvalidValue(where, f"{name!r} is given a role twice")
        roles[name] = parsed
    return SupportRoles(roles)
