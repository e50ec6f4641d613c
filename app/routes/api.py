from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from app.core.auth.domain import ALL_ROLES
from app.core.auth.guards import allow
from app.core.db import Database
from app.routes import service
from app.routes.schemas import PlaceRead, PlanIn, PlanRead
from app.routes.service import NetworkHolder


class RouteController(Controller):
    path = "/api/v1"
    tags = ["routes"]

    @get("/places", opt=allow(*ALL_ROLES), operation_id="FindPlaces")
    async def places(
        self,
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
        q: FromQuery[str] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[PlaceRead]:
        """Ports (UN/LOCODE), airports (air:IATA), factories and sites whose code or name matches `q`."""
        network = await route_network.get()
        async with db.read() as uow:
            return await service.search_places(uow, network, q, limit)

    @post("/routes/plan", opt=allow(*ALL_ROLES), operation_id="PlanRoutes", status_code=200)
    async def plan(
        self, data: JSONBody[PlanIn], db: NamedDependency[Database], route_network: NamedDependency[NetworkHolder]
    ) -> PlanRead:
        """Up to `k` routes best first by the criterion, over sea lanes, road access and air, honouring the
        avoided countries, passages and modes and the module's weight and height. 422 names the constraint
        that cut the last route."""
        network = await route_network.get()
        async with db.read() as uow:
            return await service.plan(uow, network, data)
