from __future__ import annotations

from typing import Annotated, Literal

import msgspec

SecurityLevel = Literal["commercial", "sovereign", "defence"]
RenewableSource = Literal["hydro", "geothermal", "wind", "solar", "nuclear", "grid_mix"]
Cooling = Literal["liquid", "free_air", "hybrid", "seawater"]


class SiteRead(msgspec.Struct):
    code: str
    name: str
    operator: str
    country: str
    city: str
    lat: float
    lon: float
    power_kw: float
    module_slots: int
    renewable_source: str
    cooling: str
    security_level: str
    unlocode: str
    airport: str


class SiteCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{3,16}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    power_kw: Annotated[float, msgspec.Meta(gt=0)]
    module_slots: Annotated[int, msgspec.Meta(ge=0)]
    renewable_source: RenewableSource
    cooling: Cooling
    security_level: SecurityLevel
    operator: str = ""
    city: str = ""
    unlocode: Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2}[A-Z2-9]{3})?$")] = ""
    airport: Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{3})?$")] = ""
