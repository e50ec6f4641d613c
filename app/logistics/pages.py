"""Planner pages for shipments: the list (late first) and one shipment with its legs on a timeline and
on the route map, the custody chain, documents to download and late or seal warnings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.core.auth.domain import ALL_ROLES, Principal
from app.core.auth.guards import page
from app.core.db import Database
from app.integration import outbox
from app.logistics import shipments as service
from app.logistics.schemas import LegRead, ShipmentRead
from app.routes import worldmap

STATUS_COLOURS = {"planned": "#64748b", "in_transit": "#2563eb", "delivered": "#15803d"}


class ShipmentPages(Controller):
    include_in_schema = False

    @get("/shipments", opt=page(*ALL_ROLES))
    async def list_page(
        self, principal: NamedDependency[Principal], db: NamedDependency[Database], status: FromQuery[str] = ""
    ) -> Template:
        async with db.read() as uow:
            items, total = await service.list_shipments(uow, status=status or None, site=None, limit=200, offset=0)
        return Template(
            template_name="logistics/shipments.html",
            context={
                "principal": principal,
                "items": items,
                "total": total,
                "status": status,
                "colours": STATUS_COLOURS,
            },
        )

    @get("/shipments/{ref:str}", opt=page(*ALL_ROLES))
    async def detail(
        self, ref: FromPath[str], principal: NamedDependency[Principal], db: NamedDependency[Database]
    ) -> Template:
        async with db.read() as uow:
            shipment = await service.shipment_read(uow, await service.load_shipment(uow, ref))
            live_after = await outbox.head(uow)  # the page's event stream starts where this rendering read
        return Template(
            template_name="logistics/shipment.html",
            context={
                "principal": principal,
                "s": shipment,
                "timeline": timeline(shipment.legs),
                "map": _map(shipment),
                "colours": STATUS_COLOURS,
                "live_after": live_after,
            },
        )


def _map(shipment: ShipmentRead) -> str:
    geometry = shipment.route.get("geometry")
    return worldmap.render(
        [geometry] if isinstance(geometry, dict) else [],
        [],
        title=f"{shipment.origin['name']} to {shipment.destination['name']}",
    )


def timeline(legs: list[LegRead]) -> dict[str, Any]:
    """Bars per leg on one time axis: planned, and actual-or-expected (amber when late), as
    percentages of the span from the first departure to the last arrival of either."""
    if not legs:
        return {"rows": [], "ticks": []}
    start = min(min(leg.planned_departure, leg.expected_departure) for leg in legs)
    end = max(max(leg.planned_arrival, leg.expected_arrival) for leg in legs)
    span = max((end - start).total_seconds(), 3600.0)

    def pct(t: dt.datetime) -> float:
        return round(100 * (t - start).total_seconds() / span, 2)

    def bar(a: dt.datetime, b: dt.datetime) -> dict[str, float]:
        left = pct(a)
        return {"left": left, "width": max(round(pct(b) - left, 2), 0.4)}

    rows = []
    for leg in legs:
        actual_start = leg.actual_departure or leg.expected_departure
        actual_end = leg.actual_arrival or leg.expected_arrival
        rows.append(
            {
                "leg": leg,
                "planned": bar(leg.planned_departure, leg.planned_arrival),
                "actual": bar(actual_start, actual_end),
                "state": "done" if leg.actual_arrival else ("moving" if leg.actual_departure else "expected"),
                "late": leg.late_hours > 0,
            }
        )
    days = max(1, round(span / 86400))
    step = max(1, days // 6)
    ticks = [
        {"left": pct(start + dt.timedelta(days=d)), "label": (start + dt.timedelta(days=d)).strftime("%d %b")}
        for d in range(0, days + 1, step)
    ]
    return {"rows": rows, "ticks": ticks}
