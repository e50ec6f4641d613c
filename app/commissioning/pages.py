"""Field pages, mobile-first: a site's modules and what each needs next, one module's commissioning,
and the checklist, which works with no network (service worker + IndexedDB, synced when back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy import select

from app.commissioning import service
from app.core.auth.domain import ALL_ROLES, Principal
from app.core.auth.guards import PUBLIC, page
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.factory.models import Module
from app.sites.models import Site

FIELD_STATES = ("in_transit", "delivered", "commissioning", "validating", "on_hold")
SERVICE_WORKER = Path(__file__).resolve().parents[1] / "web" / "static" / "js" / "field-sw.js"


class FieldPages(Controller):
    include_in_schema = False

    @get("/field", opt=page(*ALL_ROLES))
    async def site(
        self,
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        site: FromQuery[str] = "",
    ) -> Template:
        async with db.read() as uow:
            sites = list(await uow.session.scalars(select(Site).order_by(Site.code)))
            chosen = next((s for s in sites if s.code == site), None)
            rows: list[dict[str, Any]] = []
            if chosen is not None:
                modules = await uow.session.scalars(
                    select(Module)
                    .where(Module.site_id == chosen.id, Module.state.in_(FIELD_STATES))
                    .order_by(Module.serial)
                )
                for m in modules:
                    nxt = await _next(uow, m.serial, m.state)
                    rows.append({"serial": m.serial, "state": lifecycle.state(m.state), "next": nxt})
        return Template(
            template_name="field/site.html",
            context={"principal": principal, "sites": sites, "site": chosen, "rows": rows},
        )

    @get("/field/modules/{serial:str}", opt=page(*ALL_ROLES))
    async def module(
        self,
        serial: FromPath[str],
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
    ) -> Template:
        async with db.read() as uow:
            status = await service.commissioning(uow, serial)
        return Template(
            template_name="field/module.html",
            context={
                "principal": principal,
                "s": status,
                "state": lifecycle.state(status.state),
                "actions": [
                    t.name
                    for t in lifecycle.transitions
                    if status.state in t.from_
                    and t.name in ("start_commissioning", "start_validation", "enter_service")
                ],
            },
        )

    @get("/field/checklists/{run_id:int}", opt=page(*ALL_ROLES))
    async def checklist(
        self, run_id: FromPath[int], principal: NamedDependency[Principal], db: NamedDependency[Database]
    ) -> Template:
        async with db.read() as uow:
            run = await service.run_read(uow, await service.load_run(uow, run_id))
        return Template(
            template_name="field/checklist.html",
            context={"principal": principal, "run": run, "run_json": msgspec.json.encode(run).decode()},
        )

    @get("/field/sw.js", opt=PUBLIC, include_in_schema=False)
    async def service_worker(self) -> Response[bytes]:
        """Served from /field/ so that its scope covers the field pages."""
        return Response(
            SERVICE_WORKER.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/field/"},
        )


async def _next(uow: Any, serial: str, state: str) -> str:
    if state in ("in_transit", "on_hold"):
        return state.replace("_", " ")
    try:
        status = await service.commissioning(uow, serial)
    except Exception as exc:  # a module with no site or a misconfigured level: say so, keep the list
        return str(getattr(exc, "detail", exc))
    return status.next[0].what if status.next else ""
