"""The planner page: origin and destination from a search box, criterion and constraints, the
alternatives side by side and drawn on an offline world map."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Template

from app.core.auth.domain import ALL_ROLES, Principal
from app.core.auth.guards import page
from app.core.db import Database
from app.core.errors import DomainError
from app.routes import service, worldmap
from app.routes.schemas import PlanIn
from app.routes.service import NetworkHolder


class PlanForm(msgspec.Struct):
    origin: str = ""
    destination: str = ""
    criterion: str = "time"
    avoid_countries: str = ""  # ISO codes separated by commas or spaces
    avoid_passages: list[str] | str = []
    modes: list[str] | str = []
    module: str = ""
    k: int = 3


def _listed(value: list[str] | str) -> list[str]:
    """A form field that may come once (a string) or repeated (a list)."""
    if isinstance(value, str):
        return [value] if value else []
    return list(value)


class RoutePages(Controller):
    include_in_schema = False

    @get("/routes", opt=page(*ALL_ROLES))
    async def planner(
        self,
        principal: NamedDependency[Principal],
        route_network: NamedDependency[NetworkHolder],
        origin: FromQuery[str] = "",
        destination: FromQuery[str] = "",
    ) -> Template:
        network = await route_network.get()
        return Template(
            template_name="routes/planner.html",
            context={
                "principal": principal,
                "passages": network.modes.passages,
                "form": {"origin": origin, "destination": destination, "criterion": "time", "k": 3},
                "map": worldmap.render(title="World map"),
            },
        )

    @get("/routes/places", opt=page(*ALL_ROLES))
    async def suggestions(
        self,
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
        q: FromQuery[str] = "",
    ) -> Template:
        """<option>s for the search boxes' datalist."""
        network = await route_network.get()
        async with db.read() as uow:
            found = await service.search_places(uow, network, q, 15) if len(q.strip()) >= 2 else []
        return Template(template_name="routes/_places.html", context={"places": found})

    @post("/routes/plan", opt=page(*ALL_ROLES), status_code=200)
    async def plan(
        self,
        data: URLEncodedBody[PlanForm],
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
    ) -> Template:
        network = await route_network.get()
        context: dict[str, Any] = {"error": "", "result": None}
        try:
            request = msgspec.convert(
                {
                    "origin": data.origin.strip(),
                    "destination": data.destination.strip(),
                    "criterion": data.criterion,
                    "avoid_countries": [c for c in data.avoid_countries.replace(",", " ").split() if c],
                    "avoid_passages": _listed(data.avoid_passages),
                    "modes": _listed(data.modes) or None,
                    "module": data.module.strip() or None,
                    "k": data.k,
                },
                PlanIn,
            )
            async with db.read() as uow:
                result = await service.plan(uow, network, request)
            context["result"] = result
            names = {c.upper(): n for c, n in network.countries.items()}
            context["map"] = worldmap.render(
                [r.geometry for r in result.routes],
                [
                    (result.origin.name, result.origin.lon, result.origin.lat),
                    (result.destination.name, result.destination.lon, result.destination.lat),
                ],
                title=f"{result.origin.name} to {result.destination.name}",
                highlight=[names.get(c.upper(), c) for c in request.avoid_countries],
            )
        except DomainError as exc:
            context["error"] = exc.detail
        except msgspec.ValidationError as exc:
            context["error"] = f"check the form: {exc}"
        return Template(template_name="routes/_result.html", context=context)
