"""The one place that picks concrete adapters and wires them together."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from incident.adapters.database import Database
from incident.adapters.outbox import Outbox
from incident.adapters.playbook_files import load_playbooks
from incident.adapters.sql_store import SqlStore
from incident.adapters.templates import JinjaRenderer
from incident.clock import Clock, SystemClock
from incident.config import Settings
from incident.domain.playbook import PlaybookSet
from incident.scheduler.runner import RetryPolicy, Scheduler, StepReport
from incident.services.incidents import Runtime
from incident.services.ports import Effects


@dataclass
class Container:
    settings: Settings
    database: Database
    store: SqlStore
    outbox: Outbox
    effects: Effects
    runtime: Runtime
    scheduler: Scheduler

    async def close(self) -> None:
        await self.database.dispose()


def check_playbooks(settings: Settings) -> PlaybookSet:
    """Load the playbooks and check them against comms/ and runbooks/ (InvalidPlaybook if not)."""
    return load_playbooks(
        settings.playbooks_dir, comms_dir=settings.comms_dir, runbooks_dir=settings.runbooks_dir
    )


async def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    effects: Effects | None = None,
    retry: RetryPolicy | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> Container:
    """Wire the service. Playbooks are checked first: an invalid one stops us here."""
    clock = clock or SystemClock()
    playbooks = check_playbooks(settings)
    database = Database(settings.database_url)
    await database.create_schema()
    store = SqlStore(database)
    outbox = Outbox(database, clock, conference_url_template=settings.conference_url_template)
    effects = effects or Effects(
        pager=outbox,
        chat=outbox,
        notifier=outbox,
        status_page=outbox,
        customers=outbox,
        renderer=JinjaRenderer(settings.comms_dir),
    )
    runtime = Runtime(store=store, playbooks=playbooks, clock=clock)
    scheduler = Scheduler(
        runtime=runtime,
        effects=effects,
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        retry=retry,
        base_url=settings.base_url,
        on_step=on_step,
    )
    runtime.plan_changed = scheduler.wake
    return Container(
        settings=settings,
        database=database,
        store=store,
        outbox=outbox,
        effects=effects,
        runtime=runtime,
        scheduler=scheduler,
    )
