"""Durable timers: our engine against APScheduler 3 (SQLAlchemyJobStore on SQLite), side by side.

    .venv/bin/python bench/timers.py [--sizes 1000,10000,100000] [--quick]

1. Scheduling throughput: durable timers written per second. Ours declares P1 incidents
   through `declare_incident` (each plans its whole playbook in one transaction; the timers
   are the step occurrence rows, counted from the database). APScheduler calls
   `add_job(func, "date", ...)` with a SQLAlchemyJobStore, one durable INSERT per job.
2. Firing lateness (actual fire time - due time) of a measured set of timers, with N other
   timers pending far in the future, each scheduler running in real time.

See bench/README.md for the method and the caveats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import pickle
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import SystemClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.errors import InvalidPlaybook
from incident.domain.incident import Severity
from incident.services.incidents import Runtime, declare_incident
from incident.testing import RecordingEffects

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
FAR = timedelta(days=30)  # "far in the future" for the pending timers nobody waits for
PLACEHOLDER = timedelta(days=10)  # where measured incidents are declared before the shift
LEAD = 1.0  # seconds between starting a scheduler and the first measured timer


# --- APScheduler job functions: module level, because the job store pickles a reference ------

_fired: dict[str, float] = {}
_fired_lock = threading.Lock()
_all_fired = threading.Event()
_expected = 0


def record_fire(key: str) -> None:
    """The measured APScheduler job: note the wall time at which it ran."""
    at = time.time()
    with _fired_lock:
        _fired.setdefault(key, at)
        if len(_fired) >= _expected:
            _all_fired.set()


def far_future_job() -> None:
    """A pending job nobody waits for (due a month from now)."""


def _reset_fired(expected: int) -> None:
    global _expected  # noqa: PLW0603  (the job function can only reach module state)
    with _fired_lock:
        _fired.clear()
        _expected = expected
        _all_fired.clear()


# --- our engine: a clock the declarations can be pinned to -----------------------------------


class PinnedClock:
    """A clock that says whatever instant it is set to (to declare at chosen instants)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    timers: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.timers / self.seconds


@dataclass(frozen=True)
class Lateness:
    pending: int  # timers pending far in the future while the measured ones fire
    setup_seconds: float
    setup_method: str
    margin_seconds: float  # how far in the future the first measured timer was at start
    late_ms: list[float]
    missed: int
    fired_at: list[float]  # wall times, to see how fast a backlog drained
    rates: tuple[float, ...] = ()  # pooled: each round's fired/s

    @property
    def fired_per_second(self) -> float:
        if self.rates:
            return statistics.median(self.rates)
        if len(self.fired_at) < 2:
            return float("nan")
        return (len(self.fired_at) - 1) / (max(self.fired_at) - min(self.fired_at))

    @classmethod
    def pooled(cls, runs: Sequence[Lateness]) -> Lateness:
        """Several rounds as one sample: every firing's lateness, every miss."""
        return cls(
            pending=runs[0].pending,
            setup_seconds=statistics.median(r.setup_seconds for r in runs),
            setup_method=runs[0].setup_method,
            margin_seconds=min(r.margin_seconds for r in runs),
            late_ms=[ms for r in runs for ms in r.late_ms],
            missed=sum(r.missed for r in runs),
            fired_at=[],
            rates=tuple(r.fired_per_second for r in runs),
        )

    def quantile(self, q: float) -> float:
        if not self.late_ms:
            return float("nan")
        ordered = sorted(self.late_ms)
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Pattern:
    """The measured timers: `count` of them, `spacing` seconds apart."""

    count: int
    spacing: float

    @classmethod
    def parse(cls, text: str) -> Pattern:
        count, _, spacing_ms = text.partition("x")
        return cls(int(count), float(spacing_ms) / 1000)

    @property
    def offsets(self) -> list[float]:
        """Due offsets from the first measured timer; index 0 is an unmeasured warm-up."""
        return [-0.5] + [i * self.spacing for i in range(self.count)]

    def __str__(self) -> str:
        return f"{self.count} timers {self.spacing * 1000:g} ms apart"


@dataclass(frozen=True)
class Config:
    sizes: list[int]
    patterns: list[Pattern]
    rounds: int
    lateness_rounds: int
    p1_incidents: int
    aps_jobs: int
    add_job_budget: float
    workdir: Path
    config: Path


def _sqlite_url(path: Path, driver: str = "") -> str:
    return f"sqlite{driver}:///{path}"


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _settings(path: Path, config: Path) -> Settings:
    return Settings(
        database_url=_sqlite_url(path),
        playbooks_dir=config / "playbooks",
        comms_dir=config / "comms",
        runbooks_dir=config / "runbooks",
    )


def snapshot_config(workdir: Path) -> Path:
    """Copy playbooks/, comms/ and runbooks/ once, so one run sees one consistent set."""
    config = workdir / "config"
    for name in ("playbooks", "comms", "runbooks"):
        shutil.copytree(PROJECT_ROOT / name, config / name)
    bootstrap.check_playbooks(_settings(workdir / "unused.db", config))
    return config


async def _count(container: bootstrap.Container, sql: str, **params: Any) -> int:
    return await container.database.run(
        lambda session: int(session.execute(text(sql), params).scalar_one())
    )


async def _rows(container: bootstrap.Container, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return await container.database.run(
        lambda session: [tuple(row) for row in session.execute(text(sql), params)]
    )


# --- 1. throughput ---------------------------------------------------------------------------


async def _ours_throughput(cfg: Config) -> Throughput:
    incidents = cfg.p1_incidents
    settings = _settings(_fresh(cfg.workdir / "ours-throughput.db"), cfg.config)
    clock = SystemClock()
    recorder = RecordingEffects(clock=clock)
    container = await bootstrap.build(
        settings, clock=clock, effects=recorder.effects(JinjaRenderer(settings.comms_dir))
    )
    try:
        for i in range(3):  # warm-up: first-use costs (statement caches, imports)
            await declare_incident(
                container.runtime, title=f"warm-up {i}", severity=Severity.P1, by="bench"
            )
        before = await _count(container, "SELECT count(*) FROM step_occurrences")
        start = time.perf_counter()
        for i in range(incidents):
            await declare_incident(
                container.runtime, title=f"bench incident {i}", severity=Severity.P1, by="bench"
            )
        seconds = time.perf_counter() - start
        after = await _count(container, "SELECT count(*) FROM step_occurrences")
        return Throughput(after - before, seconds)
    finally:
        await container.close()


def _aps_store(path: Path, *, wal: bool) -> SQLAlchemyJobStore:
    if not wal:  # APScheduler's own default: a plain sync SQLAlchemy engine on the file
        return SQLAlchemyJobStore(url=_sqlite_url(path))
    engine = create_sync_engine(_sqlite_url(path))

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return SQLAlchemyJobStore(engine=engine)


def _aps_scheduler(store: SQLAlchemyJobStore) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    scheduler.start(paused=True)  # running, so add_job writes through to the store at once
    return scheduler


def _aps_throughput(path: Path, jobs: int, *, wal: bool) -> Throughput:
    store = _aps_store(_fresh(path), wal=wal)
    scheduler = _aps_scheduler(store)
    try:
        far = datetime.now(UTC) + FAR
        for i in range(3):
            scheduler.add_job(far_future_job, "date", run_date=far, id=f"warm-up-{i}")
        start = time.perf_counter()
        for i in range(jobs):
            scheduler.add_job(
                far_future_job, "date", run_date=far + timedelta(seconds=i), id=f"job-{i}"
            )
        seconds = time.perf_counter() - start
        with store.engine.connect() as connection:
            stored = connection.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar_one()
        assert stored == jobs + 3, f"{stored} jobs stored, expected {jobs + 3}"
        return Throughput(jobs, seconds)
    finally:
        scheduler.shutdown(wait=True)


@dataclass
class ThroughputResults:
    p1_incidents: int
    ours: list[Throughput] = field(default_factory=list)
    aps: list[Throughput] = field(default_factory=list)
    aps_wal: list[Throughput] = field(default_factory=list)


def _median_rate(runs: list[Throughput]) -> float:
    return statistics.median(r.rate for r in runs)


def measure_throughput(cfg: Config) -> ThroughputResults:
    results = ThroughputResults(p1_incidents=cfg.p1_incidents)
    for round_ in range(cfg.rounds):  # interleaved, so drifting machine load hits all alike
        ours = asyncio.run(_ours_throughput(cfg))
        aps = _aps_throughput(cfg.workdir / "aps-throughput.db", cfg.aps_jobs, wal=False)
        wal = _aps_throughput(cfg.workdir / "aps-wal-throughput.db", cfg.aps_jobs, wal=True)
        results.ours.append(ours)
        results.aps.append(aps)
        results.aps_wal.append(wal)
        _progress(
            f"throughput round {round_ + 1}/{cfg.rounds}: ours {ours.rate:,.0f}/s "
            f"({ours.timers} timers), APScheduler {aps.rate:,.0f}/s, "
            f"APScheduler+WAL {wal.rate:,.0f}/s"
        )
    return results


# --- 2. lateness: ours -----------------------------------------------------------------------


def _sql_instant(at: datetime) -> str:
    """How SQLAlchemy stores our UTCDateTime on SQLite: naive UTC text."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def _bulk_filler(path: Path, count: int, template_id: int, first_due: datetime) -> None:
    """`count` pending occurrences far in the future, 10 per dummy incident, in one transaction.

    Rows are cloned from a template occurrence (and its incident) that the engine itself
    planned, so they stay valid whatever columns the tables grow. The scheduler only claims
    by (state, run_at), so these are as good as planned ones.
    """
    if count <= 0:
        return
    per_incident = 10
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        incident_id = connection.execute(
            "SELECT subject_id FROM step_occurrences WHERE id = ?", (template_id,)
        ).fetchone()[0]
        keep = [c for c in _columns(connection, "incidents") if c not in ("id", "idempotency_key")]
        first = int(connection.execute("SELECT max(id) FROM incidents").fetchone()[0]) + 1
        incidents = (count + per_incident - 1) // per_incident
        connection.executemany(
            f"INSERT INTO incidents (id, {', '.join(keep)}) "
            f"SELECT ?, {', '.join(keep)} FROM incidents WHERE id = ?",
            ((first + k, incident_id) for k in range(incidents)),
        )
        varying = ("id", "subject_id", "occurrence", "due_at", "run_at", "state")
        keep = [c for c in _columns(connection, "step_occurrences") if c not in varying]
        connection.executemany(
            f"INSERT INTO step_occurrences (subject_id, occurrence, due_at, run_at, state, "
            f"{', '.join(keep)}) SELECT ?, ?, ?, ?, 'pending', {', '.join(keep)} "
            "FROM step_occurrences WHERE id = ?",
            (
                (
                    first + i // per_incident,
                    i % per_incident + 1,
                    due := _sql_instant(first_due + timedelta(seconds=i)),
                    due,
                    template_id,
                )
                for i in range(count)
            ),
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


def _shift_incidents(path: Path, incident_ids: list[int], delta: timedelta) -> None:
    """Move incidents and all their occurrences in time, as if declared `delta` later."""
    marks = ",".join("?" * len(incident_ids))
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        incidents = connection.execute(
            f"SELECT id, declared_at FROM incidents WHERE id IN ({marks})", incident_ids
        ).fetchall()
        connection.executemany(
            "UPDATE incidents SET declared_at = ? WHERE id = ?",
            ((_sql_instant(_parse_instant(at) + delta), id_) for id_, at in incidents),
        )
        occurrences = connection.execute(
            f"SELECT id, due_at, run_at FROM step_occurrences "
            f"WHERE subject_kind = 'incident' AND subject_id IN ({marks})",
            incident_ids,
        ).fetchall()
        connection.executemany(
            "UPDATE step_occurrences SET due_at = ?, run_at = ? WHERE id = ?",
            (
                (
                    _sql_instant(_parse_instant(due) + delta),
                    _sql_instant(_parse_instant(run) + delta),
                    id_,
                )
                for id_, due, run in occurrences
            ),
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


async def _ours_lateness(cfg: Config, pending: int, pattern: Pattern) -> Lateness:
    path = _fresh(cfg.workdir / f"ours-lateness-{pending}.db")
    settings = _settings(path, cfg.config)
    # The real clock drives the scheduler and stamps each effect: its wall time.
    clock = SystemClock()
    recorder = RecordingEffects(clock=clock)
    container = await bootstrap.build(
        settings, clock=clock, effects=recorder.effects(JinjaRenderer(settings.comms_dir))
    )
    try:
        setup_start = time.perf_counter()
        # The measured timers: P4 incidents, whose first step is due the instant they are
        # declared; the rest of a P4 playbook is due hours later. Index 0 warms up.
        base = datetime.now(UTC) + PLACEHOLDER
        offsets = pattern.offsets
        pinned = PinnedClock(base)
        declaring = Runtime(
            store=container.store, playbooks=container.runtime.playbooks, clock=pinned
        )
        incident_ids: list[int] = []
        for i, offset in enumerate(offsets):
            pinned.at = base + timedelta(seconds=offset)
            incident, _ = await declare_incident(
                declaring, title=f"measured {i}", severity=Severity.P4, by="bench"
            )
            assert incident.id is not None
            incident_ids.append(incident.id)
        # One more, a month on: the template the filler timers are cloned from.
        pinned.at = base + FAR
        await declare_incident(declaring, title="filler", severity=Severity.P4, by="bench")
        soon = await _rows(
            container,
            "SELECT subject_id, step_id FROM step_occurrences WHERE due_at <= :soon "
            "ORDER BY subject_id",
            soon=_sql_instant(base + timedelta(hours=1)),
        )
        steps = {step for _, step in soon}
        if [id_ for id_, _ in soon] != incident_ids or len(steps) != 1:
            raise SystemExit(
                "bench: expected a P4 incident to plan exactly one step at its declaration "
                f"(got {len(soon)} for {len(incident_ids)} incidents: {sorted(steps)}); "
                "the P4 playbook changed, adapt _ours_lateness"
            )
        (measured_step,) = steps
        far_query = "SELECT count(*) FROM step_occurrences WHERE state = 'pending' AND run_at > :t"
        soon_limit = _sql_instant(base + timedelta(hours=1))
        planned_far = await _count(container, far_query, t=soon_limit)
        template = await _count(
            container,
            "SELECT max(id) FROM step_occurrences WHERE step_id = :step",
            step=measured_step,
        )
        _bulk_filler(path, pending - planned_far, template, base + FAR)
        setup_seconds = time.perf_counter() - setup_start
        far = await _count(container, far_query, t=soon_limit)
        assert far == max(pending, planned_far), f"{far} far timers, wanted {pending}"

        # Now move the measured incidents so the first measured timer is LEAD s from now.
        start_wall = time.time()
        t0 = datetime.fromtimestamp(start_wall + LEAD, UTC)
        _shift_incidents(path, incident_ids, t0 - base)
        due = {
            f"inc-{id_}/{measured_step}/1": (t0 + timedelta(seconds=offset)).timestamp()
            for id_, offset in zip(incident_ids[1:], offsets[1:], strict=True)
        }
        stop = asyncio.Event()
        margin = t0.timestamp() - time.time()
        frozen_heap()  # as `incident serve` runs
        runner = asyncio.create_task(container.engine.loops["main"].run(stop))
        timeout = LEAD + offsets[-1] + 60.0
        with contextlib.suppress(TimeoutError):
            all_fired = recorder.wait_until(lambda: all(recorder.sent(k) for k in due))
            await asyncio.wait_for(all_fired, timeout=timeout)
        stop.set()
        await runner
        fired = {k: sent.at.timestamp() for k in due if (sent := recorder.sent(k)) is not None}
        late = [(fired[k] - at) * 1000 for k, at in due.items() if k in fired]
        return Lateness(
            fired_at=list(fired.values()),
            pending=far,
            setup_seconds=setup_seconds,
            setup_method="declare_incident (measured) + bulk SQL (filler)",
            margin_seconds=margin,
            late_ms=late,
            missed=len(due) - len(late),
        )
    finally:
        gc.unfreeze()
        await container.close()


def frozen_heap() -> None:
    """Collect and freeze what set-up made, as `incident serve` does once its engine runs
    (`freeze_heap_after_start`): full collections then walk only what is made since. Done
    for both systems before their measured timers; undone after."""
    gc.collect()
    gc.freeze()


# --- 2. lateness: APScheduler ----------------------------------------------------------------


def _aps_bulk_load(
    scheduler: BackgroundScheduler, store: SQLAlchemyJobStore, count: int, first: datetime
) -> None:
    """Write jobs exactly as SQLAlchemyJobStore.add_job does, but in one transaction."""
    batch: list[dict[str, Any]] = []
    defaults = {"misfire_grace_time": 1, "coalesce": True, "max_instances": 1}  # add_job's
    with store.engine.begin() as connection:
        for i in range(count):
            trigger = scheduler._create_trigger("date", {"run_date": first + timedelta(seconds=i)})
            job = Job(
                scheduler,
                id=f"far-{i}",
                func=far_future_job,
                trigger=trigger,
                executor="default",
                args=(),
                kwargs={},
                name=far_future_job.__name__,
                next_run_time=trigger.run_date,
                **defaults,
            )
            batch.append(
                {
                    "id": job.id,
                    "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                    "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
                }
            )
            if len(batch) == 5000:
                connection.execute(store.jobs_t.insert(), batch)
                batch.clear()
        if batch:
            connection.execute(store.jobs_t.insert(), batch)


def _aps_lateness(cfg: Config, pending: int, pattern: Pattern, add_rate: float) -> Lateness:
    path = _fresh(cfg.workdir / f"aps-lateness-{pending}.db")
    store = _aps_store(path, wal=False)
    scheduler = _aps_scheduler(store)
    try:
        setup_start = time.perf_counter()
        first_far = datetime.now(UTC) + FAR
        projected = pending / add_rate
        if projected <= cfg.add_job_budget:
            method = "add_job"
            for i in range(pending):
                scheduler.add_job(
                    far_future_job,
                    "date",
                    run_date=first_far + timedelta(seconds=i),
                    id=f"far-{i}",
                )
        else:
            method = f"bulk-loaded (add_job would take ~{projected:,.0f} s)"
            _aps_bulk_load(scheduler, store, pending, first_far)
        setup_seconds = time.perf_counter() - setup_start
        assert store.lookup_job("far-0") is not None

        # Measured jobs through add_job (durable writes) while paused; leave them time.
        offsets = pattern.offsets
        lead = LEAD + 2.0 * len(offsets) / add_rate + 0.5
        t0 = time.time() + lead
        due = {f"measured-{i}": t0 + offset for i, offset in enumerate(offsets)}
        _reset_fired(len(due))
        for key, at in due.items():
            scheduler.add_job(
                record_fire,
                "date",
                run_date=datetime.fromtimestamp(at, UTC),
                id=key,
                args=[key],
                misfire_grace_time=None,  # run it however late, so lateness is measured
            )
        margin = t0 - time.time()
        frozen_heap()
        scheduler.resume()
        _all_fired.wait(timeout=margin + offsets[-1] + 60.0)
        with _fired_lock:
            fired = dict(_fired)
        measured = {k: at for k, at in due.items() if k != "measured-0"}
        late = [(fired[k] - at) * 1000 for k, at in measured.items() if k in fired]
        return Lateness(
            fired_at=[fired[k] for k in measured if k in fired],
            pending=pending,
            setup_seconds=setup_seconds,
            setup_method=method,
            margin_seconds=margin,
            late_ms=late,
            missed=len(measured) - len(late),
        )
    finally:
        scheduler.shutdown(wait=True)
        gc.unfreeze()


@dataclass
class LatenessRow:
    pattern: Pattern
    ours: Lateness
    aps: Lateness


def measure_lateness(cfg: Config, add_rate: float) -> list[LatenessRow]:
    rows = []
    for pattern in cfg.patterns:
        for pending in cfg.sizes:
            # Rounds interleaved, their firings pooled: a p99 of a few hundred firings is
            # their one or two slowest, which move with the neighbours' load.
            runs = [
                (
                    asyncio.run(_ours_lateness(cfg, pending, pattern)),
                    _aps_lateness(cfg, pending, pattern, add_rate),
                )
                for _ in range(cfg.lateness_rounds)
            ]
            ours = Lateness.pooled([o for o, _ in runs])
            aps = Lateness.pooled([a for _, a in runs])
            for name, result in (("ours", ours), ("APScheduler", aps)):
                _progress(
                    f"lateness, {pattern}, N={pending:,}: {name} "
                    f"p50 {result.quantile(0.5):.1f} ms, p99 {result.quantile(0.99):.1f} ms, "
                    f"missed {result.missed} (setup {result.setup_seconds:.1f} s, "
                    f"{result.setup_method})"
                )
            rows.append(LatenessRow(pattern, ours, aps))
    return rows


# --- report ----------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "incident", "playbooks"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}" + (
        f" + {len(dirty)} modified file(s) in incident/ or playbooks/" if dirty else ""
    )


def machine(load_before: str) -> list[str]:
    return [
        "## Machine",
        "",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {_version('sqlalchemy')}, "
        f"APScheduler {_version('apscheduler')}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {_load()}",
        f"- Code: {_git_state()}",
        "",
    ]


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.1f}x" if theirs else "n/a"


def throughput_table(results: ThroughputResults) -> list[str]:
    ours, aps, wal = (_median_rate(r) for r in (results.ours, results.aps, results.aps_wal))
    per_incident = results.ours[0].timers / results.p1_incidents
    lines = [
        "## 1. Durable timers scheduled per second",
        "",
        f"Median of {len(results.ours)} interleaved round(s). Sequential, one writer.",
        "",
        "| system | how a timer is written | timers per round | timers/s | ours vs this |",
        "|---|---|---:|---:|---:|",
        f"| **ours** | `declare_incident` P1, {per_incident:.0f} occurrence rows per incident "
        f"in one transaction (WAL, synchronous=FULL) | {results.ours[0].timers:,} "
        f"| {ours:,.0f} | - |",
        f"| APScheduler 3 | `add_job(..., 'date')`, SQLAlchemyJobStore defaults "
        f"(rollback journal, synchronous=FULL) | {results.aps[0].timers:,} | {aps:,.0f} "
        f"| **{_ratio(ours, aps)}** |",
        f"| APScheduler 3 (reference) | same, with our pragmas (WAL, synchronous=FULL) "
        f"| {results.aps_wal[0].timers:,} | {wal:,.0f} | {_ratio(ours, wal)} |",
        "",
        f"Target ours >= 10x APScheduler: **{'met' if ours >= 10 * aps else 'MISSED'}** "
        f"({_ratio(ours, aps)}).",
        "",
    ]
    return lines


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def lateness_table(rows: list[LatenessRow]) -> list[str]:
    lines = [
        "## 2. Firing lateness (actual fire time - due time), milliseconds",
        "",
        f"The first measured timer is due {LEAD:.0f} s after its scheduler starts; N timers are "
        "pending a month ahead. Fire time is taken inside the effect (ours) / job function "
        "(APScheduler). Each cell pools the firings of its rounds (see the command's "
        "`--lateness-rounds`); fired/s is the median round's.",
        "",
    ]
    for pattern in dict.fromkeys(r.pattern for r in rows):
        lines += [
            f"### {pattern} ({pattern.count * pattern.spacing:.1f} s of real time, "
            f"{1 / pattern.spacing:.0f} timers/s)",
            "",
            "| N pending | ours p50 | ours p99 | ours max | APS p50 | APS p99 | APS max "
            "| p99 ours/APS | fired/s ours/APS | missed ours/APS | setup ours (s) "
            "| setup APS (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in (r for r in rows if r.pattern == pattern):
            o, a = row.ours, row.aps
            lines.append(
                f"| {o.pending:,} | {_ms(o.quantile(0.5))} | **{_ms(o.quantile(0.99))}** "
                f"| {_ms(max(o.late_ms, default=float('nan')))} | {_ms(a.quantile(0.5))} "
                f"| **{_ms(a.quantile(0.99))}** | {_ms(max(a.late_ms, default=float('nan')))} "
                f"| {_ratio(o.quantile(0.99), a.quantile(0.99))} "
                f"| {o.fired_per_second:,.0f}/{a.fired_per_second:,.0f} | {o.missed}/{a.missed} "
                f"| {o.setup_seconds:.1f} | {a.setup_seconds:.1f}, {a.setup_method} |"
            )
        lines.append("")
    lines += ["Targets:", ""]
    for pattern in dict.fromkeys(r.pattern for r in rows):
        chosen = [r for r in rows if r.pattern == pattern]
        worse = [r.ours.pending for r in chosen if r.ours.quantile(0.99) > r.aps.quantile(0.99)]
        verdict = (
            "**met**" if not worse else f"**MISSED** at N = {', '.join(f'{n:,}' for n in worse)}"
        )
        biggest = max(chosen, key=lambda r: r.ours.pending)
        p99 = biggest.ours.quantile(0.99)
        lines += [
            f"- {pattern}: ours p99 <= APScheduler p99: {verdict}; ours p99 < 50 ms at "
            f"N = {biggest.ours.pending:,}: **{'met' if p99 < 50 else 'MISSED'}** "
            f"({p99:,.1f} ms).",
        ]
    margins = [m for r in rows for m in (r.ours.margin_seconds, r.aps.margin_seconds)]
    lines += [
        "",
        f"Every scheduler was started at least {min(margins):.2f} s before the first measured "
        "timer was due.",
        "",
    ]
    return lines


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="pending timer counts, e.g. 1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--rounds", type=int, help="interleaved throughput rounds")
    parser.add_argument(
        "--lateness-rounds",
        type=int,
        help="rounds per lateness cell, interleaved, firings pooled (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--patterns",
        help="measured timers as COUNTxSPACING_MS, comma-separated (default 200x10,50x100)",
    )
    parser.add_argument(
        "--add-job-budget",
        type=float,
        default=30.0,
        help="bulk-load APScheduler's far-future jobs when add_job would take longer (s)",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-lateness", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    default_sizes = "1000" if args.quick else "1000,10000,100000"
    default_patterns = "100x10,20x100" if args.quick else "200x10,50x100"
    sizes = [int(s.replace("_", "")) for s in (args.sizes or default_sizes).split(",") if s]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = RESULTS_DIR / f"work-{os.getpid()}"
    workdir.mkdir()
    load_before = _load()
    started = time.perf_counter()
    report = ["# Durable timers: ours vs APScheduler 3", ""]
    try:
        try:
            config = snapshot_config(workdir)
        except InvalidPlaybook as error:
            _progress(f"the playbooks do not load, nothing measured:\n{error}")
            return 2
        cfg = Config(
            sizes=sizes,
            patterns=[Pattern.parse(p) for p in (args.patterns or default_patterns).split(",")],
            rounds=args.rounds or (1 if args.quick else 3),
            lateness_rounds=args.lateness_rounds or (1 if args.quick else 3),
            p1_incidents=60 if args.quick else 200,
            aps_jobs=300 if args.quick else 1000,
            add_job_budget=args.add_job_budget,
            workdir=workdir,
            config=config,
        )
        add_rate = 250.0  # only used when throughput is skipped
        throughput: ThroughputResults | None = None
        if not args.skip_throughput:
            throughput = measure_throughput(cfg)
            add_rate = _median_rate(throughput.aps)
        lateness = [] if args.skip_lateness else measure_lateness(cfg, add_rate)
        report += machine(load_before)
        if throughput is not None:
            report += throughput_table(throughput)
        if lateness:
            report += lateness_table(lateness)
        report.append(f"Total run time {time.perf_counter() - started:.0f} s.")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    output = "\n".join(report) + "\n"
    print(output)
    target = RESULTS_DIR / f"timers-{time.strftime('%Y%m%d-%H%M%S')}.md"
    target.write_text(output)
    _progress(f"written to {target.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
