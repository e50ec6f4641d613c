"""workflows/transport-modes.toml decoded into frozen Structs: the data that prices and limits lanes.

Types are checked by msgspec (faults carry the TOML line via `schema_fault`); the cross-checks here
see what types cannot (duplicate ids, missing modes the planner needs, unknown hubs' shape).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Annotated

import msgspec

from app.core.config import PROJECT_ROOT
from app.core.definitions import TOML_FAULTS, DefinitionError, locate, schema_fault

MODES_FILE = PROJECT_ROOT / "workflows" / "transport-modes.toml"
REQUIRED_MODES = ("road", "rail", "sea", "air")  # the planner builds lanes of these

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Iata = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{3}$")]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$")]


class Mode(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    label: str
    speed_kmh: Positive
    dwell_hours: NonNegative  # at each end of a leg of this mode (a transfer)
    handling_usd: NonNegative  # per lift at each end
    handling_co2_kg: NonNegative
    usd_per_tkm: NonNegative
    co2_g_per_tkm: NonNegative  # GLEC v3 default, well-to-wheel
    max_weight_kg: Positive
    max_height_mm: Positive
    circuity: Annotated[float, msgspec.Meta(ge=1)] = 1.0  # lane length / great-circle length


class Access(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ports: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    airports: Annotated[int, msgspec.Meta(ge=0, le=20)] = 2
    max_road_km: Positive = 1500.0
    rail_terminals: Annotated[int, msgspec.Meta(ge=0, le=20)] = 2  # nearest terminals a place trucks to
    max_drayage_km: Positive = 300.0  # truck to or from a rail terminal, great circle
    max_rail_km: Positive = 2500.0  # one rail leg, great circle
    max_berth_km: Positive = 150.0  # a "port" farther than this from the sea lanes is an inland terminal


class LaneLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A lower limit for lanes of one mode that touch one country (a national rule)."""

    mode: Slug
    country: Country
    max_weight_kg: Positive | None = None
    max_height_mm: Positive | None = None
    source: str = ""


class Air(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    hubs: tuple[Iata, ...] = ()


class PassageDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    tag: str  # searoute's edge tag
    name: str
    countries: tuple[Country, ...] = ()
    avoid_by_default: bool = False
    delay_hours: NonNegative = 0.0  # waiting and slow transit beyond the lane's sailing time
    toll_usd: NonNegative = 0.0  # per module (a share of the ship's toll)


class TransportModes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    modes: tuple[Mode, ...]
    passages: tuple[PassageDef, ...] = ()
    access: Access = Access()
    air: Air = Air()
    limits: tuple[LaneLimit, ...] = ()
    default_weight_kg: Positive = 20000.0

    def mode(self, mode_id: str) -> Mode:
        for m in self.modes:
            if m.id == mode_id:
                return m
        raise KeyError(mode_id)

    def passage(self, passage_id: str) -> PassageDef:
        for p in self.passages:
            if p.id == passage_id:
                return p
        raise KeyError(passage_id)

    @property
    def by_tag(self) -> dict[str, PassageDef]:
        return {p.tag: p for p in self.passages}


def decode_modes(text: bytes, source: str) -> TransportModes:
    """Decode and check the modes file; raises DefinitionError listing every fault as file:line."""
    decoded = text.decode("utf-8", errors="replace")
    try:
        data = msgspec.toml.decode(text, type=TransportModes)
    except TOML_FAULTS as exc:
        raise DefinitionError([schema_fault(source, decoded, exc)]) from exc
    faults: list[str] = []

    def fault(path: str, message: str) -> None:
        faults.append(f"{source}:{locate(decoded, path)}: {message}")

    ids = [m.id for m in data.modes]
    for i, m in enumerate(data.modes):
        if ids.index(m.id) != i:
            fault(f"$.modes[{i}].id", f"duplicate mode id {m.id!r}")
    for required in REQUIRED_MODES:
        if required not in ids:
            fault("$.modes", f"mode {required!r} is required")
    pids = [p.id for p in data.passages]
    tags = [p.tag for p in data.passages]
    for i, p in enumerate(data.passages):
        if pids.index(p.id) != i:
            fault(f"$.passages[{i}].id", f"duplicate passage id {p.id!r}")
        if tags.index(p.tag) != i:
            fault(f"$.passages[{i}].tag", f"passage {p.id!r}: tag {p.tag!r} is mapped twice")
    seen: set[tuple[str, str]] = set()
    for i, limit in enumerate(data.limits):
        if limit.mode not in ids:
            fault(f"$.limits[{i}].mode", f"unknown mode {limit.mode!r}")
        if (limit.mode, limit.country) in seen:
            fault(f"$.limits[{i}].country", f"a second {limit.mode} limit for {limit.country}")
        seen.add((limit.mode, limit.country))
        if limit.max_weight_kg is None and limit.max_height_mm is None:
            fault(f"$.limits[{i}]", "a limit needs max_weight_kg or max_height_mm")
    if len(set(data.air.hubs)) != len(data.air.hubs):
        fault("$.air.hubs", "an air hub is listed twice")
    if faults:
        raise DefinitionError(faults)
    return data


@functools.cache
def load_modes(path: Path = MODES_FILE) -> TransportModes:
    return decode_modes(path.read_bytes(), path.name)


def modes_digest(path: Path = MODES_FILE) -> str:
    """A short hash of the file, part of the network cache key."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
