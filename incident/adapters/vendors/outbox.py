"""The built-in outbox: serves every effect port by keeping the rendered message in the database.

It makes the service usable and inspectable without any vendor account. Each record is
keyed by the effect's idempotency key, so a step that is re-run after a crash records its
effect once (the insert is skipped on a key it has already seen). Each belongs to a subject:
an incident's effects, and the messages `send` keeps about any kind of subject (a support
case's mail when no SMTP server is configured).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from incident.adapters.database.databases import Database
from incident.adapters.database.tables import OutboxRow
from incident.clock import Clock
from incident.domain.incident import Incident, Status, war_room_name
from incident.domain.records import INCIDENT, SubjectRef
from incident.services.ports import OnCall, Topic, WarRoom

# Built once, with the values as parameters: compiled once and then taken from SQLAlchemy's
# cache (a statement with the values in it is compiled anew for every effect).
_INSERT_SQLITE = sqlite_insert(OutboxRow).on_conflict_do_nothing(index_elements=["idempotency_key"])
_INSERT_POSTGRES = postgres_insert(OutboxRow).on_conflict_do_nothing(
    index_elements=["idempotency_key"]
)
# The war room's greeting is one message, edited in place: its record is kept up to date.
_GREETING_SQLITE = sqlite_insert(OutboxRow)
_GREETING_SQLITE = _GREETING_SQLITE.on_conflict_do_update(
    index_elements=["idempotency_key"],
    set_={"body": _GREETING_SQLITE.excluded.body, "subject": _GREETING_SQLITE.excluded.subject},
)
_GREETING_POSTGRES = postgres_insert(OutboxRow)
_GREETING_POSTGRES = _GREETING_POSTGRES.on_conflict_do_update(
    index_elements=["idempotency_key"],
    set_={
        "body": _GREETING_POSTGRES.excluded.body,
        "subject": _GREETING_POSTGRES.excluded.subject,
    },
)


@dataclass(frozen=True)
class OutboxMessage:
    idempotency_key: str
    subject_kind: str  # whose message it is: a subject kind ("incident", "case" ...)
    subject_id: int  # and the subject's id within that kind
    created_at: datetime
    channel: str
    destination: str
    subject: str  # the message's own subject line
    body: str

    @property
    def incident_id(self) -> int:
        """The incident it is about, for the incidents' outbox views (`messages`)."""
        if self.subject_kind != INCIDENT:
            raise ValueError(f"a message about a {self.subject_kind} has no incident")
        return self.subject_id


class Outbox:
    """Implements Pager, Chat, Notifier, Messenger, StatusPage, CustomerComms, Board and
    AccountSystem."""

    def __init__(
        self, database: Database, clock: Clock, *, conference_url_template: str | None = None
    ) -> None:
        self._database = database
        self._clock = clock
        self._conference_url_template = conference_url_template

    async def _record(
        self,
        *,
        key: str,
        about: SubjectRef,
        channel: str,
        destination: str,
        subject: str = "",
        body: str,
        replace: bool = False,
    ) -> None:
        """Keep one effect, once per `key`; `replace`: a message edited in place (the
        greeting, a board's message), whose record follows its latest text."""
        values = {
            "idempotency_key": key,
            "subject_kind": about.kind,
            "subject_id": about.id,
            "created_at": self._clock.now(),
            "channel": channel,
            "destination": destination,
            "subject": subject,
            "body": body,
        }
        if replace:
            statement = _GREETING_SQLITE if self._database.is_sqlite else _GREETING_POSTGRES
        else:
            statement = _INSERT_SQLITE if self._database.is_sqlite else _INSERT_POSTGRES
        await self._database.run(lambda session: session.execute(statement, values))

    # --- Pager -----------------------------------------------------------------------------

    async def page(self, *, incident: Incident, tier: str, summary: str, key: str) -> str:
        await self._record(
            key=key,
            about=_subject(incident),
            channel="page",
            destination=f"oncall:{tier}",
            subject=summary,
            body=summary,
        )
        return key

    async def acknowledge(self, *, incident: Incident, key: str) -> None:
        await self._pager_state(incident, key, "acknowledged")

    async def resolve(self, *, incident: Incident, key: str) -> None:
        await self._pager_state(incident, key, "resolved")

    async def on_call(self, *, tier: str) -> list[OnCall]:
        return []  # the outbox knows nobody: the war room gets its commander only

    async def _pager_state(self, incident: Incident, key: str, state: str) -> None:
        """One record per paged tier, like a vendor acknowledging each of its alerts."""
        messages = await self.messages(incident_id=incident.id)
        paged = {
            m.destination
            for m in messages
            if m.channel == "page" and m.subject not in ("acknowledged", "resolved")
        }
        for destination in sorted(paged):
            await self._record(
                key=f"{key}#{destination}",
                about=_subject(incident),
                channel="page",
                destination=destination,
                subject=state,
                body=f"{incident.ref}: pages {state}",
            )

    # --- Chat ------------------------------------------------------------------------------

    async def open_war_room(
        self, *, incident: Incident, key: str, greeting: str, people: Sequence[str] = ()
    ) -> WarRoom:
        room = WarRoom(channel=war_room_name(incident), conference_url=self._conference(incident))
        body = f"War room #{room.channel} opened."
        if people:
            body += f" Invited: {', '.join(people)}."
        if room.conference_url:
            body += f" Conference: {room.conference_url}"
        await self._record(
            key=key,
            about=_subject(incident),
            channel="chat",
            destination=f"chat:#{room.channel}",
            body=body,
        )
        await self._greet(incident, room.channel, greeting, edited=False)
        return room

    async def _greet(self, incident: Incident, channel: str, text: str, *, edited: bool) -> None:
        """The greeting: one record per war room, whose text follows every edit."""
        await self._record(
            key=greeting_key(incident),
            about=_subject(incident),
            channel="chat",
            destination=f"chat:#{channel}",
            subject="greeting (pinned, edited)" if edited else "greeting (pinned)",
            body=text,
            replace=True,
        )

    async def post(self, *, incident: Incident, text: str, key: str) -> None:
        await self._record(
            key=key,
            about=_subject(incident),
            channel="chat",
            destination=f"chat:#{incident.war_room or war_room_name(incident)}",
            body=text,
        )

    async def refresh_war_room(self, *, incident: Incident, key: str, greeting: str) -> None:
        if incident.war_room is None:
            return
        commander = incident.commander or "none yet"
        await self._record(
            key=key,
            about=_subject(incident),
            channel="chat",
            destination=f"chat:#{incident.war_room}",
            body=f"Topic: {incident.ref} {incident.severity.value} | {incident.status.value} | "
            f"IC: {commander} | {incident.title}",
        )
        await self._greet(incident, incident.war_room, greeting, edited=True)

    # --- Notifier and Messenger ------------------------------------------------------------

    async def notify(
        self,
        *,
        incident: Incident,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """`send` about the incident, `chat:war-room` kept as the war room it names."""
        war_room = f"chat:#{incident.war_room or war_room_name(incident)}"
        await self.send(
            about=Topic.incident(incident),
            audience=audience,
            destinations=[war_room if d == "chat:war-room" else d for d in destinations],
            subject=subject,
            body=body,
            key=key,
        )

    async def send(
        self,
        *,
        about: Topic,
        audience: str,
        destinations: Sequence[str],
        subject: str,
        body: str,
        key: str,
    ) -> None:
        """Keep one message per destination, once per `key`, as it is named: only an
        incident has a war room, and only `notify`, which has the incident, knows it.
        Keys are unique across subjects here (the engine's effect keys name their subject:
        `inc-3/...`, `case-3/...`)."""
        for destination in destinations:
            await self._record(
                key=f"{key}#{destination}",
                about=about.subject,
                channel="email" if destination.startswith("email:") else "chat",
                destination=destination,
                subject=subject,
                body=body,
            )

    # --- Board ------------------------------------------------------------------------------

    async def show(self, *, about: Topic, destination: str, text: str, key: str) -> None:
        """One record per `key` (its subject line says so), whose text follows every call:
        what the message kept up to date would say now."""
        await self._record(
            key=key,
            about=about.subject,
            channel="chat",
            destination=destination,
            subject=BOARD_SUBJECT,
            body=text,
            replace=True,
        )

    # --- AccountSystem ---------------------------------------------------------------------

    async def instruct(self, *, about: Topic, instruction: Mapping[str, object], key: str) -> None:
        """Keep the instruction as a task for whoever changes accounts, once per `key`: the
        JSON the account system's webhook would receive (`account_task`)."""
        await self._record(
            key=account_task_key(key),
            about=about.subject,
            channel="account",
            destination="account-system",
            subject=f"account instruction about {about.label}",
            body=json.dumps(instruction, sort_keys=True, indent=2, default=str),
        )

    # --- StatusPage ------------------------------------------------------------------------

    async def publish(self, *, incident: Incident, status: Status, body: str, key: str) -> None:
        await self._record(
            key=key,
            about=_subject(incident),
            channel="status_page",
            destination="status_page",
            subject=status.value,
            body=body,
        )

    async def withdraw(self, *, incident: Incident, body: str, key: str) -> None:
        await self._record(
            key=key,
            about=_subject(incident),
            channel="status_page",
            destination="status_page",
            subject="withdrawn",
            body=body,
        )

    # --- CustomerComms ---------------------------------------------------------------------

    async def update_customers(
        self, *, incident: Incident, subject: str, body: str, key: str
    ) -> None:
        await self._record(
            key=key,
            about=_subject(incident),
            channel="customers",
            destination="customers",
            subject=subject,
            body=body,
        )

    # --- reading ---------------------------------------------------------------------------

    async def messages(
        self, *, incident_id: int | None = None, limit: int | None = None
    ) -> list[OutboxMessage]:
        """Incidents' messages (one incident's, with `incident_id`), oldest first; `limit`:
        only the newest this many (the outbox only grows). What the incidents' outbox views
        show: other kinds' messages are read with `messages_about`."""
        query = select(OutboxRow).where(col(OutboxRow.subject_kind) == INCIDENT)
        if incident_id is not None:
            query = query.where(col(OutboxRow.subject_id) == incident_id)
        return await self._newest(query, limit)

    async def messages_about(
        self, subject: SubjectRef, limit: int | None = None
    ) -> list[OutboxMessage]:
        """One subject's messages (a case's, an incident's ...), oldest first; `limit`: only
        the newest this many."""
        query = select(OutboxRow).where(
            col(OutboxRow.subject_kind) == subject.kind, col(OutboxRow.subject_id) == subject.id
        )
        return await self._newest(query, limit)

    async def _newest(
        self, query: SelectOfScalar[OutboxRow], limit: int | None
    ) -> list[OutboxMessage]:
        """The newest `limit` (or all) rows of `query`, oldest first."""
        query = query.order_by(col(OutboxRow.created_at).desc(), col(OutboxRow.id).desc())
        if limit is not None:
            query = query.limit(limit)
        rows = await self._database.read(lambda session: list(session.scalars(query))[::-1])
        return [
            OutboxMessage(
                idempotency_key=r.idempotency_key,
                subject_kind=r.subject_kind,
                subject_id=r.subject_id,
                created_at=r.created_at,
                channel=r.channel,
                destination=r.destination,
                subject=r.subject,
                body=r.body,
            )
            for r in rows
        ]

    def _conference(self, incident: Incident) -> str | None:
        if not self._conference_url_template:
            return None
        return self._conference_url_template.format(
            id=incident.id, ref=incident.ref, channel=war_room_name(incident)
        )


def _subject(incident: Incident) -> SubjectRef:
    assert incident.id is not None
    return SubjectRef.incident(incident.id)


BOARD_SUBJECT = "kept up to date (edited in place)"


def account_task_key(key: str) -> str:
    """The outbox record of an account instruction: apart from any message of that key."""
    return f"{key}#account-task"


def greeting_key(incident: Incident) -> str:
    """The outbox record of an incident's war-room greeting."""
    return f"inc-{incident.id}/war-room/greeting"
