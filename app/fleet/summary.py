"""Fleet summaries: the dashboard's tables at 10 M events without reading the events.

`report_frames` + `reports.dashboard` read every event into pandas, which is fine for the demo and hopeless
at scale. Here the event-derived inputs are kept in summary tables (app.fleet.summary_models), rebuilt
incrementally by `rebuild` from the events newer than a watermark, and `tables` answers the dashboard from
them plus grouped counts of `modules`, with the same columns as app.fleet.reports:

- `module_stage_visits`: each module's stays per state (reports.stage_visits), recomputed per module from
  its lifecycle events whenever it has new ones;
- `module_commissionings`: deliver → enter_service pairs (reports.commissioning_durations);
- `fleet_summary_stats`: per stage and per site, n, median and p90, recomputed for the keys whose rows
  changed (percentiles are not additive; one stage's are a sort of ~100 k floats).

The rebuild re-reads a module's whole lifecycle (a dozen or two events), so doing a module twice is harmless:
on PostgreSQL it re-reads the last OVERLAP event ids behind the watermark too, because ids are taken at
insert and a transaction can commit after a later id was already summarised.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, func, insert, literal_column, select, text

from app.core.db import Database, UnitOfWork, utcnow
from app.core.ledger.models import Event
from app.fleet.summary_models import LIFECYCLE_EVENTS, Commissioning, StageVisit, SummaryStat, SummaryWatermark

WATERMARK = "events"
OVERLAP = 1000  # event ids re-read behind the watermark on PostgreSQL (late commits)
CHUNK = 2000  # modules recomputed per round trip
COPY_FROM = 5000  # rows from which an insert goes through COPY on PostgreSQL
STAGE_HOURS = "stage_hours"
COMMISSIONING_DAYS = "commissioning_days"
DELIVER = "lifecycle.deliver"
ENTER_SERVICE = "lifecycle.enter_service"
VISIT_COLUMNS = ("module_id", "visit", "stage", "entered_seq", "entered_at", "left_at", "hours", "completed")
COMMISSIONING_COLUMNS = ("module_id", "seq", "site", "delivered_at", "in_service_at", "days")

LifecycleRow = tuple[int, str, dt.datetime, str, str | None]  # seq, type, at, place, to state
VisitRow = tuple[int, int, str, int, dt.datetime, dt.datetime | None, float | None, bool]
CommissioningRow = tuple[int, int, str | None, dt.datetime, dt.datetime, float]


class RebuildReport(msgspec.Struct):
    modules: int = 0  # modules recomputed
    visits: int = 0  # visit rows written
    commissionings: int = 0
    stats: int = 0  # keys whose percentiles were recomputed
    watermark: int = 0


# --- the pure part: one module's rows from its lifecycle events ------------------------------------------


def visits_of(module_id: int, events: Sequence[LifecycleRow], hold: str | None) -> list[VisitRow]:
    """reports.stage_visits for one module, from its lifecycle events in seq order.

    Each event but a hold opens a stay, except a release back to the state held from, which resumes it;
    a stay's hours sum its segments (the time on hold is left out); it is completed when its last segment
    ended with a move to another state than the hold."""
    out: list[VisitRow] = []
    current: list[Any] | None = None  # [stage, entered_seq, entered_at, left_at, hours, completed]
    count = len(events)
    for i, (seq, _type, at, _place, to) in enumerate(events):
        following = events[i + 1] if i + 1 < count else None
        end = following[2] if following is not None else None
        hours = (end - at).total_seconds() / 3600.0 if end is not None else None
        closed = following is not None and following[4] != hold
        if to == hold:
            continue
        resumed = i >= 2 and events[i - 1][4] == hold and to == events[i - 2][4]
        if resumed and current is not None:
            if hours is not None:
                current[4] = (current[4] or 0.0) + hours
            current[3], current[5] = end, closed
            continue
        if current is not None:
            out.append(_visit(module_id, len(out) + 1, current))
        current = [to, seq, at, end, hours, closed]
    if current is not None:
        out.append(_visit(module_id, len(out) + 1, current))
    return out


def _visit(module_id: int, number: int, v: list[Any]) -> VisitRow:
    stage, seq, entered, left, hours, completed = v
    return (module_id, number, stage, seq, entered, left, (hours or 0.0) if completed else None, completed)


def commissionings_of(
    module_id: int, events: Sequence[LifecycleRow], starts: Sequence[tuple[dt.datetime, str]]
) -> list[CommissioningRow]:
    """reports.commissioning_durations' rows for one module: each enter_service whose previous
    deliver/enter_service event is a deliver, with the site of the module's latest checklist started by
    then (`starts`: (started_at, site code), oldest first), else the event's place."""
    out: list[CommissioningRow] = []
    previous: tuple[str, dt.datetime] | None = None
    for seq, type_, at, place, _to in events:
        if type_ not in (DELIVER, ENTER_SERVICE):
            continue
        if type_ == ENTER_SERVICE and previous is not None and previous[0] == DELIVER:
            site = next((code for started, code in reversed(starts) if started <= at), None) or place or None
            out.append((module_id, seq, site, previous[1], at, (at - previous[1]).total_seconds() / 86400.0))
        previous = (type_, at)
    return out


def quantiles(values: Sequence[float]) -> tuple[float, float]:
    """Median and 90th percentile with linear interpolation (pandas' and percentile_cont's definition)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        position = (len(ordered) - 1) * q
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(0.5), at(0.9)


# --- the rebuild -------------------------------------------------------------------------------------------


def _hold_state() -> str | None:
    from app.core.definitions import load_lifecycle
    from app.fleet.reports import _hold_state as hold_of

    return hold_of(load_lifecycle())


async def watermark(uow: UnitOfWork) -> tuple[int, int]:
    """(the newest event id summarised, the newest event id)."""
    mark = await uow.session.scalar(select(SummaryWatermark.last_event_id).where(SummaryWatermark.name == WATERMARK))
    newest = await uow.session.scalar(select(func.max(Event.id)))
    return int(mark or 0), int(newest or 0)


async def behind(uow: UnitOfWork) -> bool:
    mark, newest = await watermark(uow)
    return newest > mark


def _to_state(dialect: str) -> Any:
    """payload["to"] read by the database, so that payloads do not cross the wire."""
    if dialect == "postgresql":
        return literal_column("CAST(events.payload AS JSON) ->> 'to'")
    return func.json_extract(Event.payload, "$.to")


async def rebuild(uow: UnitOfWork, *, full: bool = False) -> RebuildReport:
    """Bring the summaries up to the newest event: recompute the modules with lifecycle events newer
    than the watermark (all modules when there is none yet, or with `full`), then the percentiles of the
    stages and sites whose rows changed. Runs in the caller's write unit of work."""
    if not uow.writable:
        raise RuntimeError("summary rebuild outside a write unit of work")
    session = uow.session
    dialect = session.bind.dialect.name
    postgres = dialect == "postgresql"
    lock = select(SummaryWatermark).where(SummaryWatermark.name == WATERMARK)
    mark = await session.scalar(lock.with_for_update() if postgres else lock)  # one rebuild at a time
    if mark is None:
        mark = SummaryWatermark(name=WATERMARK, last_event_id=0, updated_at=utcnow())
        session.add(mark)
        await session.flush()
    newest = int(await session.scalar(select(func.max(Event.id))) or 0)
    report = RebuildReport(watermark=newest)
    if not full and newest <= mark.last_event_id:
        return report
    hold = _hold_state()
    everything = full or mark.last_event_id == 0
    if everything:
        changed = await _rebuild_all(uow, hold, report)
    else:
        since = max(0, mark.last_event_id - OVERLAP) if postgres else mark.last_event_id
        modules = list(
            await session.scalars(select(Event.module_id).distinct().where(Event.id > since, text(LIFECYCLE_EVENTS)))
        )
        changed = {STAGE_HOURS: set(), COMMISSIONING_DAYS: set()}
        for start in range(0, len(modules), CHUNK):
            part = await _recompute(uow, modules[start : start + CHUNK], hold, report)
            for metric, keys in part.items():
                changed[metric] |= keys
    report.stats = await _restat(uow, changed, everything)
    mark.last_event_id = newest
    mark.updated_at = utcnow()
    await session.flush()
    return report


def _lifecycle_rows(uow: UnitOfWork, modules: Sequence[int] | None) -> Any:
    """(module_id, seq, type, at, place, to) of lifecycle events, by module and seq (the partial index)."""
    dialect = uow.session.bind.dialect.name
    query = (
        select(Event.module_id, Event.seq, Event.type, Event.at, Event.place, _to_state(dialect))
        .where(text(LIFECYCLE_EVENTS))
        .order_by(Event.module_id, Event.seq)
    )
    if modules is not None:
        query = query.where(Event.module_id.in_(modules))
    return query


async def _checklist_starts(uow: UnitOfWork, modules: Sequence[int] | None) -> dict[int, list[tuple[dt.datetime, str]]]:
    from app.commissioning.models import ChecklistRun
    from app.sites.models import Site

    query = (
        select(ChecklistRun.module_id, ChecklistRun.started_at, Site.code)
        .join(Site, Site.id == ChecklistRun.site_id)
        .where(ChecklistRun.started_at.is_not(None))
        .order_by(ChecklistRun.module_id, ChecklistRun.started_at)
    )
    if modules is not None:
        query = query.where(ChecklistRun.module_id.in_(modules))
    starts: dict[int, list[tuple[dt.datetime, str]]] = {}
    for module_id, started, code in await uow.session.execute(query):
        starts.setdefault(module_id, []).append((started, code))
    return starts


def _rows_of(
    grouped: Iterable[tuple[int, list[LifecycleRow]]],
    starts: dict[int, list[tuple[dt.datetime, str]]],
    hold: str | None,
) -> tuple[list[VisitRow], list[CommissioningRow]]:
    visits: list[VisitRow] = []
    commissionings: list[CommissioningRow] = []
    for module_id, events in grouped:
        visits += visits_of(module_id, events, hold)
        commissionings += commissionings_of(module_id, events, starts.get(module_id, []))
    return visits, commissionings


def _group(rows: Iterable[Sequence[Any]]) -> list[tuple[int, list[LifecycleRow]]]:
    grouped: list[tuple[int, list[LifecycleRow]]] = []
    for module_id, seq, type_, at, place, to in rows:
        if not grouped or grouped[-1][0] != module_id:
            grouped.append((module_id, []))
        grouped[-1][1].append((seq, type_, at, place, to))
    return grouped


async def _recompute(
    uow: UnitOfWork, modules: list[int], hold: str | None, report: RebuildReport
) -> dict[str, set[str]]:
    """Replace these modules' rows; the keys (stage, site) whose completed rows changed."""
    session = uow.session
    old_visits = set(
        (
            await session.execute(
                select(*[getattr(StageVisit, c) for c in VISIT_COLUMNS]).where(StageVisit.module_id.in_(modules))
            )
        ).tuples()
    )
    old_commissionings = set(
        (
            await session.execute(
                select(*[getattr(Commissioning, c) for c in COMMISSIONING_COLUMNS]).where(
                    Commissioning.module_id.in_(modules)
                )
            )
        ).tuples()
    )
    rows = (await session.execute(_lifecycle_rows(uow, modules))).all()
    visits, commissionings = _rows_of(_group(rows), await _checklist_starts(uow, modules), hold)
    report.modules += len(modules)
    changed_visits = old_visits.symmetric_difference(visits)
    changed_commissionings = old_commissionings.symmetric_difference(commissionings)
    if changed_visits:
        await session.execute(delete(StageVisit).where(StageVisit.module_id.in_(modules)))
        await _insert(uow, StageVisit.__table__, VISIT_COLUMNS, visits)
        report.visits += len(visits)
    if changed_commissionings:
        await session.execute(delete(Commissioning).where(Commissioning.module_id.in_(modules)))
        await _insert(uow, Commissioning.__table__, COMMISSIONING_COLUMNS, commissionings)
        report.commissionings += len(commissionings)
    return {
        STAGE_HOURS: {row[2] for row in changed_visits if row[7]},
        COMMISSIONING_DAYS: {row[2] for row in changed_commissionings if row[2] is not None},
    }


async def _rebuild_all(uow: UnitOfWork, hold: str | None, report: RebuildReport) -> dict[str, set[str]]:
    """Every module from scratch, streaming the lifecycle events once."""
    session = uow.session
    postgres = session.bind.dialect.name == "postgresql"
    if postgres:
        await session.execute(text("TRUNCATE module_stage_visits, module_commissionings"))
    else:
        await session.execute(delete(StageVisit))
        await session.execute(delete(Commissioning))
    starts = await _checklist_starts(uow, None)
    connection = await session.connection()
    stream = await connection.stream((_lifecycle_rows(uow, None)).execution_options(yield_per=50_000))
    carry: list[Any] = []
    async for rows in stream.partitions():
        rows = carry + list(rows)
        last = rows[-1][0]
        split = len(rows)
        while split > 0 and rows[split - 1][0] == last:  # a module's events may straddle two partitions
            split -= 1
        carry = rows[split:]
        await _write_group(uow, _group(rows[:split]), starts, hold, report)
    if carry:
        await _write_group(uow, _group(carry), starts, hold, report)
    return {}


async def _write_group(
    uow: UnitOfWork,
    grouped: list[tuple[int, list[LifecycleRow]]],
    starts: dict[int, list[tuple[dt.datetime, str]]],
    hold: str | None,
    report: RebuildReport,
) -> None:
    if not grouped:
        return
    visits, commissionings = _rows_of(grouped, starts, hold)
    await _insert(uow, StageVisit.__table__, VISIT_COLUMNS, visits)
    await _insert(uow, Commissioning.__table__, COMMISSIONING_COLUMNS, commissionings)
    report.modules += len(grouped)
    report.visits += len(visits)
    report.commissionings += len(commissionings)


async def _insert(uow: UnitOfWork, table: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    session = uow.session
    if session.bind.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        # COPY on the unit of work's own connection: same transaction, a fraction of the round trips
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        await raw.copy_records_to_table(table.name, records=rows, columns=list(columns))
        return
    await session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


async def _restat(uow: UnitOfWork, changed: dict[str, set[str]], everything: bool) -> int:
    """Recompute n/median/p90 of the changed keys (all of them after a full rebuild)."""
    session = uow.session
    postgres = session.bind.dialect.name == "postgresql"
    sources = {
        STAGE_HOURS: (StageVisit.stage, StageVisit.hours, StageVisit.completed.is_(True)),
        COMMISSIONING_DAYS: (Commissioning.site, Commissioning.days, Commissioning.site.is_not(None)),
    }
    done = 0
    now = utcnow()
    for metric, (key, value, where) in sources.items():
        keys = None if everything else sorted(changed.get(metric, ()))
        if keys == []:
            continue
        clear = delete(SummaryStat).where(SummaryStat.metric == metric)
        chosen = [where] if keys is None else [where, key.in_(keys)]
        await session.execute(clear if keys is None else clear.where(SummaryStat.key.in_(keys)))
        if postgres:
            median = func.percentile_cont(0.5).within_group(value)
            p90 = func.percentile_cont(0.9).within_group(value)
            query = select(key, func.count(), median, p90).where(*chosen).group_by(key)
            rows = [(k, int(n), float(m), float(p)) for k, n, m, p in await session.execute(query)]
        else:
            values: dict[str, list[float]] = {}
            for k, v in await session.execute(select(key, value).where(*chosen)):
                values.setdefault(k, []).append(float(v))
            rows = [(k, len(vs), *quantiles(vs)) for k, vs in values.items()]
        if rows:
            await session.execute(
                insert(SummaryStat),
                [{"metric": metric, "key": k, "n": n, "median": m, "p90": p, "updated_at": now} for k, n, m, p in rows],
            )
        done += len(rows)
    return done


# --- the dashboard ---------------------------------------------------------------------------------------


async def dashboard(db: Database) -> dict[str, Any]:
    """The dashboard's tables, catching the summaries up first when events arrived since the last rebuild."""
    async with db.read() as uow:
        stale = await behind(uow)
    if stale:
        async with db.write() as uow:
            await rebuild(uow)
    async with db.read() as uow:
        return await tables(uow)


async def tables(uow: UnitOfWork) -> dict[str, Any]:
    """Every table of reports.TABLES, as reports.dashboard gives them, from the summaries and grouped
    counts instead of the events (the summaries as the last rebuild left them)."""
    import pandas as pd

    from app.commissioning.models import ChecklistRun
    from app.core.definitions import load_lifecycle
    from app.factory.models import Factory, Module, Spec
    from app.fleet import reports
    from app.fleet.service import AT_SITE, DRAWING_POWER, burnin_frame, legs_frame
    from app.sites.models import Site

    lc = load_lifecycle()
    session = uow.session
    specs = {
        i: (code, model, gpus, kw)
        for i, code, model, gpus, kw in await session.execute(
            select(Spec.id, Spec.code, Spec.gpu_model, Spec.gpu_count, Spec.power_kw)
        )
    }
    factories = {
        i: (code, country)
        for i, code, country in await session.execute(select(Factory.id, Factory.code, Factory.country))
    }
    site_rows = (
        await session.execute(
            select(Site.id, Site.code, Site.name, Site.country, Site.power_kw, Site.module_slots).order_by(Site.code)
        )
    ).all()
    sites = {row[0]: row for row in site_rows}
    groups = (
        await session.execute(
            select(Module.state, Module.spec_id, Module.factory_id, Module.site_id, func.count()).group_by(
                Module.state, Module.spec_id, Module.factory_id, Module.site_id
            )
        )
    ).all()
    stats = (
        await session.execute(
            select(SummaryStat.metric, SummaryStat.key, SummaryStat.n, SummaryStat.median, SummaryStat.p90)
        )
    ).all()
    lists = (
        await session.execute(
            select(Site.code, func.count(), func.count(ChecklistRun.signed_at))
            .join(Site, Site.id == ChecklistRun.site_id)
            .group_by(Site.code)
        )
    ).all()

    # One row per (state, spec, factory, site) with its module count: the composition reports, weighted.
    rows = []
    for state, spec_id, factory_id, site_id, n in groups:
        spec = specs.get(spec_id, (None, None, 0, 0.0))
        factory = factories.get(factory_id, (None, None))
        site = sites.get(site_id)
        rows.append((state, spec[2], factory[1], site[1] if site else None, site[3] if site else None, n, spec[3]))
    grouped = pd.DataFrame(rows, columns=["state", "gpu_count", "factory_country", "site", "site_country", "n", "kw"])
    usage: dict[str, tuple[int, float]] = {}
    for state, _gpus, _fc, site_code, _sc, n, kw in rows:
        if site_code is not None and state in AT_SITE:
            slots, power = usage.get(site_code, (0, 0.0))
            usage[site_code] = (slots + n, power + (n * float(kw or 0) if state in DRAWING_POWER else 0.0))
    sites_frame = pd.DataFrame(
        [
            (code, name, country, kw, slots, *usage.get(code, (0, 0.0)))
            for _, code, name, country, kw, slots in site_rows
        ],
        columns=["code", "name", "country", "power_kw", "module_slots", "used_slots", "used_power_kw"],
    )

    burnin = await burnin_frame(session)
    legs = await legs_frame(session)
    tables = {
        "modules_by_state": modules_by_state(grouped, lc),
        "modules_by_country": modules_by_country(grouped, lc),
        "modules_by_site": modules_by_site(grouped, sites_frame, lc),
        "site_utilisation": reports.site_utilisation(sites_frame),
        "cycle_times": cycle_times(stats, lc),
        "burnin_first_pass_yield": reports.burnin_first_pass_yield(burnin),
        "failure_reasons": reports.failure_reasons(burnin),
        "transit_times": reports.transit_times(legs),
        "commissioning_durations": commissioning_durations(stats, lists),
    }
    return {name: tables[name] for name in reports.TABLES}


# The composition tables of app.fleet.reports over grouped rows (columns state, gpu_count, factory_country,
# site, site_country, n): the same rules, every count weighted by n. tests/unit/fleet/test_generate.py
# holds them to the originals.


def modules_by_state(grouped: Any, lc: Any) -> Any:
    import pandas as pd

    from app.fleet.reports import state_table

    counts = grouped.groupby("state")["n"].sum() if len(grouped) else pd.Series(dtype="int64")
    return state_table(counts, lc)


def _placed(grouped: Any, lc: Any) -> Any:
    from app.fleet.reports import _PHASE_BY_WHERE

    wheres = {s.id: s.where for s in lc.states}
    terminal = {s.id for s in lc.states if s.terminal}
    live = grouped[~grouped["state"].isin(terminal)].copy()
    live["where"] = live["state"].map(lambda s: wheres.get(s, "held")).astype(object)
    live["phase"] = live["where"].map(_PHASE_BY_WHERE).astype(object)
    live["gpus"] = live["gpu_count"].fillna(0).astype("int64") * live["n"]
    return live


def _wide(live: Any, key: str, column: str, categories: Sequence[str]) -> Any:
    from app.fleet.reports import summed_counts

    return summed_counts(live, key, column, categories)


def modules_by_country(grouped: Any, lc: Any) -> Any:
    from app.fleet.reports import PLACE_COLUMNS

    live = _placed(grouped, lc)
    by_site = live["where"].ne("factory") & live["site_country"].notna() & live["site_country"].ne("")
    live["country"] = live["site_country"].where(by_site, live["factory_country"]).astype(object)
    live = live[live["country"].notna()]
    table = _wide(live, "country", "phase", PLACE_COLUMNS)
    table["modules"] = table[list(PLACE_COLUMNS)].sum(axis=1).astype("int64")
    table["gpus"] = live.groupby("country")["gpus"].sum().reindex(table.index, fill_value=0).astype("int64")
    out = table.rename_axis("country").reset_index()
    out["country"] = out["country"].astype(object)
    out = out.sort_values(["modules", "country"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[["country", *PLACE_COLUMNS, "modules", "gpus"]]


def modules_by_site(grouped: Any, sites: Any, lc: Any) -> Any:
    from app.fleet.reports import site_table

    return site_table(_placed(grouped, lc), sites, lc)


def cycle_times(stats: Sequence[Sequence[Any]], lc: Any, where: Iterable[str] = ("factory",)) -> Any:
    """reports.cycle_times from the stage statistics."""
    import pandas as pd

    wanted = set(where)
    by_stage = {key: (n, median, p90) for metric, key, n, median, p90 in stats if metric == STAGE_HOURS and n}
    stages = [s.id for s in lc.states if s.where in wanted and s.id in by_stage]
    return pd.DataFrame(
        {
            "stage": pd.Series(stages, dtype=object),
            "label": pd.Series([lc.state(s).label for s in stages], dtype=object),
            "visits": pd.Series([int(by_stage[s][0]) for s in stages], dtype="int64"),
            "median_h": pd.Series([float(by_stage[s][1]) for s in stages], dtype="float64").round(2),
            "p90_h": pd.Series([float(by_stage[s][2]) for s in stages], dtype="float64").round(2),
        }
    )


def commissioning_durations(stats: Sequence[Sequence[Any]], lists: Sequence[Sequence[Any]]) -> Any:
    """reports.commissioning_durations from the site statistics and checklist counts per site."""
    import pandas as pd

    per = {key: (int(n), float(median)) for metric, key, n, median, _ in stats if metric == COMMISSIONING_DAYS}
    counts = {code: (int(n), int(signed)) for code, n, signed in lists}
    codes = sorted(set(per) | set(counts))
    return pd.DataFrame(
        {
            "site": pd.Series(codes, dtype=object),
            "commissioned": pd.Series([per.get(c, (0, 0.0))[0] for c in codes], dtype="int64"),
            "median_days": pd.Series([per[c][1] if c in per else float("nan") for c in codes], dtype="float64").round(
                2
            ),
            "checklists": pd.Series([counts.get(c, (0, 0))[0] for c in codes], dtype="int64"),
            "signed_checklists": pd.Series([counts.get(c, (0, 0))[1] for c in codes], dtype="int64"),
        }
    )
