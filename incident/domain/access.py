"""Who may do what: access roles and the rule for each kind of change.

Pure. Every caller (API token, Slack user, alert webhook) becomes a `Principal`; a use case
is allowed when the principal's role on that incident is at least the one the action needs.
Being an incident's commander gives commander rights on that incident, whatever the
person's own role: whoever runs the incident can resolve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from incident.domain.errors import Forbidden, InvalidValue
from incident.domain.incident import Incident, Role, Severity


class AccessRole(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    COMMANDER = "commander"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, AccessRole):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str, *, where: str = "role") -> AccessRole:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where,
                f"unknown role {text!r}; use one of viewer, responder, commander, admin",
            ) from None


_RANKS = {
    AccessRole.VIEWER: 0,
    AccessRole.RESPONDER: 1,
    AccessRole.COMMANDER: 2,
    AccessRole.ADMIN: 3,
}


class Action(StrEnum):
    VIEW = "view incidents"
    DECLARE = "declare incidents"
    ACKNOWLEDGE = "acknowledge"
    POST_UPDATE = "post updates and notes"
    RAISE_SEVERITY = "raise the severity"
    LOWER_SEVERITY = "lower the severity"
    TAKE_COMMAND = "take command of an incident without a commander"
    ASSIGN_ROLE = "assign roles"
    RESOLVE = "resolve"
    COMPLETE_RCA = "mark the RCA done"
    MANAGE_STEPS = "skip or snooze playbook steps"
    APPROVE_STEPS = "approve customer-facing texts held for approval"
    EDIT = "edit the title, impact, service or category"
    CANCEL = "cancel an incident (false alarm, declined)"
    REOPEN = "reopen a resolved incident"
    MERGE = "merge incidents"
    FOLLOW_UPS = "add and complete follow-up action items"
    MAINTENANCE = "schedule and update maintenance windows"


REQUIRED: dict[Action, AccessRole] = {
    Action.VIEW: AccessRole.VIEWER,
    Action.DECLARE: AccessRole.RESPONDER,
    Action.ACKNOWLEDGE: AccessRole.RESPONDER,
    Action.POST_UPDATE: AccessRole.RESPONDER,
    # Making an incident worse is everyone's job; calling it smaller is the commander's.
    Action.RAISE_SEVERITY: AccessRole.RESPONDER,
    Action.LOWER_SEVERITY: AccessRole.COMMANDER,
    # At 3 a.m. someone has to pick up an incident an alert declared: any responder may
    # make themselves its commander while it has none. Handing over needs commander rights.
    Action.TAKE_COMMAND: AccessRole.RESPONDER,
    Action.ASSIGN_ROLE: AccessRole.COMMANDER,
    Action.RESOLVE: AccessRole.COMMANDER,
    Action.COMPLETE_RCA: AccessRole.COMMANDER,
    Action.MANAGE_STEPS: AccessRole.COMMANDER,
    # What customers are told about a security incident is the commander's call.
    Action.APPROVE_STEPS: AccessRole.COMMANDER,
    # Correcting the facts (and so the routing: a security category brings the security
    # team) is everyone's job, like raising the severity.
    Action.EDIT: AccessRole.RESPONDER,
    # Calling an incident off, or back, stops or restarts the playbook: the commander's.
    Action.CANCEL: AccessRole.COMMANDER,
    Action.REOPEN: AccessRole.COMMANDER,
    Action.MERGE: AccessRole.COMMANDER,
    Action.FOLLOW_UPS: AccessRole.RESPONDER,
    Action.MAINTENANCE: AccessRole.RESPONDER,
}


@dataclass(frozen=True)
class Principal:
    """Someone acting: `name` goes on the timeline, `role` decides what they may do."""

    name: str
    role: AccessRole

    def role_on(self, incident: Incident | None) -> AccessRole:
        if (
            incident is not None
            and incident.commander is not None
            and incident.commander == self.name
            and not self.role >= AccessRole.COMMANDER
        ):
            return AccessRole.COMMANDER
        return self.role


def severity_action(incident: Incident, new: Severity) -> Action:
    """A change to a more severe level (P2 -> P1) raises it; anything else lowers it."""
    return Action.RAISE_SEVERITY if new.rank < incident.severity.rank else Action.LOWER_SEVERITY


def assign_action(incident: Incident, by: str, role: Role, person: str) -> Action:
    """Taking command (`by` names themselves) of an incident nobody commands is lighter
    than assigning a role."""
    if role is Role.COMMANDER and incident.commander is None and person == by:
        return Action.TAKE_COMMAND
    return Action.ASSIGN_ROLE


def authorize(principal: Principal, action: Action, incident: Incident | None = None) -> None:
    """Raise Forbidden, saying who may, unless `principal` may take `action` on `incident`."""
    needed = REQUIRED[action]
    if principal.role_on(incident) >= needed:
        return
    who = {
        AccessRole.VIEWER: "anyone",
        AccessRole.RESPONDER: "responders, commanders and admins",
        AccessRole.COMMANDER: "the incident's commander, commanders and admins",
        AccessRole.ADMIN: "admins",
    }[needed]
    where = f" on {incident.ref}" if incident is not None else ""
    raise Forbidden(
        f"{principal.name} ({principal.role.value}) may not {action.value}{where}; only {who} may"
    )


# Who acts. A `Principal` came through a door (the API, Slack, the dashboard): the use case
# authorizes it inside its unit of work, on the incident as it is then, so a change of
# commander or of severity committed meanwhile is seen. A bare name is the service itself
# acting (alert routing, the playbook, `incident simulate`, scripts and tests): trusted.
Actor: TypeAlias = Principal | str
# The action a change is, for authorizing it: fixed, or decided by the incident (lowering
# the severity needs more than raising it).
Rule: TypeAlias = Action | Callable[[Incident], Action]


def actor_name(by: Actor) -> str:
    """The name the timeline and the logs give whoever acts."""
    return by.name if isinstance(by, Principal) else by


def authorized(by: Actor, rule: Rule, incident: Incident | None = None) -> None:
    """Raise Forbidden unless `by` may take the action `rule` names on `incident`."""
    if isinstance(by, Principal):
        if not isinstance(rule, Action):
            assert incident is not None, "a rule decided by the incident needs the incident"
            rule = rule(incident)
        authorize(by, rule, incident)
