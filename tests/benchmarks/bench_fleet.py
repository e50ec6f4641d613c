"""The fleet at scale on PostgreSQL: 100 000 modules, ~10 M events, written by `afm demo generate`.

A fresh database is migrated and filled by app.fleet.generate (COPY from worker processes), the summaries
are rebuilt, then, warm, each measured as the median of several runs:

- the fleet dashboard's read path (app.fleet.summary.dashboard: the watermark check and every table of
  app.fleet.reports.TABLES from the summaries and grouped module counts), budget 200 ms;
- a module timeline as GET /modules/{serial}/events reads it (app.factory.service.module_events: the
  module, then its events by (module_id, seq)), budget 20 ms;

each against `SELECT count(*) FROM events` measured in the same run (one pass over the ledger: what any
report that reads the events pays at least), and against its budget. AFM_BENCH_FLEET_MODULES sets the size.
The database is dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.benchmarks.common import Result
from tests.pg_admin import run_admin

ADMIN_URL = os.environ.get("AFM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MODULES = 100_000
DASHBOARD_BUDGET_S = 0.200
TIMELINE_BUDGET_S = 0.020
BASELINE_RUNS = 5
DASHBOARD_RUNS = 15
TIMELINES = 50


async def _admin(url: str, statements: list[str]) -> None:
    await run_admin(url, statements)


async def _median(fn: Callable[[], Awaitable[Any]], runs: int, warm: int = 1) -> float:
    for _ in range(warm):
        await fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rows(name: str, seconds: float, baseline_s: float, budget_s: float) -> list[Result]:
    ms = f"{seconds * 1000:.1f} ms"
    return [
        Result(
            name=f"{name} vs one pass over the events",
            measured="queries per second (1 / median time)",
            value=1.0 / seconds,
            baseline_name="SELECT count(*) FROM events",
            baseline=1.0 / baseline_s,
            unit="q/s",
            goal=1.0,
            value_text=ms,
            baseline_text=f"{baseline_s * 1000:.1f} ms",
        ),
        Result(
            name=f"{name} vs its budget",
            measured="queries per second (1 / median time)",
            value=1.0 / seconds,
            baseline_name="budget",
            baseline=1.0 / budget_s,
            unit="q/s",
            goal=1.0,
            value_text=ms,
            baseline_text=f"{budget_s * 1000:.0f} ms",
        ),
    ]


async def _measure(url: str, modules: int) -> list[Result]:
    from sqlalchemy import select, text

    from app.core.db import Database
    from app.factory.models import Module
    from app.factory.service import module_events
    from app.fleet import summary
    from app.fleet.generate import generate

    def progress(done: int, total: int) -> None:
        if done == total or done % (total // 10 or 1) < 500:
            print(f"  generated {done:,}/{total:,} modules", file=sys.stderr)

    report = await generate(url, modules, seed=1, progress=progress)
    print(
        f"fleet: {report.modules:,} modules, {report.events:,} events generated in {report.seconds:.1f} s "
        f"({report.events_per_s:,.0f} events/s, {report.workers} writer processes); "
        f"summaries rebuilt in {report.summary_seconds:.1f} s",
        file=sys.stderr,
    )
    db = Database(url, pool_size=2)
    try:
        async with db.read() as uow:
            serials = list(await uow.session.scalars(select(Module.serial).order_by(Module.id)))

        async def count() -> None:
            async with db.read() as uow:
                await uow.session.scalar(text("SELECT count(*) FROM events"))

        async def dashboard() -> None:
            tables = await summary.dashboard(db)
            assert tables["modules_by_state"]["modules"].sum() == len(serials)

        chosen = random.Random(7).sample(serials, min(TIMELINES, len(serials)))
        turn = iter(range(10**9))

        async def timeline() -> None:
            serial = chosen[next(turn) % len(chosen)]
            async with db.read() as uow:
                events = await module_events(uow, serial)
            assert events, serial

        baseline_s = await _median(count, BASELINE_RUNS)
        dashboard_s = await _median(dashboard, DASHBOARD_RUNS, warm=2)
        timeline_s = await _median(timeline, len(chosen), warm=len(chosen))
        print(
            f"count(*) over events {baseline_s * 1000:.1f} ms, dashboard {dashboard_s * 1000:.1f} ms, "
            f"timeline {timeline_s * 1000:.2f} ms (medians)",
            file=sys.stderr,
        )
    finally:
        await db.dispose()
    size = f"{report.modules:,} modules, {report.events:,} events"
    return [
        *_rows(f"fleet dashboard, all tables ({size})", dashboard_s, baseline_s, DASHBOARD_BUDGET_S),
        *_rows(
            f"module timeline, ~{report.events // max(report.modules, 1)} events",
            timeline_s,
            baseline_s,
            TIMELINE_BUDGET_S,
        ),
    ]


def run(url: str | None = None, modules: int = MODULES) -> list[Result]:
    """The benchmark on a fresh database of the PostgreSQL server at `url` (default: the tests' server);
    [] with a printed reason when there is none."""
    from sqlalchemy.engine import make_url

    from app.core import migrate

    modules = int(os.environ.get("AFM_BENCH_FLEET_MODULES", modules))
    admin = url or ADMIN_URL
    try:
        asyncio.run(_admin(admin, ["SELECT 1"]))
    except Exception as exc:
        print(f"fleet benchmark skipped: PostgreSQL not reachable at {admin}: {exc!r}", file=sys.stderr)
        return []
    name = f"afm_bench_fleet_{uuid.uuid4().hex[:8]}"
    target = make_url(admin).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(admin, [f'CREATE DATABASE "{name}"']))
    try:
        migrate.upgrade(target)
        return asyncio.run(_measure(target, modules))
    finally:
        asyncio.run(_admin(admin, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


if __name__ == "__main__":
    from tests.benchmarks.common import table

    print(table(run()))
