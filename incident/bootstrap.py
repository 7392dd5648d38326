"""The one place that picks concrete adapters and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from incident.adapters.database.databases import Database, open_database
from incident.adapters.database.leases import SqlLeases
from incident.adapters.database.store import SqlStore
from incident.adapters.database.wakeups import LocalSignal, PostgresSignal
from incident.adapters.files.playbook_files import load_playbooks
from incident.adapters.files.support_files import load_support, support_directory
from incident.adapters.files.templates import DOCUMENT_SUFFIX, JinjaRenderer
from incident.adapters.files.verification_files import load_verification
from incident.adapters.vendors.outbox import Outbox
from incident.clock import Clock, SystemClock
from incident.redaction import Redactor

if TYPE_CHECKING:
    from incident.adapters.vendors.slack import SlackChat
from incident.config import PROJECT_ROOT, Settings
from incident.domain.case_clocks import SupportPlaybook
from incident.domain.playbook import PlaybookSet
from incident.scheduler.engine import Engine
from incident.scheduler.loop import PlanSignal
from incident.scheduler.retry import RetryPolicy
from incident.scheduler.runner import Scheduler, Tuning
from incident.services.candidate_steps import CandidateSteps
from incident.services.case_links import CaseRelay
from incident.services.case_steps import CaseSteps
from incident.services.cases import Support
from incident.services.engine import StepReport, SubjectKinds
from incident.services.incident_steps import IncidentSteps
from incident.services.incidents import Runtime
from incident.services.patterns import Patterns
from incident.services.ports import (
    AccountSystem,
    Board,
    Chat,
    Effects,
    Messenger,
    Notifier,
    Pager,
    StatusPage,
)
from incident.services.verification_steps import VerificationSteps
from incident.services.verifications import Verifications

# How long readiness waits for its probe write: far longer than writes queue for in an alert
# storm (a few hundred ms), far shorter than a writer waits for another process's write
# lock on SQLite (30 s), which would hold /readyz as long.
READINESS_WRITE_WAIT = 2.0


@dataclass
class Container:
    settings: Settings
    database: Database
    store: SqlStore
    outbox: Outbox
    effects: Effects
    runtime: Runtime
    engine: Engine
    documents: JinjaRenderer  # the timeline and postmortem documents (comms/*.md.j2)
    support: Support  # what the support cases' use cases work with
    patterns: Patterns  # clusters of cases and the incidents proposed from them
    verifications: Verifications  # account-ownership verifications
    live: dict[str, str] = field(default_factory=dict)  # port -> what serves it
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def scheduler(self) -> Scheduler:
        """The main lane's scheduler (it runs every kind of step)."""
        return self.engine.main

    @property
    def page_scheduler(self) -> Scheduler:
        return self.engine.pages

    async def readiness(self) -> list[str]:
        """What keeps this process from doing its work now (nothing: ready). The database
        must take a write, not only answer a read: with a full disk it answers reads. One
        that takes none within READINESS_WRITE_WAIT (TimeoutError) is not ready either."""
        problems = []
        owner = self.engine.owner
        try:
            probe = self.store.run(
                lambda tx: tx.probe_write(name=owner[:80], now=self.runtime.clock.now()),
                durable=False,
            )
            await asyncio.wait_for(probe, READINESS_WRITE_WAIT)
        except Exception as error:  # readiness reports, it does not raise
            problems.append(f"database does not take writes: {type(error).__name__}")
        if not self.engine.running:
            problems.append("scheduler not running")
        return problems

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
        await self.database.dispose()


# How long a stopping engine waits for the steps under way to finish.
STOP_GRACE_SECONDS = 30

log = logging.getLogger("incident.web")


@contextlib.asynccontextmanager
async def running(container: Container) -> AsyncIterator[Container]:
    """Run a built container's engine until the block ends, then shut it down in order.

    Start: one scheduling process per SQLite file (a file lock; `SingleScheduler` if
    another holds it), and on SQLite whatever a crashed predecessor left running is handed
    back (replicas on PostgreSQL wait for each other's leases instead); then every lane's
    loop. Stop: the loops finish the steps they are running and start no other; claimed
    steps that did not start are handed back; then the adapters and the database close.
    The container is closed however the block ends."""
    try:
        container.database.hold_single_scheduler()
        if container.database.is_sqlite:
            await container.store.run(lambda tx: tx.release_claims())
    except BaseException:
        await container.close()
        raise
    stop = asyncio.Event()
    engine = asyncio.create_task(container.engine.run(stop), name="engine")
    log.info(
        "engine started",
        extra={"action": "engine_started", "database": container.database.dialect},
    )
    try:
        yield container
    finally:
        stop.set()
        container.engine.wake()  # the loops see the stop now, not at their next poll
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(engine, timeout=STOP_GRACE_SECONDS)
        owner = container.engine.owner
        try:
            handed_back = await container.store.run(lambda tx: tx.release_claims(owner=owner))
        finally:
            await container.close()
        log.info("engine stopped", extra={"action": "engine_stopped", "handed_back": handed_back})


def check_playbooks(settings: Settings) -> PlaybookSet:
    """Load the playbooks and check them against comms/ and runbooks/ (InvalidPlaybook if not)."""
    return load_playbooks(
        settings.playbooks_dir, comms_dir=settings.comms_dir, runbooks_dir=settings.runbooks_dir
    )


def check_support(settings: Settings) -> SupportPlaybook:
    """Load the support playbook (playbooks/support/) and check its templates (InvalidPlaybook
    if not). Playbooks from before support cases have none: the shipped one stands in."""
    directory, shipped = support_directory(
        settings.playbooks_dir, shipped=PROJECT_ROOT / "playbooks"
    )
    if shipped:
        log.warning(
            "no support/ in the playbooks: support cases use the shipped support playbook",
            extra={"action": "support_playbook_shipped", "directory": str(directory)},
        )
    return load_support(directory, comms_dir=settings.comms_dir)


async def build(
    settings: Settings,
    *,
    playbooks: PlaybookSet | None = None,
    support_playbook: SupportPlaybook | None = None,
    clock: Clock | None = None,
    effects: Effects | None = None,
    retry: RetryPolicy | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    vendor_tls: ssl.SSLContext | None = None,
) -> Container:
    """Wire the service. Playbooks are checked first (unless given, checked already): an
    invalid one stops us here.

    Each vendor whose credentials are set serves its port; the outbox serves the rest.
    `effects` replaces them all (tests); `vendor_tls` is the trust for vendor HTTPS
    (tests with local fakes; default: the system's).
    """
    clock = clock or SystemClock()
    playbooks = playbooks or check_playbooks(settings)
    support_playbook = support_playbook or check_support(settings)
    database = open_database(settings.database_url)
    try:
        # SQLite migrates; PostgreSQL is checked (migrated by `incident db upgrade` or
        # `serve --migrate`), and refused with the command to run if it is behind.
        await database.ensure_schema()
    except BaseException:
        await database.dispose()
        raise
    store = SqlStore(database)
    outbox = Outbox(database, clock, conference_url_template=settings.conference_url_template)
    closers: list[Callable[[], Awaitable[None]]] = []
    live = {
        "pager": "outbox",
        "chat": "outbox",
        "email": "outbox",
        "status_page": "outbox",
        "customers": "outbox",
        "board": "outbox",
        "accounts": "outbox (tasks)",
    }
    if effects is None:
        pager: Pager = outbox
        if settings.pagerduty_routing_key:
            pager = _pagerduty(settings, database, clock, vendor_tls, closers)
            live["pager"] = f"PagerDuty ({settings.pagerduty_events_url})"
        status_page: StatusPage = outbox
        if settings.statuspage_api_key:
            status_page = _statuspage(settings, database, clock, vendor_tls, closers)
            live["status_page"] = f"Statuspage ({settings.statuspage_api_url})"
        chat: Chat = outbox
        board: Board = outbox
        slack: SlackChat | None = None
        if settings.slack_bot_token:
            chat = board = slack = await _slack(settings, database, clock, closers)
            live["chat"] = live["board"] = f"Slack ({settings.slack_api_url})"
        accounts: AccountSystem = outbox
        if settings.account_webhook_url:
            accounts = _account_webhook(settings, clock, vendor_tls, outbox, closers)
            live["accounts"] = f"outbox (tasks) and signed webhook ({accounts_url(settings)})"
        notifier = _notifier(
            settings,
            database,
            clock,
            vendor_tls,
            outbox=outbox,
            slack=slack,
            pager=pager if isinstance(pager, Messenger) else None,
            live=live,
        )
        effects = Effects(
            pager=pager,
            chat=chat,
            notifier=notifier,
            status_page=status_page,
            customers=outbox,
            renderer=JinjaRenderer(settings.comms_dir),
            board=board,
            accounts=accounts,
            fallback_chat=outbox if chat is not outbox else None,
        )
    else:
        live = dict.fromkeys(live, "given")
    runtime = Runtime(
        store=store,
        playbooks=playbooks,
        clock=clock,
        catalog=settings.catalog,
        approval_categories=settings.approval_categories,
        cancelled_incidents=settings.cancelled_incidents,
        redact=Redactor(settings.secrets()),
    )
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    # Replicas (PostgreSQL) wake each other through the database; polling is the fallback,
    # more often there, since a lost signal is only noticed by the next poll.
    signal: PlanSignal = LocalSignal()
    if not database.is_sqlite:
        signal = PostgresSignal(settings.database_url, replica=owner)
    support = Support(runtime, support_playbook, settings.support_roles)
    # Cases linked to an incident hear its customer-facing words, in its transactions.
    runtime.followers.append(CaseRelay(support))
    # Every production notifier also sends about any subject; a test's recorder may not.
    messenger = effects.notifier if isinstance(effects.notifier, Messenger) else outbox
    patterns = Patterns(support, support_playbook.patterns)
    verifications = Verifications(
        # A support playbook made by hand (tests) has none: the shipped policy.
        support,
        support_playbook.verification or load_verification(PROJECT_ROOT / "playbooks", []),
    )
    kinds = SubjectKinds(
        IncidentSteps(runtime, effects, base_url=settings.base_url),
        CaseSteps(
            support, messenger, effects.renderer, base_url=settings.base_url, patterns=patterns
        ),
        CandidateSteps(
            support_playbook.patterns, messenger, effects.renderer, base_url=settings.base_url
        ),
        VerificationSteps(
            verifications,
            messenger=messenger,
            board=effects.board,
            accounts=effects.accounts,
            renderer=effects.renderer,
            base_url=settings.base_url,
        ),
    )
    engine = Engine(
        kinds=kinds,
        store=store,
        clock=clock,
        tuning=Tuning(owner=owner, lease=settings.scheduler_lease, retry=retry or RetryPolicy()),
        signal=signal,
        leases=SqlLeases(database),
        poll_interval=timedelta(seconds=30) if database.is_sqlite else timedelta(seconds=5),
        redact=runtime.redact,
        on_step=on_step,
    )
    runtime.plan_changed.subscribe(engine.plan_changed)
    return Container(
        settings=settings,
        database=database,
        store=store,
        outbox=outbox,
        effects=effects,
        runtime=runtime,
        engine=engine,
        documents=JinjaRenderer(settings.comms_dir, suffix=DOCUMENT_SUFFIX),
        support=support,
        patterns=patterns,
        verifications=verifications,
        live=live,
        closers=closers,
    )


def _pagerduty(
    settings: Settings,
    database: Database,
    clock: Clock,
    tls: ssl.SSLContext | None,
    closers: list[Callable[[], Awaitable[None]]],
) -> Pager:
    from incident.adapters.database.vendor_refs import VendorRefs
    from incident.adapters.vendors import pagerduty

    assert settings.pagerduty_routing_key is not None
    verify: ssl.SSLContext | bool = tls if tls is not None else True
    events = pagerduty.events_client(
        routing_key=settings.pagerduty_routing_key,
        base_url=settings.pagerduty_events_url,
        verify=verify,
    )
    rest = (
        pagerduty.rest_client(
            api_token=settings.pagerduty_api_token,
            base_url=settings.pagerduty_api_url,
            verify=verify,
        )
        if settings.pagerduty_api_token
        else None
    )
    # The package's clients block: their calls run on these threads, off the event loop.
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pagerduty")

    async def close() -> None:
        def shut() -> None:
            for client in (events, rest):
                if client is not None:
                    client.close()

        await asyncio.get_running_loop().run_in_executor(executor, shut)
        executor.shutdown(wait=True)

    closers.append(close)
    return pagerduty.PagerDutyPager(
        events=events,
        rest=rest,
        refs=VendorRefs(database, clock),
        clock=clock,
        executor=executor,
        base_url=settings.base_url,
        escalation_policies=settings.pagerduty_escalation_policies,
    )


def _statuspage(
    settings: Settings,
    database: Database,
    clock: Clock,
    tls: ssl.SSLContext | None,
    closers: list[Callable[[], Awaitable[None]]],
) -> StatusPage:
    import httpx

    from incident.adapters.database.vendor_refs import VendorRefs
    from incident.adapters.vendors.statuspage import RequestSpacing, StatuspageStatusPage

    assert settings.statuspage_api_key is not None and settings.statuspage_page_id is not None
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0), verify=tls if tls is not None else True
    )
    closers.append(http.aclose)
    return StatuspageStatusPage(
        client=http,
        refs=VendorRefs(database, clock),
        clock=clock,
        page_id=settings.statuspage_page_id,
        api_key=settings.statuspage_api_key,
        base_url=settings.statuspage_api_url,
        components=settings.statuspage_components,
        catalog=settings.catalog,
        # Statuspage allows about one request per second per API key: queue, don't fail.
        spacing=RequestSpacing(clock, interval=1.0),
        cancelled_incidents=settings.cancelled_incidents,
    )


def accounts_url(settings: Settings) -> str:
    """The account webhook's URL as it may be shown (no credentials or query)."""
    from incident.adapters.vendors.account_webhook import shown_url

    assert settings.account_webhook_url is not None
    return shown_url(settings.account_webhook_url)


def _account_webhook(
    settings: Settings,
    clock: Clock,
    tls: ssl.SSLContext | None,
    outbox: Outbox,
    closers: list[Callable[[], Awaitable[None]]],
) -> AccountSystem:
    import httpx

    from incident.adapters.vendors.account_webhook import AccountWebhook

    assert settings.account_webhook_url is not None
    assert settings.account_webhook_secret is not None
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0), verify=tls if tls is not None else True
    )
    closers.append(http.aclose)
    return AccountWebhook(
        client=http,
        url=settings.account_webhook_url,
        secret=settings.account_webhook_secret,
        clock=clock,
        record=outbox,  # every instruction is a task people see, sent or not
        allow_http=settings.account_webhook_allow_http,
    )


def _notifier(
    settings: Settings,
    database: Database,
    clock: Clock,
    tls: ssl.SSLContext | None,
    *,
    outbox: Outbox,
    slack: SlackChat | None,
    pager: Messenger | None,
    live: dict[str, str],
) -> Notifier:
    """Audiences' destinations by kind: `chat:` to Slack and `email:` to SMTP when they are
    configured, a support case's `pager:` to PagerDuty; the outbox keeps the rest."""
    from incident.adapters.vendors.split_notifier import SplitNotifier

    routes: dict[str, Notifier] = {}
    if slack is not None:
        routes["chat"] = slack
    if settings.smtp is not None:
        routes["email"] = _smtp(settings, database, clock, tls)
        live["email"] = f"SMTP ({settings.smtp.address})"
    senders = {"pager": pager} if pager is not None else {}
    return SplitNotifier(routes, default=outbox, senders=senders) if routes or senders else outbox


def _smtp(
    settings: Settings, database: Database, clock: Clock, tls: ssl.SSLContext | None
) -> Notifier:
    from incident.adapters.database.vendor_refs import VendorRefs
    from incident.adapters.vendors.smtp import SmtpNotifier

    server = settings.smtp
    assert server is not None and settings.smtp_from is not None
    return SmtpNotifier(
        host=server.host,
        port=server.port,
        implicit_tls=server.implicit_tls,
        require_starttls=server.require_starttls,
        username=server.username,
        password=server.password,
        tls_context=tls,
        sender=settings.smtp_from,
        company=settings.company_name,
        refs=VendorRefs(database, clock),
        clock=clock,
    )


async def _slack(
    settings: Settings,
    database: Database,
    clock: Clock,
    closers: list[Callable[[], Awaitable[None]]],
) -> SlackChat:
    import aiohttp

    from incident.adapters.database.vendor_refs import VendorRefs
    from incident.adapters.vendors.slack import SlackChat, slack_client

    assert settings.slack_bot_token is not None
    session = aiohttp.ClientSession()
    closers.append(session.close)
    return SlackChat(
        client=slack_client(
            token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session
        ),
        refs=VendorRefs(database, clock),
        clock=clock,
        conference_url_template=settings.conference_url_template,
        status_page_url=f"{settings.base_url}/status",
        runbook_url=f"{settings.base_url}/runbooks/war-room.md",
    )
