from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from app.core.auth.domain import ALL_ROLES, Role
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.schemas import Limit, Offset, Page
from app.sites import service
from app.sites.schemas import SecurityLevel, SiteCreate, SiteRead


class SiteController(Controller):
    path = "/api/v1/sites"
    tags = ["sites"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListSites")
    async def list_sites(
        self,
        db: NamedDependency[Database],
        country: FromQuery[str | None] = None,
        security_level: FromQuery[SecurityLevel | None] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[SiteRead]:
        """Sites, each with its ISO 3166 country and security level."""
        async with db.read() as uow:
            return await service.list_sites(
                uow, country=country, security_level=security_level, limit=limit, offset=offset
            )

    @get("/{code:str}", opt=allow(*ALL_ROLES), operation_id="GetSite")
    async def get_site(self, code: FromPath[str], db: NamedDependency[Database]) -> SiteRead:
        async with db.read() as uow:
            return await service.get_site(uow, code)

    @post("/", opt=allow(Role.ADMIN, Role.PLANNER), operation_id="CreateSite")
    async def create_site(self, data: JSONBody[SiteCreate], db: NamedDependency[Database]) -> SiteRead:
        async with db.write() as uow:
            return await service.create_site(uow, data)
