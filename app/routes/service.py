"""Route planning at the edge: the network loaded once per process (from its disk cache), places named
the way the API names them (UN/LOCODE, air:IATA, site:CODE, factory:CODE, a point), a module's spec
turned into weight and height limits, and the pure planner's answer in the API's shape."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import msgspec
from sqlalchemy import select

from app.core.db import UnitOfWork
from app.core.errors import InvalidInput, NotFound, RuleRefused
from app.factory.models import Factory
from app.factory.service import load_module
from app.routes import domain, export
from app.routes.domain import Network, Place, RouteError, RouteRequest, UnknownPlaceError
from app.routes.export import ExportDecision
from app.routes.schemas import ExportRead, LegRead, PlaceRead, PlanIn, PlanRead, PointIn, RouteRead
from app.sites.models import Site


class NetworkHolder:
    """The route network of this process: loaded on first use (0.25 s from the cache under var/cache,
    about 1.5 s to build it the first time), then shared read-only by every request."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._network: Network | None = None
        self._lock: asyncio.Lock | None = None

    async def get(self) -> Network:
        if self._network is not None:
            return self._network
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._network is None:
                from app.routes.network import load_network

                self._network = await asyncio.to_thread(load_network, self.cache_dir)
        return self._network


def place_read(place: Place, kind: str | None = None) -> PlaceRead:
    return PlaceRead(
        code=place.code, name=place.name, kind=kind or place.kind, country=place.country, lat=place.lat, lon=place.lon
    )


def _kind(place: Place) -> str:
    for prefix, kind in (("site:", "site"), ("factory:", "factory")):
        if place.code.startswith(prefix):
            return kind
    return place.kind


def _nearest_port_country(network: Network, lat: float, lon: float) -> str:
    best, country = math.inf, ""
    for code in network.port_codes:
        p = network.places[code]
        d = domain.great_circle_km(lat, lon, p.lat, p.lon)
        if d < best:
            best, country = d, p.country
    return country


async def resolve_place(uow: UnitOfWork, network: Network, spec: str | PointIn) -> Place:
    """A place as the API names it; unknown names are 404 with what was asked."""
    try:
        if isinstance(spec, PointIn):
            country = spec.country or _nearest_port_country(network, spec.lat, spec.lon)
            return domain.point(network, spec.lat, spec.lon, country, spec.name)
        text = spec.strip()
        for prefix, model in (("site:", Site), ("factory:", Factory)):
            if text.lower().startswith(prefix):
                code = text[len(prefix) :].upper()
                row = await uow.session.scalar(select(model).where(model.code == code))
                if row is None:
                    raise NotFound(f"no {prefix[:-1]} {code!r}", place=text)
                at = domain.point(network, row.lat, row.lon, row.country, row.name)
                return msgspec.structs.replace(at, code=f"{prefix}{code}")
        return domain.place(network, text)
    except UnknownPlaceError as exc:
        raise NotFound(str(exc), place=str(spec)) from None
    except RouteError as exc:
        raise InvalidInput(str(exc)) from None


async def search_places(uow: UnitOfWork, network: Network, q: str, limit: int) -> list[PlaceRead]:
    """Factories and sites first (they are few and ours), then ports and airports."""
    needle = q.strip()
    if not needle:
        return []
    found: list[PlaceRead] = []
    like = f"%{needle.lower()}%"
    for prefix, model in (("factory:", Factory), ("site:", Site)):
        rows = await uow.session.scalars(
            select(model).where(model.code.ilike(like) | model.name.ilike(like)).order_by(model.code).limit(limit)
        )
        for row in rows:
            found.append(PlaceRead(f"{prefix}{row.code}", row.name, prefix[:-1], row.country, row.lat, row.lon))
    found += [place_read(p) for p in domain.find_places(network, needle, limit)]
    return found[:limit]


def _route_read(route: domain.Route) -> RouteRead:
    return RouteRead(
        distance_km=round(route.distance_km, 1),
        duration_h=round(route.hours, 1),
        cost=round(route.cost_usd, 2),
        co2_kg=round(route.co2_kg, 1),
        passages=list(route.passages),
        countries=list(route.countries),
        legs=[
            LegRead(
                mode=leg.mode,
                origin=place_read(leg.from_, _kind(leg.from_)),
                destination=place_read(leg.to, _kind(leg.to)),
                distance_km=round(leg.distance_km, 1),
                duration_h=round(leg.hours, 1),
                cost=round(leg.cost_usd, 2),
                co2_kg=round(leg.co2_kg, 1),
                countries=list(leg.countries),
                passages=list(leg.passages),
            )
            for leg in route.legs
        ],
        geometry=route.geometry,
    )


async def plan(uow: UnitOfWork, network: Network, data: PlanIn) -> PlanRead:
    """Routes best first; 422 naming the constraint when none is left."""
    origin = await resolve_place(uow, network, data.origin)
    destination = await resolve_place(uow, network, data.destination)
    weight_kg = height_mm = None
    decision: ExportDecision | None = None
    no_calls: set[str] = set()
    avoid = {c.upper() for c in data.avoid_countries}
    if data.module:
        module = await load_module(uow, data.module)
        weight_kg, height_mm = module.spec.weight_kg, float(module.spec.height_mm)
        decision = export.decide(export.load_rules(), module.spec.export_class, destination.country, network.countries)
        if decision.status == "denied":
            raise RuleRefused(
                f"export rules refuse {module.serial} ({decision.eccn}) to {destination.country}: {decision.rule}"
                f" — {decision.citation} (export rules {decision.rules_version})",
                export=msgspec.to_builtins(decision),
            )
        # No port call, landing or land crossing in a barred country (its waters may be passed); the two
        # ends are the shipment's own business.
        no_calls = set(decision.transit_barred) - {origin.country, destination.country}
    request = RouteRequest(
        origin=origin,
        destination=destination,
        criterion=data.criterion,
        modes=tuple(data.modes) if data.modes else None,
        avoid_countries=tuple(sorted(avoid)),
        no_calls=tuple(sorted(no_calls)),
        avoid_passages=tuple(data.avoid_passages),
        k=data.k,
        weight_kg=weight_kg,
        height_mm=height_mm,
    )
    try:
        # In the event loop, not a thread: the network's memo caches are shared and unlocked, and a plan
        # takes milliseconds.
        answer = domain.plan(network, request)
    except UnknownPlaceError as exc:
        raise NotFound(str(exc)) from None
    except RouteError as exc:
        raise InvalidInput(str(exc)) from None
    if not answer.routes:
        raise RuleRefused(
            f"no route from {origin.name} to {destination.name}: {answer.refused_by} cuts the last one",
            refused_by=answer.refused_by,
        )
    return PlanRead(
        origin=place_read(origin, _kind(origin)),
        destination=place_read(destination, _kind(destination)),
        criterion=data.criterion,
        routes=[_route_read(r) for r in answer.routes],
        module=data.module,
        export=msgspec.convert(msgspec.to_builtins(decision), ExportRead) if decision is not None else None,
    )
