"""Fleet use cases: site capacity and demand, the redeployment plan over the route network (and
accepting it through the lifecycle engine), and the report tables read from the ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import delete, func, select

from app.core.auth.domain import Principal
from app.core.db import UnitOfWork, utcnow
from app.core.errors import InvalidInput, NotFound
from app.factory.models import Module, Spec
from app.fleet.models import SiteDemand
from app.fleet.schemas import AcceptIn, CapacityIn, DemandListIn, DemandRead, PlanIn, SiteCapacityRead
from app.sites.models import Site

# States in which a module occupies a slot and power at its site.
AT_SITE = ("delivered", "commissioning", "validating", "in_service", "on_hold", "decommissioning", "decommissioned")
DRAWING_POWER = ("commissioning", "validating", "in_service", "on_hold")


async def _site(uow: UnitOfWork, code: str, *, for_update: bool = False) -> Site:
    query = select(Site).where(Site.code == code)
    if for_update:
        query = query.with_for_update()
    site = await uow.session.scalar(query)
    if site is None:
        raise NotFound(f"no site {code!r}", site=code)
    return site


async def _usage(uow: UnitOfWork) -> dict[int, tuple[int, float, dict[str, int]]]:
    """Per site id: slots used, power drawn (kW), modules per spec."""
    rows = await uow.session.execute(
        select(Module.site_id, Spec.code, Module.state, func.count(Module.id), func.sum(Spec.power_kw))
        .join(Spec, Spec.id == Module.spec_id)
        .where(Module.site_id.is_not(None), Module.state.in_(AT_SITE))
        .group_by(Module.site_id, Spec.code, Module.state)
    )
    usage: dict[int, tuple[int, float, dict[str, int]]] = {}
    for site_id, spec, state, count, power in rows:
        slots, kw, specs = usage.get(site_id, (0, 0.0, {}))
        specs[spec] = specs.get(spec, 0) + count
        usage[site_id] = (slots + count, kw + (float(power or 0) if state in DRAWING_POWER else 0.0), specs)
    return usage


def _demand_read(d: SiteDemand) -> DemandRead:
    return DemandRead(d.spec_code, d.modules, d.gpus, d.from_date, d.note, d.updated_by, d.updated_at)


async def capacities(uow: UnitOfWork, code: str | None = None) -> list[SiteCapacityRead]:
    query = select(Site).order_by(Site.code)
    if code is not None:
        query = query.where(Site.code == code)
    sites = list(await uow.session.scalars(query))
    if code is not None and not sites:
        raise NotFound(f"no site {code!r}", site=code)
    usage = await _usage(uow)
    demand: dict[int, list[SiteDemand]] = {}
    for d in await uow.session.scalars(select(SiteDemand).order_by(SiteDemand.from_date, SiteDemand.id)):
        demand.setdefault(d.site_id, []).append(d)
    out = []
    for s in sites:
        slots, kw, specs = usage.get(s.id, (0, 0.0, {}))
        out.append(
            SiteCapacityRead(
                site=s.code,
                name=s.name,
                country=s.country,
                security_level=s.security_level,
                power_kw=s.power_kw,
                module_slots=s.module_slots,
                used_power_kw=round(kw, 1),
                used_slots=slots,
                installed=specs,
                demand=[_demand_read(d) for d in demand.get(s.id, [])],
            )
        )
    return out


async def set_capacity(uow: UnitOfWork, code: str, data: CapacityIn) -> SiteCapacityRead:
    site = await _site(uow, code, for_update=True)
    site.power_kw, site.module_slots = data.power_kw, data.module_slots
    await uow.session.flush()
    return (await capacities(uow, code))[0]


async def set_demand(uow: UnitOfWork, code: str, data: DemandListIn, actor: Principal) -> SiteCapacityRead:
    """Replace the site's demand lines (each in modules or in GPUs of a spec, from a date)."""
    site = await _site(uow, code, for_update=True)
    specs = set(await uow.session.scalars(select(Spec.code)))
    for i, d in enumerate(data.demand):
        if d.spec is not None and d.spec not in specs:
            raise InvalidInput(f"demand[{i}]: unknown spec {d.spec!r}; specs: {', '.join(sorted(specs))}")
        if (d.modules == 0) == (d.gpus == 0):
            raise InvalidInput(f"demand[{i}]: give modules or gpus (one of them, above zero)")
        if d.gpus and d.spec is None:
            raise InvalidInput(f"demand[{i}]: demand in GPUs names the spec whose GPUs count")
    await uow.session.execute(delete(SiteDemand).where(SiteDemand.site_id == site.id))
    today = utcnow().date()
    for d in data.demand:
        uow.session.add(
            SiteDemand(
                site_id=site.id,
                spec_code=d.spec,
                modules=d.modules,
                gpus=d.gpus,
                from_date=d.from_date or today,
                note=d.note,
                updated_by=actor.username,
            )
        )
    await uow.session.flush()
    return (await capacities(uow, code))[0]


def demand_in_force(lines: list[DemandRead], on: dt.date) -> list[DemandRead]:
    """The latest line per spec that has started by `on` (a later line replaces an earlier one)."""
    latest: dict[str | None, DemandRead] = {}
    for d in sorted(lines, key=lambda x: x.from_date):
        if d.from_date <= on:
            latest[d.spec] = d
    return list(latest.values())


# --- redeployment --------------------------------------------------------------------------------------

MOVABLE_STATES = ("in_service", "decommissioned")  # serving (surplus) or idle at a site
SOVEREIGN_LEVELS = ("sovereign", "defence")  # a module at such a site stays in its country
HANDLING = {"cost_usd": 25_000.0, "hours": 240.0, "co2_kg": 500.0}  # decommission + commission, per move


def _modules_needed(line: DemandRead, gpu_count: int) -> int:
    return line.modules if line.modules else -(-line.gpus // max(gpu_count, 1))


async def plan(uow: UnitOfWork, network: Any, data: PlanIn) -> dict[str, Any]:
    """The redeployment plan for the demand in force: surplus modules (beyond a site's recorded demand
    for their spec, or decommissioned and idle) move to sites short of demand, priced by the route
    planner between the two sites, within sovereignty, export rules, slots and power."""
    from app.fleet import planner
    from app.routes import domain as routes
    from app.routes.export import decide, load_rules

    on = data.on or utcnow().date()
    caps = {c.site: c for c in await capacities(uow)}
    sites = {s.code: s for s in await uow.session.scalars(select(Site))}
    rows = await uow.session.execute(
        select(Module, Spec, Site.code)
        .join(Spec, Spec.id == Module.spec_id)
        .join(Site, Site.id == Module.site_id)
        .where(Module.state.in_(MOVABLE_STATES))
        .order_by(Module.serial)
    )
    by_site: dict[tuple[str, str], list[tuple[Module, Spec]]] = {}
    gpus_of: dict[str, int] = {}
    for module, spec, code in rows:
        by_site.setdefault((code, spec.code), []).append((module, spec))
        gpus_of[spec.code] = spec.gpu_count
    movable: list[planner.MovableModule] = []
    for (code, spec_code), group in sorted(by_site.items()):
        wanted = {d.spec: d for d in demand_in_force(caps[code].demand, on)}
        line = wanted.get(spec_code)
        serving = [m for m, _ in group if m.state == "in_service"]
        present = caps[code].installed.get(spec_code, 0)  # every module of the spec the site holds
        needed = _modules_needed(line, gpus_of[spec_code]) if line else present  # no demand line: keep all
        surplus = max(0, min(len(serving), present - needed))
        free = [m for m, _ in group if m.state == "decommissioned"] + serving[len(serving) - surplus :]
        site = sites[code]
        for m in free:
            spec = next(s for mm, s in group if mm.id == m.id)
            movable.append(
                planner.MovableModule(
                    serial=m.serial,
                    spec_code=spec.code,
                    gpu_count=spec.gpu_count,
                    power_kw=spec.power_kw,
                    site=code,
                    country=site.country,
                    sovereign=m.sovereign or site.security_level in SOVEREIGN_LEVELS,
                    export_class=spec.export_class,
                )
            )
    capacity = []
    for code, c in caps.items():
        short = []
        for line in demand_in_force(c.demand, on):
            have = c.installed.get(line.spec, 0) if line.spec else sum(c.installed.values())
            if line.gpus:
                missing = line.gpus - have * gpus_of.get(line.spec or "", 1)
                if missing > 0:
                    short.append(planner.Demand(spec_code=line.spec, gpus=missing))
            elif line.modules > have:
                short.append(planner.Demand(spec_code=line.spec, modules=line.modules - have))
        capacity.append(
            planner.SiteCapacity(
                code=code,
                country=c.country,
                power_kw=c.power_kw,
                slots=c.module_slots,
                used_power_kw=c.used_power_kw,
                used_slots=c.used_slots,
                demand=tuple(short),
            )
        )
    targets = [c for c in capacity if c.demand]
    rules = load_rules()
    allowed: dict[tuple[str, str], str | None] = {}
    for m in movable:
        for t in targets:
            key = (m.export_class, t.country)
            if key not in allowed:
                decision = decide(rules, m.export_class, t.country, network.countries)
                licence = None
                if decision.status == "license_required":
                    from app.logistics.shipments import licence_for

                    licence = await licence_for(uow, m.export_class, t.country, on)
                ok = decision.status == "allowed" or licence is not None
                allowed[key] = None if ok else f"export rules: {decision.status.replace('_', ' ')} — {decision.rule}"
    costs: dict[tuple[str, str], planner.MoveCost] = {}
    origins = sorted({m.site for m in movable})
    for origin in origins:
        here = [m for m in movable if m.site == origin]
        heaviest = max(here, key=lambda m: m.power_kw)  # stands in for the module's weight class
        weight = await uow.session.scalar(select(Spec.weight_kg).where(Spec.code == heaviest.spec_code))
        for t in targets:
            if t.code == origin:
                continue
            a, b = sites[origin], sites[t.code]
            request = routes.RouteRequest(
                routes.point(network, a.lat, a.lon, a.country, f"site:{a.code}"),
                routes.point(network, b.lat, b.lon, b.country, f"site:{b.code}"),
                criterion={"cost": "cost", "time": "time", "co2": "co2"}[data.criterion],
                k=1,
                weight_kg=weight,
            )
            answer = routes.plan(network, request)
            if answer.routes:
                r = answer.routes[0]
                modes = "-".join(leg.mode for leg in r.legs)
                via = f" via {', '.join(r.passages)}" if r.passages else ""
                costs[(origin, t.code)] = planner.MoveCost(
                    cost_usd=r.cost_usd,
                    hours=r.hours,
                    co2_kg=r.co2_kg,
                    distance_km=r.distance_km,
                    route=f"{modes}{via}",
                )
    result = planner.plan_redeployment(
        movable, capacity, costs, planner.MoveCost(distance_km=0.0, **HANDLING), allowed, data.criterion
    )
    return {"on": on.isoformat(), "movable": len(movable), **msgspec.to_builtins(result)}


async def accept(uow: UnitOfWork, network: Any, tags: Any, data: AcceptIn, actor: Principal) -> dict[str, Any]:
    """Carry out moves: each module starts decommissioning (if in service) and a shipment to its new site
    is planned, all in one transaction through the normal engine; it is packed for that shipment once
    decommissioned (`redeploy`)."""
    from app.core.definitions import load_lifecycle
    from app.core.lifecycle import service as lifecycle_service
    from app.core.lifecycle.schemas import TransitionRequest
    from app.logistics.schemas import PartyIn, ShipmentCreate
    from app.logistics.shipments import create_shipment

    lifecycle = load_lifecycle()
    opened = []
    for move in data.moves:
        module = await uow.session.scalar(select(Module).where(Module.serial == move.serial))
        if module is None:
            raise NotFound(f"no module {move.serial!r}")
        origin = await uow.session.get(Site, module.site_id) if module.site_id else None
        target = await _site(uow, move.to_site)
        if origin is None:
            raise InvalidInput(f"{move.serial} is at no site; a redeployment moves a module from one site to another")
        if origin.code == target.code:
            raise InvalidInput(f"{move.serial} is at {target.code} already")
        if module.state == "in_service":
            await lifecycle_service.transition(
                uow,
                lifecycle,
                move.serial,
                TransitionRequest(transition="start_decommissioning", payload={"reason": data.reason}),
                actor,
            )
        elif module.state not in ("decommissioning", "decommissioned"):
            raise InvalidInput(f"{move.serial} is {module.state}; only modules in service or decommissioned move")

        def party(site: Site) -> PartyIn:
            return PartyIn(name=site.operator or site.name, address=[site.name, site.city], country=site.country)

        shipment = await create_shipment(
            uow,
            network,
            tags,
            ShipmentCreate(
                origin=f"site:{origin.code}",
                destination=f"site:{target.code}",
                modules=[move.serial],
                planned_departure=data.planned_departure,
                incoterm="DAP",
                incoterm_place=f"{target.name}, {target.city}",
                consignor=party(origin),
                consignee=party(target),
                values=data.values,
                criterion=data.criterion,
            ),
            actor,
        )
        opened.append({"serial": move.serial, "from": origin.code, "to": target.code, "shipment": shipment.id})
    return {"moves": opened}


# --- reports -------------------------------------------------------------------------------------------


async def report_frames(uow: UnitOfWork) -> dict[str, Any]:
    """The report inputs read from the database, shaped to app.fleet.reports.CONTRACTS."""
    import pandas as pd

    from app.commissioning.models import ChecklistRun
    from app.core.ledger.models import Event
    from app.factory.models import Factory

    def frame(rows: Any, columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)

    events = frame(
        await uow.session.execute(
            select(Module.serial, Event.seq, Event.type, Event.at, Event.place, Event.payload)
            .join(Module, Module.id == Event.module_id)
            .order_by(Event.module_id, Event.seq)
        ),
        ["module", "seq", "type", "at", "place", "payload"],
    )
    events["to_state"] = [
        (p or {}).get("to") if t.startswith("lifecycle.") else None
        for t, p in zip(events["type"], events["payload"], strict=True)
    ]
    site_code = select(Site.code).where(Site.id == Module.site_id).scalar_subquery()
    site_country = select(Site.country).where(Site.id == Module.site_id).scalar_subquery()
    modules = frame(
        await uow.session.execute(
            select(
                Module.serial,
                Spec.code,
                Spec.gpu_model,
                Spec.gpu_count,
                Factory.code,
                Factory.country,
                site_code,
                site_country,
                Module.state,
            )
            .join(Spec, Spec.id == Module.spec_id)
            .join(Factory, Factory.id == Module.factory_id)
        ),
        ["serial", "spec", "gpu_model", "gpu_count", "factory", "factory_country", "site", "site_country", "state"],
    )
    usage = await _usage(uow)
    sites = pd.DataFrame(
        [
            (
                s.code,
                s.name,
                s.country,
                s.power_kw,
                s.module_slots,
                usage.get(s.id, (0, 0.0, {}))[0],
                usage.get(s.id, (0, 0.0, {}))[1],
            )
            for s in await uow.session.scalars(select(Site).order_by(Site.code))
        ],
        columns=["code", "name", "country", "power_kw", "module_slots", "used_slots", "used_power_kw"],
    )
    burnin = await burnin_frame(uow.session)
    legs = await legs_frame(uow.session)
    checklists = frame(
        await uow.session.execute(
            select(Module.serial, Site.code, ChecklistRun.template_id, ChecklistRun.started_at, ChecklistRun.signed_at)
            .join(Module, Module.id == ChecklistRun.module_id)
            .join(Site, Site.id == ChecklistRun.site_id)
        ),
        ["module", "site", "template", "started_at", "signed_at"],
    )
    return {
        "events": events,
        "modules": modules,
        "sites": sites,
        "burnin": burnin,
        "legs": legs,
        "checklists": checklists,
    }


async def burnin_frame(session: Any) -> Any:
    """Burn-in runs as the reports' `burnin` frame: run-level and per-GPU failure reasons together."""
    import pandas as pd

    from app.burnin.models import BurnInRun

    runs = []
    for serial, spec, gpu_model, run_id, verdict, finished, result in await session.execute(
        select(
            Module.serial,
            Spec.code,
            Spec.gpu_model,
            BurnInRun.id,
            BurnInRun.verdict,
            BurnInRun.finished_at,
            BurnInRun.result,
        )
        .join(Module, Module.id == BurnInRun.module_id)
        .join(Spec, Spec.id == Module.spec_id)
    ):
        reasons = list((result or {}).get("reasons", []))
        for gpu in (result or {}).get("gpus", []):
            reasons += [f"GPU {gpu.get('index')} ({gpu.get('uuid', '')}): {r}" for r in gpu.get("reasons", [])]
        runs.append((serial, spec, gpu_model, run_id, verdict, finished, reasons))
    return pd.DataFrame(runs, columns=["module", "spec", "gpu_model", "run_id", "verdict", "finished_at", "reasons"])


async def legs_frame(session: Any) -> Any:
    """Shipment legs as the reports' `legs` frame (planned and actual times)."""
    import pandas as pd

    from app.fleet.reports import CONTRACTS
    from app.logistics.models import Shipment, ShipmentLeg

    rows = await session.execute(
        select(
            Shipment.ref,
            ShipmentLeg.seq,
            ShipmentLeg.mode,
            ShipmentLeg.origin_code,
            ShipmentLeg.destination_code,
            ShipmentLeg.planned_departure,
            ShipmentLeg.planned_arrival,
            ShipmentLeg.actual_departure,
            ShipmentLeg.actual_arrival,
        ).join(Shipment, Shipment.id == ShipmentLeg.shipment_id)
    )
    return pd.DataFrame([tuple(r) for r in rows], columns=list(CONTRACTS["legs"]))


async def report_tables(uow: UnitOfWork) -> dict[str, Any]:
    from app.fleet.reports import dashboard

    frames = await report_frames(uow)
    return dashboard(frames)
