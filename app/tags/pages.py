"""The floor scan page: a keyboard-wedge scanner or a phone camera, online or offline."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from app.core.auth.domain import STAFF, Principal
from app.core.auth.guards import page
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.factory import service as factory
from app.sites import service as sites


class ScanPages(Controller):
    include_in_schema = False

    @get("/scan", opt=page(*STAFF))
    async def scan(
        self,
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        station: FromQuery[str] = "",
        site: FromQuery[str] = "",
    ) -> Template:
        async with db.read() as uow:
            stations = await factory.list_stations(uow, factory=None, kind=None)
            site_list = (await sites.list_sites(uow, country=None, security_level=None, limit=500, offset=0)).items
        actions = [t for t in lifecycle.transitions if set(t.roles) & set(principal.roles)]
        return Template(
            template_name="floor/scan.html",
            context={
                "principal": principal,
                "stations": stations,
                "sites": site_list,
                "actions": actions,
                "station": station,
                "site": site,
            },
        )
