from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.core.auth.domain import ALL_ROLES, Role
from app.core.auth.guards import allow
from app.core.config import Settings
from app.core.db import Database
from app.core.schemas import Limit, Offset, Page
from app.logistics import service
from app.logistics.schemas import CrateCreate, CrateRead


class CrateController(Controller):
    path = "/api/v1/crates"
    tags = ["logistics"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListCrates")
    async def list_crates(
        self, db: NamedDependency[Database], limit: Limit = 100, offset: Offset = 0
    ) -> Page[CrateRead]:
        """Returnable crates, each with its GRAI."""
        async with db.read() as uow:
            return await service.list_crates(uow, limit=limit, offset=offset)

    @get("/{serial:str}", opt=allow(*ALL_ROLES), operation_id="GetCrate")
    async def get_crate(self, serial: FromPath[str], db: NamedDependency[Database]) -> CrateRead:
        async with db.read() as uow:
            return service.crate_read(await service.load_crate(uow, serial))

    @post("/", opt=allow(Role.ADMIN, Role.PLANNER, Role.FLOOR), operation_id="RegisterCrate")
    async def register_crate(
        self, data: JSONBody[CrateCreate], db: NamedDependency[Database], settings: NamedDependency[Settings]
    ) -> CrateRead:
        """Register a crate; its GRAI is our GS1 company prefix + asset type + check digit + serial."""
        async with db.write() as uow:
            return await service.register_crate(uow, settings.gs1_company_prefix, data)
