"""The fleet dashboard (charts rendered on the server, tables, CSV and XLSX exports), site capacity and
demand editing, and the redeployment planner for planners."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import page
from app.core.db import Database
from app.core.errors import DomainError
from app.factory.models import Spec
from app.fleet import service, summary
from app.fleet.schemas import CapacityIn, DemandIn, DemandListIn, PlanIn
from app.routes.service import NetworkHolder

PLANNERS = (Role.ADMIN, Role.PLANNER)


class DemandForm(msgspec.Struct):
    spec: str = ""
    modules: int = 0
    gpus: int = 0
    from_date: str = ""
    note: str = ""
    clear: str = ""  # "1": remove every line


class CapacityForm(msgspec.Struct):
    power_kw: float = 0
    module_slots: int = 0


class PlanForm(msgspec.Struct):
    criterion: str = "cost"


class FleetPages(Controller):
    include_in_schema = False

    @get("/fleet", opt=page(*ALL_ROLES))
    async def dashboard(self, principal: NamedDependency[Principal], db: NamedDependency[Database]) -> Template:
        import asyncio

        from app.fleet.charts import render_all
        from app.fleet.reports import TABLES

        tables = await summary.dashboard(db)
        async with db.read() as uow:
            sites = await service.capacities(uow)
            specs = list(await uow.session.scalars(_specs_query()))
        charts = await asyncio.to_thread(render_all, tables)
        return Template(
            template_name="fleet/dashboard.html",
            context={
                "principal": principal,
                "titles": TABLES,
                "tables": {name: _rows(df) for name, df in tables.items()},
                "charts": charts,
                "sites": sites,
                "specs": specs,
                "can_plan": bool(set(principal.roles) & set(PLANNERS)),
            },
        )

    @post("/fleet/sites/{code:str}/demand", opt=page(*PLANNERS), status_code=200)
    async def demand(
        self,
        code: FromPath[str],
        data: URLEncodedBody[DemandForm],
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
    ) -> Template:
        error = ""
        try:
            async with db.write() as uow:
                current = (await service.capacities(uow, code))[0]
                lines = [
                    DemandIn(spec=d.spec, modules=d.modules, gpus=d.gpus, from_date=d.from_date, note=d.note)
                    for d in current.demand
                ]
                if data.clear != "1":
                    lines.append(
                        DemandIn(
                            spec=data.spec or None,
                            modules=data.modules,
                            gpus=data.gpus,
                            from_date=dt.date.fromisoformat(data.from_date) if data.from_date else None,
                            note=data.note,
                        )
                    )
                else:
                    lines = []
                site = await service.set_demand(uow, code, DemandListIn(demand=lines), principal)
        except (DomainError, ValueError) as exc:
            error = getattr(exc, "detail", str(exc))
            async with db.read() as uow:
                site = (await service.capacities(uow, code))[0]
        async with db.read() as uow:
            specs = list(await uow.session.scalars(_specs_query()))
        return Template(
            template_name="fleet/_site.html",
            context={"s": site, "specs": specs, "can_plan": True, "error": error},
        )

    @post("/fleet/sites/{code:str}/capacity", opt=page(*PLANNERS), status_code=200)
    async def capacity(
        self, code: FromPath[str], data: URLEncodedBody[CapacityForm], db: NamedDependency[Database]
    ) -> Template:
        error = ""
        try:
            request = msgspec.convert(msgspec.to_builtins(data), CapacityIn)
            async with db.write() as uow:
                site = await service.set_capacity(uow, code, request)
        except (DomainError, msgspec.ValidationError) as exc:
            error = getattr(exc, "detail", str(exc))
            async with db.read() as uow:
                site = (await service.capacities(uow, code))[0]
        async with db.read() as uow:
            specs = list(await uow.session.scalars(_specs_query()))
        return Template(
            template_name="fleet/_site.html", context={"s": site, "specs": specs, "can_plan": True, "error": error}
        )

    @post("/fleet/plan", opt=page(*PLANNERS), status_code=200)
    async def plan(
        self,
        data: URLEncodedBody[PlanForm],
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
    ) -> Template:
        context: dict[str, Any] = {"error": "", "plan": None}
        try:
            request = msgspec.convert({"criterion": data.criterion}, PlanIn)
            network = await route_network.get()
            async with db.read() as uow:
                context["plan"] = await service.plan(uow, network, request)
        except (DomainError, msgspec.ValidationError) as exc:
            context["error"] = getattr(exc, "detail", str(exc))
        return Template(template_name="fleet/_plan.html", context=context)


def _specs_query() -> Any:
    from sqlalchemy import select

    return select(Spec.code).order_by(Spec.code)


def _rows(df: Any) -> dict[str, Any]:
    import json

    return {"columns": list(df.columns), "rows": json.loads(df.to_json(orient="values", date_format="iso"))}
