from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.core.audit import record_admin_action
from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.schemas import Limit, Offset, Page
from app.factory import service
from app.factory.schemas import (
    EventRead,
    FactoryRead,
    ModuleCreate,
    ModuleRead,
    PartInstall,
    PartRead,
    PartRemove,
    PartReplace,
    SpecCreate,
    SpecRead,
    StationRead,
)


class ModuleController(Controller):
    path = "/api/v1/modules"
    tags = ["modules"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListModules")
    async def list_modules(
        self,
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
        site: FromQuery[str | None] = None,
        spec: FromQuery[str | None] = None,
        factory: FromQuery[str | None] = None,
        country: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ModuleRead]:
        """Modules, filtered by lifecycle state, site, spec, factory, site country or serial text."""
        async with db.read() as uow:
            return await service.list_modules(
                uow,
                lifecycle,
                state=state_filter,
                site=site,
                spec=spec,
                factory=factory,
                country=country,
                q=q,
                limit=limit,
                offset=offset,
            )

    @post("/", opt=allow(Role.ADMIN, Role.FLOOR, Role.PLANNER), operation_id="RegisterModule")
    async def register_module(
        self,
        data: JSONBody[ModuleCreate],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> ModuleRead:
        """Register a new module of a spec; the serial is issued (AFM-YY-NNNNNN) unless given."""
        async with db.write() as uow:
            return await service.register_module(uow, lifecycle, data, principal)

    @get("/{serial:str}", opt=allow(*ALL_ROLES), operation_id="GetModule")
    async def get_module(
        self, serial: FromPath[str], db: NamedDependency[Database], lifecycle: NamedDependency[Lifecycle]
    ) -> ModuleRead:
        async with db.read() as uow:
            return await service.get_module(uow, lifecycle, serial)

    @get("/{serial:str}/events", opt=allow(*ALL_ROLES), operation_id="ListModuleEvents")
    async def list_events(self, serial: FromPath[str], db: NamedDependency[Database]) -> list[EventRead]:
        """The module's ledger, oldest first, with each event's hash-chain links."""
        async with db.read() as uow:
            return await service.module_events(uow, serial)


class SpecController(Controller):
    path = "/api/v1/specs"
    tags = ["specs"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListSpecs")
    async def list_specs(self, db: NamedDependency[Database]) -> Page[SpecRead]:
        async with db.read() as uow:
            specs = await service.list_specs(uow)
        return Page(items=specs, total=len(specs), limit=len(specs), offset=0)

    @get("/{code:str}", opt=allow(*ALL_ROLES), operation_id="GetSpec")
    async def get_spec(self, code: FromPath[str], db: NamedDependency[Database]) -> SpecRead:
        async with db.read() as uow:
            return await service.get_spec(uow, code)

    @post("/", opt=allow(Role.ADMIN), operation_id="CreateSpec")
    async def create_spec(
        self, data: JSONBody[SpecCreate], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> SpecRead:
        async with db.write() as uow:
            spec = await service.create_spec(uow, data)
            record_admin_action(uow, principal, "spec.create", spec.code)
            return spec


class FactoryController(Controller):
    path = "/api/v1"
    tags = ["factories"]

    @get("/factories", opt=allow(*ALL_ROLES), operation_id="ListFactories")
    async def list_factories(self, db: NamedDependency[Database]) -> Page[FactoryRead]:
        async with db.read() as uow:
            factories = await service.list_factories(uow)
        return Page(items=factories, total=len(factories), limit=len(factories), offset=0)

    @get("/factories/{code:str}", opt=allow(*ALL_ROLES), operation_id="GetFactory")
    async def get_factory(self, code: FromPath[str], db: NamedDependency[Database]) -> FactoryRead:
        async with db.read() as uow:
            return await service.get_factory(uow, code)

    @get("/stations", opt=allow(*ALL_ROLES), operation_id="ListStations")
    async def list_stations(
        self,
        db: NamedDependency[Database],
        factory: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> Page[StationRead]:
        async with db.read() as uow:
            stations = await service.list_stations(uow, factory, kind)
        return Page(items=stations, total=len(stations), limit=len(stations), offset=0)

    @get("/parts", opt=allow(*ALL_ROLES), operation_id="ListParts")
    async def list_parts(
        self,
        db: NamedDependency[Database],
        module: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[PartRead]:
        """Serial-numbered parts, optionally those installed in one module."""
        async with db.read() as uow:
            return await service.list_parts(uow, module=module, kind=kind, limit=limit, offset=offset)


class BuildStepController(Controller):
    """Build steps at factory stations: parts in and out of a module, each a ledger event."""

    path = "/api/v1/modules/{serial:str}/parts"
    tags = ["factory"]

    @post("/", opt=allow(Role.FLOOR, Role.ADMIN), operation_id="InstallPart", status_code=201)
    async def install(
        self,
        serial: FromPath[str],
        data: JSONBody[PartInstall],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> PartRead:
        """Install a part (refused with where it is when it is already in another module)."""
        async with db.write() as uow:
            return await service.install_part(uow, serial, data, principal)

    @post("/{part:str}/remove", opt=allow(Role.FLOOR, Role.ADMIN), operation_id="RemovePart", status_code=200)
    async def remove(
        self,
        serial: FromPath[str],
        part: FromPath[str],
        data: JSONBody[PartRemove],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> PartRead:
        async with db.write() as uow:
            return await service.remove_part(uow, serial, part, data, principal)

    @post("/{part:str}/replace", opt=allow(Role.FLOOR, Role.ADMIN), operation_id="ReplacePart", status_code=200)
    async def replace(
        self,
        serial: FromPath[str],
        part: FromPath[str],
        data: JSONBody[PartReplace],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> PartRead:
        """Remove a part and install its replacement at the same position, in one transaction."""
        async with db.write() as uow:
            return await service.replace_part(uow, serial, part, data, principal)
