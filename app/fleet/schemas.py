"""Wire shapes of the fleet area: site capacity and demand, redeployment plans, report tables."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

SpecCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class CapacityIn(msgspec.Struct, forbid_unknown_fields=True):
    power_kw: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
    module_slots: Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class DemandIn(msgspec.Struct, forbid_unknown_fields=True):
    spec: SpecCode | None = None  # None: modules of any spec
    modules: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    gpus: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0  # or in GPUs of the spec
    from_date: dt.date | None = None  # default: today
    note: Annotated[str, msgspec.Meta(max_length=300)] = ""


class DemandListIn(msgspec.Struct, forbid_unknown_fields=True):
    demand: Annotated[list[DemandIn], msgspec.Meta(max_length=100)]


class DemandRead(msgspec.Struct):
    spec: str | None
    modules: int
    gpus: int
    from_date: dt.date
    note: str
    updated_by: str
    updated_at: dt.datetime


class SiteCapacityRead(msgspec.Struct):
    site: str
    name: str
    country: str
    security_level: str
    power_kw: float
    module_slots: int
    used_power_kw: float
    used_slots: int
    installed: dict[str, int]  # spec code -> modules at the site (delivered, commissioning, in service…)
    demand: list[DemandRead]


class PlanIn(msgspec.Struct, forbid_unknown_fields=True):
    criterion: Literal["cost", "time", "co2"] = "cost"
    on: dt.date | None = None  # demand in force on this date (default: today)


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    moves: Annotated[list[MoveIn], msgspec.Meta(min_length=1, max_length=1000)]
    planned_departure: dt.datetime
    values: dict[str, Annotated[float, msgspec.Meta(ge=0)]]  # declared customs value by spec code
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=300)] = "redeployment to meet demand"
    criterion: Literal["cost", "time", "co2"] = "cost"


class MoveIn(msgspec.Struct, forbid_unknown_fields=True):
    serial: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    to_site: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
