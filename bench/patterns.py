"""Assigning a new case to its cluster as the service does it: in a database transaction,
with 100,000 open cases already clustered in the database.

    .venv/bin/python bench/patterns.py [--open 100000] [--queries 1000]

bench/clusters.py times the matcher alone (`ClusterIndex`). This times what the
`compare-reports` step of a case does in its transaction (`Patterns.assign`): the case's
membership looked up, its signature worked out, the (category, component) key locked and its
version read, the index asked, the cluster and the membership written, the key's version
moved, and the trigger weighed (the cluster's members within the trigger window read back).

1. `--open` cases of the same generator as bench/clusters.py (12 regional copies of every
   problem over 3 days, one-offs naming made-up words) stored as cases on a SQLite file
   (WAL, as `incident serve` runs it) and assigned through `Patterns.assign`, a thousand per
   transaction (untimed: the setup).
2. `--queries` new cases, one transaction each, as the step runs: p50 / p99 / max of
   `Patterns.assign` inside the transaction (target p99 < 5 ms), and of the whole
   transaction with its durable commit.
3. The first assignment in a fresh process: it reads the key's clusters from the database
   into the index (what a restart, or another replica's change, costs once per key).

Markdown to stdout (progress to stderr), the figures as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(PROJECT_ROOT))  # tests.corpus, and this tree's incident

from clusters import workload  # noqa: E402 - the same open cases as the matcher's bench
from webhooks import quantile  # noqa: E402 - the same percentiles as the other benchmarks'

from incident import bootstrap  # noqa: E402
from incident.clock import FakeClock  # noqa: E402
from incident.config import PROJECT_ROOT as SHIPPED  # noqa: E402
from incident.config import Settings  # noqa: E402
from incident.domain.case import Case, Plan  # noqa: E402
from incident.domain.lifecycle import Severity  # noqa: E402
from incident.services.ports import Transaction  # noqa: E402
from incident.testing import RecordingEffects  # noqa: E402
from tests.corpus import Escalation  # noqa: E402

BATCH = 1000


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def case_of(n: int, escalation: Escalation) -> Case:
    return Case(
        reference=f"B-{n}",
        customer_id=escalation.customer,
        summary=escalation.text,
        plan=Plan.PRO,
        priority=Severity.P3,
        opened_at=escalation.at,
        opened_by="bench",
        category=escalation.category,
        component=escalation.component,
    )


async def measure(open_cases: int, queries: int, directory: Path) -> dict[str, Any]:
    escalations = workload(open_cases, queries, one_key=False)
    loaded, new = escalations[:open_cases], escalations[open_cases:]
    clock = FakeClock(max(e.at for e in escalations))
    settings = Settings(
        database_url=f"sqlite:///{directory / 'patterns.db'}",
        playbooks_dir=SHIPPED / "playbooks",
        comms_dir=SHIPPED / "comms",
        runbooks_dir=SHIPPED / "runbooks",
    )
    vendor = RecordingEffects(clock=clock)
    app = await bootstrap.build(settings, clock=clock, effects=vendor.effects(_renderer()))
    try:
        started = time.perf_counter()
        for first in range(0, len(loaded), BATCH):
            batch = list(enumerate(loaded[first : first + BATCH], start=first))
            await app.store.run(partial(_assign_all, app, batch=batch))
            if first % 20_000 == 0:
                say(f"stored and assigned {first + len(batch):,} of {len(loaded):,}")
        setup = time.perf_counter() - started
        inside: list[float] = []
        whole: list[float] = []
        for n, escalation in enumerate(new, start=len(loaded)):
            started = time.perf_counter()
            inside.append(await app.store.run(partial(_timed, app, n=n, escalation=escalation)))
            whole.append((time.perf_counter() - started) * 1000)
        clusters = await app.store.run(_count_clusters)
    finally:
        await app.close()
    cold = await _first_in_a_fresh_process(settings, clock, new[0], len(escalations))
    return {
        "open_cases": len(loaded),
        "clusters": clusters,
        "setup_seconds": round(setup, 1),
        "assign_ms": _summary(inside),
        "transaction_ms": _summary(whole),
        "first_after_restart_ms": round(cold, 1),
    }


def _renderer() -> Any:
    from incident.adapters.files.templates import JinjaRenderer

    return JinjaRenderer(SHIPPED / "comms")


def _assign_all(
    app: bootstrap.Container, tx: Transaction, *, batch: Sequence[tuple[int, Escalation]]
) -> None:
    for n, escalation in batch:
        case = case_of(n, escalation)
        tx.add_case(case)
        app.patterns.assign(tx, case, escalation.at)


def _timed(app: bootstrap.Container, tx: Transaction, *, n: int, escalation: Escalation) -> float:
    case = case_of(n, escalation)
    tx.add_case(case)
    started = time.perf_counter()
    app.patterns.assign(tx, case, escalation.at)
    return (time.perf_counter() - started) * 1000


def _count_clusters(tx: Transaction) -> int:
    from sqlalchemy import func, select

    from incident.adapters.database.statements import clusters

    session = cast(Any, tx).session  # the SQL transaction's: a count the port has no use for
    return int(session.scalar(select(func.count()).select_from(clusters)) or 0)


async def _first_in_a_fresh_process(
    settings: Settings, clock: FakeClock, escalation: Escalation, n: int
) -> float:
    """The first assignment of a new container: the key's clusters read into its index."""
    vendor = RecordingEffects(clock=clock)
    app = await bootstrap.build(settings, clock=clock, effects=vendor.effects(_renderer()))
    try:
        started = time.perf_counter()
        await app.store.run(partial(_timed, app, n=n, escalation=escalation))
        return (time.perf_counter() - started) * 1000
    finally:
        await app.close()


def _summary(ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(quantile(ms, 0.50), 3),
        "p99": round(quantile(ms, 0.99), 3),
        "max": round(max(ms), 3),
    }


def report(argv: Sequence[str], figures: dict[str, Any]) -> str:
    inside, whole = figures["assign_ms"], figures["transaction_ms"]
    met = "met" if inside["p99"] < 5 else "MISSED"
    return "\n".join(
        [
            "# Assigning a case to its cluster, persisted",
            "",
            f"- {platform.machine()}, Python {platform.python_version()}",
            f"- Command: `python bench/patterns.py {' '.join(argv)}`",
            "",
            "| measurement | result | target |",
            "|---|---|---|",
            f"| open cases clustered in the database / clusters | {figures['open_cases']:,} / "
            f"{figures['clusters']:,} | |",
            f"| `Patterns.assign` in its transaction: p50 / p99 / max | {inside['p50']} / "
            f"**{inside['p99']}** / {inside['max']} ms | p99 < 5 ms: {met} |",
            f"| the whole transaction with its durable commit: p50 / p99 / max | "
            f"{whole['p50']} / {whole['p99']} / {whole['max']} ms | |",
            f"| the first assignment after a restart (the key's clusters read) | "
            f"{figures['first_after_restart_ms']} ms | |",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=100_000, help="open cases clustered first")
    parser.add_argument("--queries", type=int, default=1000, help="new cases assigned, timed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-patterns-") as directory:
        figures = asyncio.run(measure(args.open, args.queries, Path(directory)))
    text = report(list(argv or sys.argv[1:]), figures)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS_DIR / f"patterns-{stamp}.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
