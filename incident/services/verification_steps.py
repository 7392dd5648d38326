"""Verifications as a subject of the engine: asking the customer, the reminders, the final
notice and closing unverified on the clock; after a decision, the account system's
instruction and the customer's outcome; the management channel's one message brought up to
date after each change; and the proof files purged after the retention. Each effect is sent
once under its occurrence's idempotency key (a crash between a send and its mark re-sends
the same key, which the adapters recognise)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident.domain.records import Occurrence, StepResult, TimelineEntry
from incident.domain.verification import Verification, VerificationStatus, no_proof_advice
from incident.domain.verification_clocks import (
    BOARD,
    CLOSE,
    FINAL,
    INSTRUCT,
    PURGE,
    REMINDER,
    VerificationStep,
    step,
    verdict,
)
from incident.domain.verification_policy import Change, VerificationPolicy
from incident.services.engine import Failure, Prepared, Ready, Sent, StepReport
from incident.services.ports import AccountSystem, Board, Messenger, Renderer, Topic, Transaction
from incident.services.verifications import (
    VERIFICATION,
    Verifications,
    replan_verification,
    support_calendar,
    verification_ref,
)

log = logging.getLogger("incident.scheduler")
CLOCK = "clock"
TEMPLATE_DIR = "verification"  # comms/verification/<name>.txt.j2


def topic(v: Verification) -> Topic:
    assert v.id is not None
    return Topic(verification_ref(v.id), v.opened_at, v.ref)


@dataclass(frozen=True)
class VerificationSent:
    summary: str


@dataclass(frozen=True)
class VerificationRun:
    """A claimed step, checked and rendered: ready to send."""

    occurrence: Occurrence
    step: VerificationStep
    verification: Verification
    key: str
    send: Any  # the coroutine function that sends it (a bound method of the kind)

    async def perform(self) -> VerificationSent:
        summary: str = await self.send(self)
        return VerificationSent(summary)


class VerificationSteps:
    """The `SubjectKind` of account-ownership verifications."""

    name = VERIFICATION

    def __init__(
        self,
        vs: Verifications,
        *,
        messenger: Messenger,
        board: Board,
        accounts: AccountSystem,
        renderer: Renderer,
        base_url: str,
    ) -> None:
        self.vs = vs
        self.messenger = messenger
        self.board = board
        self.accounts = accounts
        self.renderer = renderer
        self.base_url = base_url

    def prepare(
        self, tx: Transaction, occurrence: Occurrence, now: datetime, *, facts: object = None
    ) -> Prepared:
        v = facts if isinstance(facts, Verification) else tx.get_verification(occurrence.subject.id)
        history = tx.step_history(occurrence.subject)
        stopped = verdict(
            occurrence.step_id,
            occurrence.occurrence,
            v,
            policy=self.vs.policy,
            calendar=support_calendar(self.vs),
            history=history,
            now=now,
        )
        if stopped is not None:
            tx.finish_occurrence(
                occurrence.id, state=stopped.stop.state, now=now, outcome=stopped.reason
            )
            replan_verification(self.vs, tx, v, now=now)
            result = StepResult(stopped.stop.state.value)
            return Prepared(
                occurrence,
                report=StepReport(occurrence, result, now - occurrence.due_at, stopped.reason),
            )
        found = step(occurrence.step_id)
        assert found is not None
        run = VerificationRun(
            occurrence=occurrence,
            step=found,
            verification=v,
            key=occurrence.effect_key(repeats=found.repeats),
            send=self._send,
        )
        return Prepared(occurrence, ready=run)

    async def _send(self, run: VerificationRun) -> str:
        v, step_id = run.verification, run.step.id
        if step_id == BOARD:
            assert v.id is not None
            destination = self.vs.policy.channel or "chat:#account-recovery"
            text = self._render("board", v)
            # One message per verification, whichever occurrence brings it up to date.
            await self.board.show(
                about=topic(v), destination=destination, text=text, key=f"verification/{v.id}/board"
            )
            return "management message brought up to date"
        if step_id == INSTRUCT:
            instruction = v.instruction()
            assert instruction is not None
            body = {
                # JSON's arrays, as the account system reads them.
                **{
                    k: list(x) if isinstance(x, tuple) else x
                    for k, x in instruction.as_dict().items()
                },
                "recommendations": [r.value for r in v.recommendations()],
                "withdrawal_hold_hours": int(
                    self.vs.policy.withdrawal_hold.total_seconds() // 3600
                ),
            }
            await self.accounts.instruct(about=topic(v), instruction=body, key=run.key)
            return "account system instructed"
        if step_id in (CLOSE, PURGE):
            return "closed as unverified" if step_id == CLOSE else "proof files purged"
        template = _template(step_id, v)
        await self.messenger.send(
            about=topic(v),
            audience="customer",
            destinations=(f"customer:{v.customer_id}",),
            subject=f"Your request {v.reference}: account access",
            body=self._render(template, v),
            key=run.key,
        )
        return f"told the customer ({template})"

    def _render(self, template: str, v: Verification) -> str:
        context = verification_context(v, self.vs.policy, base_url=self.base_url)
        return self.renderer.render(f"{TEMPLATE_DIR}/{template}", context)

    def record_done(self, tx: Transaction, ready: Ready, sent: Sent, now: datetime) -> object:
        assert isinstance(ready, VerificationRun) and isinstance(sent, VerificationSent)
        occurrence = ready.occurrence
        v = tx.get_verification(occurrence.subject.id, lock=True)
        v.events = []
        step_id = occurrence.step_id
        if step_id.startswith(REMINDER) and v.status is VerificationStatus.AWAITING_PROOF:
            v.remind(at=now, by=CLOCK)
        elif step_id == FINAL and v.status is VerificationStatus.AWAITING_PROOF:
            v.remind(at=now, by=CLOCK, final=True)
        elif step_id == CLOSE and v.status is VerificationStatus.AWAITING_PROOF:
            v.close_unverified(at=now, by=CLOCK)
        elif step_id == PURGE:
            tx.purge_proof_files(occurrence.subject.id, now=now)
        entry = TimelineEntry(
            at=now,
            kind="step_done",
            actor=CLOCK,
            step_id=step_id,
            occurrence=occurrence.occurrence,
            text=f"{step_id}: {sent.summary}",
        )
        tx.save_verification(v)
        tx.append_verification_timeline(occurrence.subject.id, [*v.events, entry])
        replan_verification(self.vs, tx, v, now=now)
        return v

    def record_failure(
        self, tx: Transaction, occurrence: Occurrence, failure: Failure, now: datetime
    ) -> object:
        state = "failed" if failure.final else "retry"
        text = f"{occurrence.step_id} attempt {failure.attempt} {state}: {failure.message}"
        entry = TimelineEntry(
            at=now, kind=f"step_{state}", actor=CLOCK, step_id=occurrence.step_id, text=text
        )
        tx.append_verification_timeline(occurrence.subject.id, [entry])
        return None

    def committed(self, sent: Sent) -> None:
        return None

    async def gave_up(self, ready: Ready, failure: Failure, facts: object) -> None:
        with contextlib.suppress(Exception):
            log.warning("verification step gave up", extra={"step": ready.occurrence.step_id})


def _template(step_id: str, v: Verification) -> str:
    if step_id.startswith(REMINDER):
        return "verification_reminder"
    if step_id == FINAL:
        return "verification_final_notice"
    if step_id == "ask":
        return v.need.template or "verification_ask_for_proof"
    return {
        VerificationStatus.APPROVED: "verification_approved",
        VerificationStatus.REFUSED: "verification_refused",
    }.get(v.status, "verification_closed_unverified")


def verification_context(
    v: Verification, policy: VerificationPolicy, *, base_url: str
) -> dict[str, Any]:
    """The variables of every template in comms/verification/: never a proof's content."""
    total, transactions = v.proof_counts()
    rules = policy.proof
    decision = v.decision
    return {
        "verification": {
            "ref": v.ref,
            "reference": v.reference,
            "customer_id": v.customer_id,
            "status": v.status.value,
            "status_words": v.status.value.replace("_", " "),
            "logged_in": v.state.logged_in,
            "features": [
                (f.value.replace("_", " "), s.value.replace("_", " ")) for f, s in v.state.features
            ],
            "changes": [c.words for c in Change if c in v.need.changes],
            "two_managers": v.two_managers,
            "opened_at": v.opened_at,
            "proofs": total,
            "transactions": transactions,
            "approvals": [a.by for a in v.approvals],
            "approved": decision is not None and decision.approved,
            "decided_changes": [c.words for c in Change if decision and c in decision.changes],
            "recommendations": [r.value.replace("_", " ") for r in v.recommendations()],
            "reminders_sent": v.reminders_sent,
        },
        "proof": {"min_proofs": rules.min_proofs, "min_transactions": rules.min_transactions},
        "advice": {
            "with_balance": no_proof_advice(logged_in=v.state.logged_in, has_balance=True),
            "without_balance": no_proof_advice(logged_in=v.state.logged_in, has_balance=False),
        },
        "links": {"verification": f"{base_url}/ui/verifications/{v.id}"},
    }
