"""The scale fleet generator and the fleet summaries, on SQLite and PostgreSQL.

Generated histories must be what the services would have written: a valid chain per module (the ledger's
own verify and chain_hash), projections that replay from the events, times that only increase. The
summaries must say what app.fleet.reports says over the same events, after a full and after an
incremental rebuild.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.core.auth.domain import Principal
from app.core.db import Database, UnitOfWork
from app.core.definitions import load_lifecycle
from app.core.errors import Conflict
from app.core.ledger import service as ledger
from app.core.ledger.domain import GENESIS, chain_hash
from app.core.ledger.models import Event
from app.core.lifecycle.domain import replay
from app.factory.models import Module
from app.fleet import reports, summary
from app.fleet.generate import generate, generate_command
from app.fleet.service import report_frames
from app.fleet.summary_models import StageVisit
from app.sites.models import Site

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
MODULES = 150
COMPOSITION = ("modules_by_state", "modules_by_country", "modules_by_site", "site_utilisation")
SUMMARISED = ("cycle_times", "commissioning_durations")
ADMIN = Principal(user_id=0, username="admin", roles=("admin",), via="test")


async def _generated(url: str, modules: int = MODULES, **options: Any) -> Database:
    await generate(url, modules, seed=11, now=NOW, workers=1, **options)
    return Database(url, pool_size=2)


async def _events_by_module(uow: UnitOfWork) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for event in await uow.session.scalars(select(Event).order_by(Event.module_id, Event.seq)):
        out.setdefault(event.module_id, []).append(event)
    return out


async def test_generated_fleet_has_valid_chains_and_consistent_projections(empty_url: str) -> None:
    db = await _generated(empty_url)
    try:
        async with db.read() as uow:
            verified = await ledger.verify(uow)
            assert verified.ok, verified.first_broken
            assert verified.modules_checked == MODULES
            modules = list(await uow.session.scalars(select(Module).order_by(Module.id)))
            sites = {s.id: s.code for s in await uow.session.scalars(select(Site))}
            events = await _events_by_module(uow)
        assert len(modules) == MODULES
        assert 60 <= verified.events_checked / MODULES <= 140, "about 100 events a module"
        states = Counter(m.state for m in modules)
        assert states["in_service"] > MODULES / 2
        assert len(states) >= 10, states
        types = {e.type for es in events.values() for e in es}
        for kind in ("scan.recorded", "factory.part_installed", "burnin.run_started", "custody.handoff"):
            assert kind in types
        assert {"checklist.answered", "shipment.leg_departed", "certificate.issued", "lifecycle.hold"} <= types
        for module in modules:
            history = events[module.id]
            projection = replay((e.type, e.payload) for e in history)
            assert projection is not None
            assert module.state == projection.state
            assert module.version == projection.version == len(history)
            assert module.head_hash == history[-1].hash
            assert sites.get(module.site_id) == projection.site
            assert (module.hold_return_state, module.hold_reason) == (
                projection.hold_return_state,
                projection.hold_reason,
            )
            assert (module.created_at, module.updated_at) == (history[0].at, history[-1].at)
            assert all(a.at < b.at for a, b in itertools.pairwise(history)), module.serial
            assert history[-1].at < NOW
            assert module.serial[4:6] == f"{history[0].at.year % 100:02d}"
            for event in history[:3]:  # the ledger's own hash function agrees with the bulk path
                assert chain_hash(event.prev_hash, ledger.to_record(event, module.serial)) == event.hash
            assert history[0].prev_hash == GENESIS
            for event in history:  # times inside payloads are real times too, close to the event's
                for key in ("scanned_at", "answered_at"):
                    if key in event.payload:
                        assert abs(dt.datetime.fromisoformat(event.payload[key]) - event.at) < dt.timedelta(seconds=1)
                if "planned_arrival" in event.payload:
                    assert dt.datetime.fromisoformat(event.payload["planned_arrival"]) > event.at
            assert all(e.payload["from"] != e.payload["to"] for e in history if e.type == "lifecycle.hold")
    finally:
        await db.dispose()


def _frame_rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row) for row in df.itertuples(False)]


def _assert_close(ours: pd.DataFrame, theirs: pd.DataFrame, name: str) -> None:
    """Same columns and rows; floats within a rounding step (percentiles are computed in another order)."""
    assert list(ours.columns) == list(theirs.columns), name
    mine, expected = _frame_rows(ours), _frame_rows(theirs)
    assert len(mine) == len(expected), (name, mine, expected)
    for a, b in zip(mine, expected, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(y, float) and x is not None:
                assert math.isclose(x, y, abs_tol=0.011), (name, a, b)
            else:
                assert x == y, (name, a, b)


async def _assert_summaries_match_reports(db: Database) -> None:
    async with db.read() as uow:
        assert not await summary.behind(uow)
        frames = await report_frames(uow)
        ours = await summary.tables(uow)
        visits = (
            await uow.session.execute(
                select(Module.serial, StageVisit.stage, StageVisit.completed, StageVisit.hours)
                .join(Module, Module.id == StageVisit.module_id)
                .order_by(Module.serial, StageVisit.visit)
            )
        ).all()
    theirs = reports.dashboard(frames)
    assert list(ours) == list(theirs)
    for name in COMPOSITION:
        pd.testing.assert_frame_equal(ours[name], theirs[name], check_dtype=True, obj=name)
    for name in (*SUMMARISED, "burnin_first_pass_yield", "failure_reasons", "transit_times"):
        _assert_close(ours[name], theirs[name], name)
    expected = reports.stage_visits(frames["events"])
    assert len(visits) == len(expected)
    for (serial, stage, completed, hours), row in zip(visits, expected.itertuples(False), strict=True):
        assert (serial, stage, completed) == (row.module, row.stage, row.completed)
        if hours is None:
            assert math.isnan(row.hours)
        else:
            assert math.isclose(hours, row.hours, rel_tol=1e-9, abs_tol=1e-9)


async def test_summaries_agree_with_the_pandas_reports(empty_url: str) -> None:
    db = await _generated(empty_url)
    try:
        await _assert_summaries_match_reports(db)
        async with db.read() as uow:
            tables = await summary.tables(uow)
        assert len(tables["cycle_times"]) >= 5
        assert tables["commissioning_durations"]["commissioned"].sum() > 0
    finally:
        await db.dispose()


async def test_rebuild_is_incremental_after_appends(empty_url: str) -> None:
    from app.core.lifecycle.schemas import TransitionRequest
    from app.core.lifecycle.service import transition

    db = await _generated(empty_url, 40)
    lifecycle = load_lifecycle()
    try:
        async with db.read() as uow:
            serving = await uow.session.scalar(select(Module.serial).where(Module.state == "in_service").limit(1))
            built = await uow.session.scalar(select(Module.serial).where(Module.state == "assembled").limit(1))
        steps = [(serving, "hold", {"reason": "Coolant alarm; isolating"}), (serving, "release", {})]
        steps += [(serving, "start_decommissioning", {"reason": "Contract ended"})]
        if built:
            steps.append((built, "start_burn_in", {}))
        for serial, name, payload in steps:
            async with db.write() as uow:
                await transition(uow, lifecycle, serial, TransitionRequest(name, payload), ADMIN)
            async with db.read() as uow:
                assert await summary.behind(uow)
            async with db.write() as uow:
                report = await summary.rebuild(uow)
            assert 1 <= report.modules <= 40
            await _assert_summaries_match_reports(db)
        # Nothing new: nothing to do. Everything again: the same tables.
        async with db.write() as uow:
            assert (await summary.rebuild(uow)).modules == 0
        async with db.read() as uow:
            before = await summary.tables(uow)
        async with db.write() as uow:
            assert 30 <= (await summary.rebuild(uow, full=True)).modules <= 40  # those with lifecycle events
        for name, table in (await summary.dashboard(db)).items():
            pd.testing.assert_frame_equal(table, before[name], obj=name)
    finally:
        await db.dispose()


async def test_generating_into_a_fleet_is_refused_unless_appending(empty_url: str) -> None:
    db = await _generated(empty_url, 5)
    try:
        with pytest.raises(Conflict, match="holds 5 modules"):
            await generate(empty_url, 5, seed=11, now=NOW, workers=1)
        await generate(empty_url, 5, seed=12, now=NOW, workers=1, append=True)
        async with db.read() as uow:
            serials = sorted(await uow.session.scalars(select(Module.serial)))
            assert len(serials) == 10
            assert sorted(int(s[-6:]) for s in serials) == list(range(1, 11))
            assert (await ledger.verify(uow)).ok
        await _assert_summaries_match_reports(db)
    finally:
        await db.dispose()


async def test_summary_tables_match_the_reports_on_the_demo_fleet(demo_url: str) -> None:
    db = Database(demo_url, pool_size=2)
    try:
        async with db.write() as uow:
            await summary.rebuild(uow)
        await _assert_summaries_match_reports(db)
    finally:
        await db.dispose()


@pytest.mark.postgres
def test_parallel_writers_give_the_same_fleet(request: pytest.FixtureRequest, tmp_path: Any) -> None:
    """Two worker processes (the path a large fleet takes) write what one process writes."""
    from tests.conftest import _fresh_url

    async def written(url: str, workers: int) -> list[tuple[str, str]]:
        await generate(url, 30, seed=5, now=NOW, workers=workers, batch=10, summarise=False)
        db = Database(url, pool_size=1)
        try:
            async with db.read() as uow:
                assert (await ledger.verify(uow)).ok
                return [tuple(r) for r in await uow.session.execute(select(Module.serial, Module.head_hash))]
        finally:
            await db.dispose()

    fleets = []
    for workers in (1, 2):
        databases = _fresh_url(request, "postgresql", "empty", tmp_path)
        try:
            fleets.append(sorted(asyncio.run(written(next(databases), workers))))
        finally:
            databases.close()
    assert fleets[0] == fleets[1]


def test_visits_follow_holds_like_the_report() -> None:
    """The per-module rule against reports.stage_visits, on a history with a hold resumed and one not."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    spec = [
        ("lifecycle.start_assembly", 0, "assembling"),
        ("lifecycle.hold", 5, "on_hold"),
        ("lifecycle.release", 9, "assembling"),  # resumes: 5 h + 3 h
        ("lifecycle.complete_assembly", 12, "assembled"),
        ("lifecycle.hold", 20, "on_hold"),  # held at the end: assembled stays open
    ]
    events = [(i + 2, t, t0 + dt.timedelta(hours=h), "F1", to) for i, (t, h, to) in enumerate(spec)]
    ours = summary.visits_of(7, events, "on_hold")
    frame = pd.DataFrame(
        {
            "module": "M",
            "seq": [e[0] for e in events],
            "type": [e[1] for e in events],
            "at": pd.to_datetime([e[2] for e in events], utc=True),
            "place": "F1",
            "to_state": [e[4] for e in events],
            "payload": [{} for _ in events],
        }
    )
    theirs = reports.stage_visits(frame)
    assert [(v[2], v[6], v[7]) for v in ours] == [("assembling", 8.0, True), ("assembled", None, False)]
    assert list(theirs["stage"]) == ["assembling", "assembled"]
    assert theirs["hours"].iloc[0] == 8.0 and math.isnan(theirs["hours"].iloc[1])
    assert summary.quantiles([4.0, 1.0, 2.0, 3.0]) == (2.5, pd.Series([1.0, 2, 3, 4]).quantile(0.9))


def test_generate_command(tmp_path: Any) -> None:
    from app.core import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)
    env = {"AFM_DATABASE_URL": url, "AFM_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    done = runner.invoke(generate_command, ["--modules", "3", "--seed", "2"], env=env)
    assert done.exit_code == 0, done.output
    assert "generated 3 modules" in done.output
    again = runner.invoke(generate_command, ["--modules", "3"], env=env)
    assert again.exit_code == 1 and "--append" in again.output
    assert runner.invoke(generate_command, ["--modules", "2", "--append"], env=env).exit_code == 0
