"""Imports against the database: load what the rows of a file refer to, plan (a dry run, read only), and
apply the plan in one write transaction, or refuse all of it when any row is refused.

Modules are registered and parts installed through the factory's own use cases
(app.factory.service.register_module, install_part), so each gets its ledger event exactly as through
the API and `afm audit verify` keeps verifying. Sites and specs go through their create use cases;
changes to them and new loose parts are written in bulk (no ledger: they are not module events).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import aliased

from app.core.auth.domain import Principal
from app.core.db import Database, UnitOfWork, utcnow
from app.core.definitions import Lifecycle
from app.core.errors import RuleRefused
from app.factory import service as factory
from app.factory.models import Factory, Module, Part, Spec
from app.factory.schemas import ModuleCreate, PartInstall
from app.integration import imports
from app.integration.imports import Context, ModuleState, Planned, RowResult
from app.sites import service as sites
from app.sites.models import Site
from app.tags import payload

CHUNK = 500  # keys per IN (...) query: well under every driver's parameter limit
MAX_REFUSED_LISTED = 1_000  # in a refused apply's problem details

Progress = Callable[[str, int, int], None]  # (phase, done, total)


class ImportResult(msgspec.Struct):
    table: str
    dry_run: bool
    rows: list[RowResult]
    summary: dict[str, int]
    notes: list[str] = []  # unit conversions made, for the person importing


def _chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(keys), CHUNK):
        yield keys[i : i + CHUNK]


def _giai(company_prefix: str, serial: str) -> str:
    try:
        return payload.giai(company_prefix, serial).value
    except ValueError:
        return ""  # a legacy serial that no GIAI can hold: exported blank, its import refused with the reason


# --- rows as the export writes them ----------------------------------------------------------------------


async def current_rows(
    uow: UnitOfWork, table: str, keys: Sequence[str] | None, company_prefix: str
) -> dict[str, dict[str, Any]]:
    """Rows of `table` (those with `keys`, or all in key order when keys is None), each as a dict of exactly
    the import's columns: what the export writes and what the plan compares with."""
    out: dict[str, dict[str, Any]] = {}
    batches: Iterable[Sequence[str] | None] = [None] if keys is None else _chunks(sorted(set(keys)))
    session = uow.session
    for batch in batches:
        if table == "sites":
            query = select(Site).order_by(Site.code)
            if batch is not None:
                query = query.where(Site.code.in_(batch))
            for site in await session.scalars(query):
                out[site.code] = msgspec.to_builtins(sites.site_read(site))
        elif table == "specs":
            query = select(Spec).order_by(Spec.code)
            if batch is not None:
                query = query.where(Spec.code.in_(batch))
            for spec in await session.scalars(query):
                out[spec.code] = msgspec.to_builtins(factory.spec_read(spec))
        elif table == "modules":
            query = (
                select(Module.serial, Spec.code, Factory.code, Module.state, Site.code)
                .join(Spec, Module.spec_id == Spec.id)
                .join(Factory, Module.factory_id == Factory.id)
                .outerjoin(Site, Module.site_id == Site.id)
                .order_by(Module.serial)
            )
            if batch is not None:
                query = query.where(Module.serial.in_(batch))
            for serial, spec, factory_code, state, site in await session.execute(query):
                out[serial] = {
                    "serial": serial,
                    "giai": _giai(company_prefix, serial),
                    "spec": spec,
                    "factory": factory_code,
                    "state": state,
                    "site": site or "",
                }
        elif table == "parts":
            holder = aliased(Module)
            query = select(
                Part.serial,
                Part.kind,
                Part.part_number,
                Part.manufacturer,
                Part.description,
                holder.serial,
                Part.position,
            ).outerjoin(holder, Part.module_id == holder.id)
            query = query.order_by(Part.serial)
            if batch is not None:
                query = query.where(Part.serial.in_(batch))
            for serial, kind, number, maker, description, module, position in await session.execute(query):
                out[serial] = {
                    "serial": serial,
                    "giai": _giai(company_prefix, serial),
                    "kind": kind,
                    "part_number": number,
                    "manufacturer": maker,
                    "description": description,
                    "module": module or "",
                    "position": position if module else "",
                }
        else:
            raise imports.InvalidInput(f"no table {table!r}; tables: {', '.join(imports.TABLES)}")
    return out


# --- the plan --------------------------------------------------------------------------------------------


async def load_context(
    uow: UnitOfWork, table: str, rows: list[imports.Row], lifecycle: Lifecycle, prefix: str
) -> Context:
    keys = [r.key for r in rows if r.key]
    context = Context(table=table, existing=await current_rows(uow, table, keys, prefix))
    session = uow.session
    if table == "modules":
        context.specs = frozenset(await session.scalars(select(Spec.code)))
        context.factories = frozenset(await session.scalars(select(Factory.code)))
        context.sites = frozenset(await session.scalars(select(Site.code)))
        context.initial_state = lifecycle.initial
    if table == "parts":
        qualified: dict[str, set[str]] = {}
        for bom in await session.scalars(select(Spec.bom)):
            for line in bom or []:
                qualified.setdefault(str(line["kind"]), set()).update(str(n) for n in line["part_numbers"])
        context.qualified = {k: frozenset(v) for k, v in qualified.items()}
        wanted = sorted({str(r.values["module"]) for r in rows if isinstance(r.values.get("module"), str)})
        context.modules = await _module_states(uow, wanted)
    return context


async def _module_states(uow: UnitOfWork, serials: Sequence[str]) -> dict[str, ModuleState]:
    states: dict[str, ModuleState] = {}
    by_id: dict[int, ModuleState] = {}
    session = uow.session
    for batch in _chunks(list(serials)):
        query = select(Module.id, Module.serial, Module.state, Spec.bom).join(Spec).where(Module.serial.in_(batch))
        for module_id, serial, state, bom in await session.execute(query):
            states[serial] = by_id[module_id] = ModuleState(serial, state, list(bom or []), {}, set())
        ids = [i for i, m in by_id.items() if m.serial in batch]
        if not ids:
            continue
        counts = select(Part.module_id, Part.kind, func.count(Part.id)).where(Part.module_id.in_(ids))
        for module_id, kind, n in await session.execute(counts.group_by(Part.module_id, Part.kind)):
            by_id[module_id].counts[kind] = int(n)
        for module_id, position in await session.execute(
            select(Part.module_id, Part.position).where(Part.module_id.in_(ids))
        ):
            by_id[module_id].positions.add(position)
    return states


def _parse(table: str, data: bytes, media_type: str) -> tuple[list[imports.Row], list[str]]:
    with imports.cyclic_gc_paused():
        raw = imports.read_file(data, media_type, table=table)
        columns = imports.map_columns(table, raw.header)
        return list(imports.type_rows(columns, raw)), list(columns.notes)


async def parse(table: str, data: bytes, media_type: str) -> tuple[list[imports.Row], list[str]]:
    """Read and type the file off the event loop (a 10,000-row XLSX takes a while to inflate and read)."""
    if table not in imports.TABLES:
        raise imports.InvalidInput(f"no import for {table!r}; tables: {', '.join(imports.TABLES)}")
    return await asyncio.to_thread(_parse, table, data, media_type)


async def plan(
    uow: UnitOfWork, lifecycle: Lifecycle, table: str, rows: list[imports.Row], company_prefix: str
) -> list[Planned]:
    context = await load_context(uow, table, rows, lifecycle, company_prefix)
    return imports.plan_rows(table, rows, context, company_prefix)


def refusal(table: str, planned: Sequence[Planned]) -> RuleRefused:
    refused = [p.result for p in planned if p.result.action == "refused"]
    first = "; ".join(f"line {r.row}: {r.reason}" for r in refused[:5])
    more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
    return RuleRefused(
        f"import_refused: {len(refused)} of {len(planned)} {table} rows are refused, so nothing was imported; "
        f"fix them and import again: {first}{more}",
        rule="import_refused",
        refused=[msgspec.to_builtins(r) for r in refused[:MAX_REFUSED_LISTED]],
        refused_total=len(refused),
    )


async def run_import(
    db: Database,
    lifecycle: Lifecycle,
    table: str,
    data: bytes,
    media_type: str,
    actor: Principal,
    *,
    apply: bool,
    company_prefix: str,
    progress: Progress | None = None,
) -> ImportResult:
    """A dry run (read only) or an apply (one write transaction: all of the file, or nothing when any
    row is refused; the plan is made again inside it, so it judges the data as it is when written)."""
    rows, notes = await parse(table, data, media_type)
    if progress:
        progress("read", len(rows), len(rows))
    if not apply:
        async with db.read() as uow:
            planned = await plan(uow, lifecycle, table, rows, company_prefix)
    else:
        async with db.write() as uow:
            planned = await plan(uow, lifecycle, table, rows, company_prefix)
            if any(p.result.action == "refused" for p in planned):
                raise refusal(table, planned)
            await execute(uow, lifecycle, table, planned, actor, progress=progress)
    results = [p.result for p in planned]
    return ImportResult(table=table, dry_run=not apply, rows=results, summary=imports.summary(results), notes=notes)


# --- apply -----------------------------------------------------------------------------------------------


async def execute(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    table: str,
    planned: Sequence[Planned],
    actor: Principal,
    *,
    progress: Progress | None = None,
) -> None:
    """Carry out a plan with no refused row, inside the caller's write unit of work."""
    todo = [p for p in planned if p.result.action in ("create", "change")]
    total = len(todo)

    def tick(done: int) -> None:
        if progress and (done % 100 == 0 or done == total):
            progress("apply", done, total)

    if table in ("sites", "specs"):
        model = Site if table == "sites" else Spec
        changed = [p for p in todo if p.result.action == "change"]
        objects = {}
        for batch in _chunks([p.result.key or "" for p in changed]):
            for obj in await uow.session.scalars(select(model).where(model.code.in_(batch))):
                objects[obj.code] = obj
        for done, p in enumerate(todo, start=1):
            assert p.typed is not None
            if p.result.action == "create":
                if table == "sites":
                    await sites.create_site(uow, p.typed)  # type: ignore[arg-type]
                else:
                    await factory.create_spec(uow, p.typed)  # type: ignore[arg-type]
            else:
                obj = objects[p.result.key or ""]
                for name in p.result.changes:
                    value = getattr(p.typed, name)
                    setattr(obj, name, msgspec.to_builtins(value) if name == "bom" else value)
            tick(done)
        await uow.session.flush()
        return
    if table == "modules":
        for done, p in enumerate(todo, start=1):
            typed: Any = p.typed
            data = ModuleCreate(spec=typed.spec, serial=typed.serial, factory=typed.factory or None)
            await factory.register_module(uow, lifecycle, data, actor)
            tick(done)
        return
    await _execute_parts(uow, todo, actor, tick)


async def _execute_parts(
    uow: UnitOfWork, todo: Sequence[Planned], actor: Principal, tick: Callable[[int], None]
) -> None:
    now = utcnow()
    loose = [p for p in todo if p.result.action == "create" and p.install is None]
    if loose:
        rows = []
        for p in loose:
            t: Any = p.typed
            rows.append(
                {
                    "serial": t.serial,
                    "kind": t.kind,
                    "part_number": t.part_number,
                    "manufacturer": t.manufacturer,
                    "description": t.description,
                    "position": "",
                    "created_at": now,
                }
            )
        for i in range(0, len(rows), CHUNK):
            await uow.session.execute(insert(Part), rows[i : i + CHUNK])
        tick(len(loose))
    done = len(loose)
    # catalogue fields of existing parts, one executemany per set of changed fields
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for p in todo:
        if p.result.action != "change":
            continue
        names = tuple(sorted(n for n in p.result.changes if n in ("manufacturer", "description")))
        if names:
            t = p.typed
            groups.setdefault(names, []).append({"b_serial": t.serial, **{f"b_{n}": getattr(t, n) for n in names}})
    table = Part.__table__
    for names, params in groups.items():
        statement = (
            update(table).where(table.c.serial == bindparam("b_serial")).values({n: bindparam(f"b_{n}") for n in names})
        )
        await uow.session.execute(statement, params)
    for p in todo:
        if p.install is None:
            if p.result.action == "change":
                done += 1
                tick(done)
            continue
        t = p.typed
        module, position = p.install
        part = PartInstall(
            serial=t.serial, kind=t.kind, part_number=t.part_number, manufacturer=t.manufacturer, position=position
        )
        await factory.install_part(uow, module, part, actor)
        if p.result.action == "create" and t.description:
            await uow.session.execute(update(table).where(table.c.serial == t.serial).values(description=t.description))
        done += 1
        tick(done)
    await uow.session.flush()
