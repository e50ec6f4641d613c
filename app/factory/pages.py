"""Module pages: the fleet list (filterable, htmx-refreshed) and one module's detail."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRefresh, HTMXRequest
from litestar.response import Template

from app.core.auth.domain import ALL_ROLES, STAFF, Principal, Role
from app.core.auth.guards import page
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.errors import DomainError, NotFound
from app.core.lifecycle import service as transitions
from app.core.lifecycle.schemas import TransitionRequest
from app.factory import domain, service
from app.factory.schemas import PartInstall
from app.integration import outbox
from app.sites import service as sites
from app.tags.service import TagSetup

PAGE_SIZE = 25


class TransitionForm(msgspec.Struct):
    transition: str
    version: str = ""
    reason: str = ""
    site: str = ""
    note: str = ""


class ModulePages(Controller):
    include_in_schema = False

    @get("/modules", opt=page(*ALL_ROLES))
    async def modules(
        self,
        request: HTMXRequest,
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        state_filter: Annotated[str, QueryParameter(name="state")] = "",
        site: FromQuery[str] = "",
        q: FromQuery[str] = "",
        page_no: FromQuery[int] = 1,
    ) -> Template:
        page_no = max(page_no, 1)
        state = state_filter if state_filter in lifecycle.state_ids else ""
        async with db.read() as uow:
            result = await service.list_modules(
                uow,
                lifecycle,
                state=state or None,
                site=site or None,
                q=q.strip() or None,
                limit=PAGE_SIZE,
                offset=(page_no - 1) * PAGE_SIZE,
            )
            site_list = await sites.list_sites(uow, country=None, security_level=None, limit=500, offset=0)
        context: dict[str, Any] = {
            "principal": principal,
            "result": result,
            "states": lifecycle.states,
            "lifecycle": lifecycle,
            "sites": site_list.items,
            "filters": {"state": state, "site": site, "q": q},
            "page_no": page_no,
            "pages": max(1, -(-result.total // PAGE_SIZE)),
        }
        if request.htmx:
            return Template(template_name="modules/_table.html", context=context)
        return Template(template_name="modules/list.html", context=context)

    @get("/modules/{serial:str}", opt=page(*ALL_ROLES))
    async def module_detail(
        self,
        serial: FromPath[str],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> Template:
        async with db.read() as uow:
            module = await service.get_module(uow, lifecycle, serial)
            spec = await service.get_spec(uow, module.spec)
            parts = await service.list_parts(uow, module=serial, kind=None, limit=500, offset=0)
            events = await service.module_events(uow, serial)
            site_list = (await sites.list_sites(uow, country=None, security_level=None, limit=500, offset=0)).items
            live_after = await outbox.head(uow)  # the page's event stream starts where this rendering read
        counts: dict[str, int] = {}
        for part in parts.items:
            counts[part.kind] = counts.get(part.kind, 0) + 1
        expected = {line.kind: line.quantity for line in spec.bom}
        return Template(
            template_name="modules/detail.html",
            context={
                "principal": principal,
                "module": module,
                "spec": spec,
                "parts": parts,
                "counts": counts,
                "expected": expected,
                "events": list(reversed(events)),
                "chapters": list(reversed(domain.chapters(events))),
                "state": lifecycle.state(module.state),
                "lifecycle": lifecycle,
                "actions": [t for t in lifecycle.available_from(module.state) if set(t.roles) & set(principal.roles)],
                "sites": site_list,
                "live_after": live_after,
            },
        )

    @post("/modules/{serial:str}/transitions", opt=page(*STAFF), status_code=200)
    async def take_transition(
        self,
        serial: FromPath[str],
        data: URLEncodedBody[TransitionForm],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> Response[Any]:
        """A transition button on the module page (htmx): reload on success, say why not otherwise."""
        payload = {k: v for k, v in (("reason", data.reason), ("site", data.site), ("note", data.note)) if v}
        request = TransitionRequest(transition=data.transition, payload=payload)
        try:
            async with db.write() as uow:
                await transitions.transition(uow, lifecycle, serial, request, principal, if_match=data.version or None)
        except DomainError as exc:
            return Template(template_name="partials/feedback.html", context={"error": exc.detail, "status": exc.status})
        return ClientRefresh()


class PartScanForm(msgspec.Struct):
    module: str = ""
    part_number: str = ""
    serial: str = ""


class StationPages(Controller):
    """The floor: pick a station, scan a module, then scan its parts. Keyboard-wedge scanners type
    the code and Enter, so every field submits on Enter and focus returns to the scan field."""

    include_in_schema = False

    @get("/stations", opt=page(Role.FLOOR, Role.ADMIN))
    async def stations(self, db: NamedDependency[Database], principal: NamedDependency[Principal]) -> Template:
        async with db.read() as uow:
            factories = await service.list_factories(uow)
        return Template(template_name="floor/stations.html", context={"principal": principal, "factories": factories})

    @get("/stations/{code:str}", opt=page(Role.FLOOR, Role.ADMIN))
    async def station(
        self,
        code: FromPath[str],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        tag_setup: NamedDependency[TagSetup],
        module: FromQuery[str] = "",
    ) -> Template:
        """A module's tag scanned here (or its serial typed, for a damaged tag) opens its build sheet."""
        error = ""
        serial = ""
        if module.strip():
            try:
                serial = tag_setup.serial_from_scan(module).upper()
            except DomainError as exc:
                error = exc.detail
        context = await _station_context(db, lifecycle, code, serial)
        if error:
            context.update(error=error, serial=module.strip()[:80])
        return Template(template_name="floor/station.html", context={**context, "principal": principal})

    @post("/stations/{code:str}/scan", opt=page(Role.FLOOR, Role.ADMIN), status_code=200)
    async def scan_part(
        self,
        code: FromPath[str],
        data: URLEncodedBody[PartScanForm],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        tag_setup: NamedDependency[TagSetup],
    ) -> Template:
        """One part scan (the vendor's serial barcode, or an afm part tag): install it, then show a big
        pass/fail line and the BOM progress."""
        outcome: dict[str, Any]
        kind = data.part_number.split("|", 1)[0]
        part_number = data.part_number.split("|", 1)[-1]
        try:
            part_serial = tag_setup.serial_from_scan(data.serial)
            async with db.write() as uow:
                part = await service.install_part(
                    uow,
                    data.module,
                    PartInstall(serial=part_serial, kind=kind, part_number=part_number, station=code),
                    principal,
                )
            outcome = {"ok": True, "text": f"Installed {part.kind} {part.serial} at {part.position}"}
        except DomainError as exc:
            outcome = {"ok": False, "text": exc.detail}
        except msgspec.ValidationError as exc:
            outcome = {"ok": False, "text": f"not a part serial: {exc}"}
        context = await _station_context(db, lifecycle, code, data.module, selected=data.part_number)
        return Template(template_name="floor/_scan.html", context={**context, "outcome": outcome})


async def _station_context(
    db: Database, lifecycle: Lifecycle, code: str, serial: str, selected: str = ""
) -> dict[str, Any]:
    async with db.read() as uow:
        stations = await service.list_stations(uow, None, None)
        station = next((s for s in stations if s.code == code), None)
        if station is None:
            raise NotFound(f"no station {code!r}", station=code)
        context: dict[str, Any] = {
            "station": station,
            "serial": serial,
            "module": None,
            "error": "",
            "selected": selected,
        }
        if serial:
            try:
                module = await service.get_module(uow, lifecycle, serial)
                spec = await service.get_spec(uow, module.spec)
                parts = await service.list_parts(uow, module=serial, kind=None, limit=500, offset=0)
            except DomainError as exc:
                context["error"] = exc.detail
                return context
            counts: dict[str, int] = {}
            for p in parts.items:
                counts[p.kind] = counts.get(p.kind, 0) + 1
            context.update(
                module=module,
                state=lifecycle.state(module.state),
                bom=[(line, counts.get(line.kind, 0)) for line in spec.bom],
            )
    return context
