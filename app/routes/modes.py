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
from app.core.definitions import DefinitionError, locate, schema_fault

MODES_FILE = PROJECT_ROOT / "workflows" / "transport-modes.toml"
REQUIRED_MODES = ("road", "sea", "air")  # the planner builds lanes of these

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


class Air(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    hubs: tuple[Iata, ...] = ()


class PassageDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    tag: str  # searoute's edge tag
    name: str
    countries: tuple[Country, ...] = ()
    avoid_by_default: bool = False


class TransportModes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    modes: tuple[Mode, ...]
    passages: tuple[PassageDef, ...] = ()
    access: Access = Access()
    air: Air = Air()
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
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
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
