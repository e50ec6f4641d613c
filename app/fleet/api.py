"""HTTP API of the fleet: site capacity and demand, redeployment plans, fleet reports and exports."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.errors import NotFound
from app.fleet import service, summary
from app.fleet.schemas import AcceptIn, CapacityIn, DemandListIn, PlanIn, SiteCapacityRead
from app.routes.service import NetworkHolder
from app.tags.service import TagSetup

PLANNERS = (Role.ADMIN, Role.PLANNER)


class SiteCapacityController(Controller):
    path = "/api/v1/sites"
    tags = ["fleet"]

    @get("/capacity", opt=allow(*ALL_ROLES), operation_id="ListSiteCapacity")
    async def list_capacity(self, db: NamedDependency[Database]) -> list[SiteCapacityRead]:
        """Every site's power budget and module slots, what is used, modules per spec, and demand."""
        async with db.read() as uow:
            return await service.capacities(uow)

    @get("/{code:str}/capacity", opt=allow(*ALL_ROLES), operation_id="GetSiteCapacity")
    async def get_capacity(self, code: FromPath[str], db: NamedDependency[Database]) -> SiteCapacityRead:
        async with db.read() as uow:
            return (await service.capacities(uow, code))[0]

    @put("/{code:str}/capacity", opt=allow(*PLANNERS), operation_id="SetSiteCapacity")
    async def set_capacity(
        self, code: FromPath[str], data: JSONBody[CapacityIn], db: NamedDependency[Database]
    ) -> SiteCapacityRead:
        """Set the site's power budget (kW) and module slots."""
        async with db.write() as uow:
            return await service.set_capacity(uow, code, data)

    @put("/{code:str}/demand", opt=allow(*PLANNERS), operation_id="SetSiteDemand")
    async def set_demand(
        self,
        code: FromPath[str],
        data: JSONBody[DemandListIn],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> SiteCapacityRead:
        """Replace the site's demand: lines of modules (or GPUs) of a spec, each from a date."""
        async with db.write() as uow:
            return await service.set_demand(uow, code, data, principal)


class RedeploymentController(Controller):
    path = "/api/v1/redeployment"
    tags = ["fleet"]

    @post("/plan", opt=allow(*PLANNERS), operation_id="PlanRedeployment", status_code=200)
    async def plan(
        self, data: JSONBody[PlanIn], db: NamedDependency[Database], route_network: NamedDependency[NetworkHolder]
    ) -> dict[str, Any]:
        """Which module moves where for the demand in force: a min-cost flow priced by the route planner
        (cost, time or CO2), within sovereignty, export rules, slots and power; unmet demand with its
        reason. Nothing is changed until the plan is accepted."""
        network = await route_network.get()
        async with db.read() as uow:
            return await service.plan(uow, network, data)

    @post("/accept", opt=allow(*PLANNERS), operation_id="AcceptRedeployment")
    async def accept(
        self,
        data: JSONBody[AcceptIn],
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
        tag_setup: NamedDependency[TagSetup],
        principal: NamedDependency[Principal],
    ) -> dict[str, Any]:
        """Carry out moves: each module starts decommissioning and a shipment to its new site is planned,
        in one transaction; the rest follows the lifecycle (decommissioning checklist and sanitisation,
        redeploy into the shipment, hand-offs, commissioning at the new site)."""
        network = await route_network.get()
        async with db.write() as uow:
            return await service.accept(uow, network, tag_setup, data, principal)


def _json_table(df: Any) -> dict[str, Any]:
    import json

    # pandas writes dates as ISO text and NaN/NaT as null
    return {"columns": list(df.columns), "rows": json.loads(df.to_json(orient="values", date_format="iso"))}


class FleetReportController(Controller):
    path = "/api/v1/fleet/reports"
    tags = ["fleet"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="FleetReports")
    async def reports(self, db: NamedDependency[Database]) -> dict[str, Any]:
        """Every fleet report, computed from the ledger: modules per state, country and site, site
        utilisation, factory cycle times (median, p90), burn-in first-pass yield, failure reasons, transit
        times per lane planned vs actual, commissioning durations per site."""
        from app.fleet.reports import TABLES

        tables = await summary.dashboard(db)  # kept current from the events, not recomputed from all of them
        return {name: {"title": TABLES[name], **_json_table(df)} for name, df in tables.items()}

    @get(
        "/fleet.xlsx",
        opt=allow(*ALL_ROLES),
        operation_id="FleetReportsXlsx",
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    async def xlsx(self, db: NamedDependency[Database]) -> Response[bytes]:
        """Every report as one XLSX workbook, a sheet per table (formula-like text escaped)."""
        from app.fleet.exports import XLSX_MEDIA_TYPE, to_xlsx

        tables = await summary.dashboard(db)  # kept current from the events, not recomputed from all of them
        body = await asyncio.to_thread(to_xlsx, tables)
        return Response(
            body, media_type=XLSX_MEDIA_TYPE, headers={"Content-Disposition": 'attachment; filename="afm-fleet.xlsx"'}
        )

    @get("/{name:str}", opt=allow(*ALL_ROLES), operation_id="FleetReportCsv", media_type="text/csv")
    async def csv(self, name: FromPath[str], db: NamedDependency[Database]) -> Response[bytes]:
        """One report as CSV: `<table>.csv`, e.g. `cycle_times.csv` (formula-like text escaped)."""
        from app.fleet.exports import CSV_MEDIA_TYPE, to_csv
        from app.fleet.reports import TABLES

        table = name.removesuffix(".csv")
        if not name.endswith(".csv") or table not in TABLES:
            raise NotFound(f"no report {name!r}; reports: {', '.join(f'{t}.csv' for t in TABLES)}, fleet.xlsx")
        tables = await summary.dashboard(db)  # kept current from the events, not recomputed from all of them
        return Response(
            to_csv(tables[table]),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
