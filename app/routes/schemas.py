from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Criterion = Literal["distance", "time", "cost", "co2"]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2}$")]


class PointIn(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    country: CountryCode | None = None  # needed to honour country constraints; else the nearest port's
    name: str = ""


# A PLACE: "NLRTM" (UN/LOCODE), "air:AMS" (IATA), "site:CODE", "factory:CODE", or a point.
PlaceIn = str | PointIn


class PlanIn(msgspec.Struct, forbid_unknown_fields=True):
    origin: PlaceIn
    destination: PlaceIn
    criterion: Criterion = "distance"
    modes: list[Literal["road", "rail", "sea", "air"]] | None = None
    avoid_countries: list[CountryCode] = []
    avoid_passages: list[str] = []
    k: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    module: str | None = None  # a module's serial: its spec's weight and height limit the lanes


class PlaceRead(msgspec.Struct):
    code: str
    name: str
    kind: str  # port, airport, factory, site, point
    country: str
    lat: float
    lon: float


class LegRead(msgspec.Struct):
    mode: str
    origin: PlaceRead
    destination: PlaceRead
    distance_km: float
    duration_h: float
    cost: float
    co2_kg: float
    countries: list[str]
    passages: list[str]


class RouteRead(msgspec.Struct):
    distance_km: float
    duration_h: float
    cost: float  # USD
    co2_kg: float
    passages: list[str]
    countries: list[str]
    legs: list[LegRead]
    geometry: dict[str, Any]  # GeoJSON


class ExportRead(msgspec.Struct):
    status: str  # allowed, license_required, denied, needs_review
    eccn: str
    destination: str
    rule: str
    citation: str
    rules_version: str
    transit_barred: list[str]  # countries the routes were kept from calling at
    transit_citation: str


class PlanRead(msgspec.Struct):
    origin: PlaceRead
    destination: PlaceRead
    criterion: str
    routes: list[RouteRead]  # best first
    module: str | None = None
    export: ExportRead | None = None  # the export rule that applied to the module and destination
