"""Load the demo fleet from fixtures/demo/*.toml. Idempotent: what exists already is left alone.

Module histories are imported as a `module.imported` ledger event carrying the state the module
had when it was taken over (the lifecycle engine replays real transitions from then on). Part
serials are generated deterministically from the module serial and the spec's bill of materials.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec

from app.core.auth import service as auth
from app.core.auth.repository import UserRepository
from app.core.config import PROJECT_ROOT
from app.core.db import Database, UnitOfWork
from app.core.definitions import Lifecycle, load_lifecycle
from app.core.errors import InvalidInput
from app.core.ledger import service as ledger
from app.core.ledger.domain import GENESIS
from app.factory.models import Factory, Module, Part, Spec, Station
from app.factory.repository import FactoryRepository
from app.factory.schemas import BomLine, SpecCreate
from app.sites.models import Site
from app.sites.repository import SiteRepository
from app.sites.schemas import SiteCreate

DEMO_DIR = PROJECT_ROOT / "fixtures" / "demo"
DEMO_PASSWORD = "demo"
DEMO_USERS = (
    ("admin", "Ada Admin", ["admin"]),
    ("floor", "Farid Floor", ["floor"]),
    ("planner", "Priya Planner", ["planner"]),
    ("engineer", "Erik Engineer", ["engineer"]),
    ("auditor", "Aiko Auditor", ["auditor"]),
)
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
T = TypeVar("T")


class StationDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    kind: Literal["receiving", "assembly", "burn_in", "inspection", "packing"]


class FactoryDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    city: str
    lat: float
    lon: float
    unlocode: str
    stations: list[StationDef]


class ModuleDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    serial: Annotated[str, msgspec.Meta(pattern=r"^AFM-\d{2}-\d{6}$")]
    spec: str
    factory: str
    state: str
    site: str
    built_on: dt.date
    hold_reason: str = ""


class Factories(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    factories: list[FactoryDef]


class Sites(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sites: list[SiteCreate]


class Specs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    specs: list[SpecCreate]


class Modules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    modules: list[ModuleDef]


class DemoFleet(msgspec.Struct, frozen=True):
    factories: list[FactoryDef]
    sites: list[SiteCreate]
    specs: list[SpecCreate]
    modules: list[ModuleDef]


class LoadReport(msgspec.Struct):
    users: int = 0
    factories: int = 0
    stations: int = 0
    sites: int = 0
    specs: int = 0
    modules: int = 0
    parts: int = 0
    events: int = 0


def _decode(path: Path, kind: type[T]) -> T:
    try:
        return msgspec.toml.decode(path.read_bytes(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}") from exc


def read_fleet(directory: Path = DEMO_DIR) -> DemoFleet:
    fleet = DemoFleet(
        factories=_decode(directory / "factories.toml", Factories).factories,
        sites=_decode(directory / "sites.toml", Sites).sites,
        specs=_decode(directory / "specs.toml", Specs).specs,
        modules=_decode(directory / "modules.toml", Modules).modules,
    )
    check_fleet(fleet, load_lifecycle(), str(directory))
    return fleet


def check_fleet(fleet: DemoFleet, lifecycle: Lifecycle, source: str) -> None:
    """Cross-references the decoder cannot see: every code a module names must exist."""
    faults: list[str] = []
    specs = {s.code for s in fleet.specs}
    factories = {f.code for f in fleet.factories}
    sites = {s.code for s in fleet.sites}
    for m in fleet.modules:
        if m.spec not in specs:
            faults.append(f"modules.toml: {m.serial}: unknown spec {m.spec!r}")
        if m.factory not in factories:
            faults.append(f"modules.toml: {m.serial}: unknown factory {m.factory!r}")
        if m.site and m.site not in sites:
            faults.append(f"modules.toml: {m.serial}: unknown site {m.site!r}")
        if m.state not in lifecycle.state_ids:
            faults.append(f"modules.toml: {m.serial}: unknown state {m.state!r}")
    for s in fleet.specs:
        gpus = sum(line.quantity for line in s.bom if line.kind == "gpu")
        if gpus != s.gpu_count:
            faults.append(f"specs.toml: {s.code}: bom lists {gpus} GPUs, gpu_count is {s.gpu_count}")
    if faults:
        raise InvalidInput(f"{source}: " + "; ".join(faults))


def part_serial(module_serial: str, kind: str, manufacturer: str, index: int) -> str:
    """A stable, realistic-looking serial: NVIDIA GPUs carry 13 digits, others a maker prefix."""
    digest = hashlib.sha256(f"{module_serial}/{kind}/{index}".encode()).hexdigest()
    if kind == "gpu" and manufacturer.upper() == "NVIDIA":
        return "1" + str(int(digest[:16], 16))[:12].rjust(12, "0")
    prefix = "".join(ch for ch in manufacturer.upper() if ch.isalnum())[:3] or "PRT"
    return f"{prefix}{kind.upper()[:2]}{digest[:10].upper()}"


def _installed_fraction(state: str) -> float:
    return {"planned": 0.0, "assembling": 0.5}.get(state, 1.0)


async def _ensure_users(uow: UnitOfWork, report: LoadReport) -> None:
    repo = UserRepository(uow.session)
    for username, full_name, roles in DEMO_USERS:
        if await repo.by_username(username) is None:
            await auth.create_user(uow, username, DEMO_PASSWORD, roles, full_name, check_policy=False)
            report.users += 1


async def load(
    db: Database, fleet: DemoFleet | None = None, progress: Callable[[int, int], None] | None = None
) -> LoadReport:
    """Load the demo fleet in one transaction; a second run adds nothing."""
    fleet = fleet or read_fleet()
    lifecycle = load_lifecycle()
    report = LoadReport()
    async with db.write() as uow:
        await _ensure_users(uow, report)
        repo = FactoryRepository(uow.session)
        site_repo = SiteRepository(uow.session)
        factories: dict[str, Factory] = {}
        for f in fleet.factories:
            factory = await repo.factory(f.code)
            if factory is None:
                factory = Factory(
                    **{k: getattr(f, k) for k in ("code", "name", "country", "city", "lat", "lon", "unlocode")}
                )
                repo.add(factory)
                await uow.session.flush()
                for s in f.stations:
                    repo.add(Station(code=s.code, name=s.name, kind=s.kind, factory_id=factory.id))
                    report.stations += 1
                report.factories += 1
            factories[f.code] = factory
        sites: dict[str, Site] = {}
        for s in fleet.sites:
            site = await site_repo.site(s.code)
            if site is None:
                site = Site(**msgspec.structs.asdict(s))
                site_repo.add(site)
                report.sites += 1
            sites[s.code] = site
        specs: dict[str, Spec] = {}
        for sp in fleet.specs:
            spec = await repo.spec(sp.code)
            if spec is None:
                fields = msgspec.structs.asdict(sp)
                fields["bom"] = msgspec.to_builtins(sp.bom)
                spec = Spec(**fields)
                repo.add(spec)
                report.specs += 1
            specs[sp.code] = spec
        await uow.session.flush()
        for done, m in enumerate(fleet.modules, start=1):
            if progress:
                progress(done, len(fleet.modules))
            if await repo.serial_taken(m.serial):
                continue
            await _import_module(uow, lifecycle, m, specs[m.spec], factories[m.factory], sites.get(m.site), report)
    return report


async def _import_module(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    m: ModuleDef,
    spec: Spec,
    factory: Factory,
    site: Site | None,
    report: LoadReport,
) -> None:
    at = dt.datetime.combine(m.built_on, dt.time(8, 0), tzinfo=dt.UTC)
    held = m.state == "on_hold"
    module = Module(
        serial=m.serial,
        spec=spec,
        factory=factory,
        site=site,
        state=m.state,
        hold_return_state=("in_service" if site else "assembled") if held else None,
        hold_reason=m.hold_reason,
        version=0,
        head_hash=GENESIS,
        created_at=at,
        updated_at=at,
    )
    uow.session.add(module)
    await uow.session.flush()
    fraction = _installed_fraction(m.state)
    installed: list[str] = []
    for line in msgspec.convert(spec.bom, list[BomLine]):
        count = round(line.quantity * fraction)
        for i in range(count):
            serial = part_serial(m.serial, line.kind, line.manufacturer, i)
            uow.session.add(
                Part(
                    serial=serial,
                    kind=line.kind,
                    part_number=line.part_numbers[i % len(line.part_numbers)],
                    manufacturer=line.manufacturer,
                    description=line.description,
                    module_id=module.id,
                    position=f"{line.kind}-{i + 1:03d}",
                    installed_at=at,
                )
            )
        report.parts += count
        if count:
            installed.append(f"{line.kind}×{count}")
    payload: dict[str, object] = {
        "spec": spec.code,
        "factory": factory.code,
        "state": m.state,
        "site": site.code if site else None,
        "parts": ", ".join(installed),
        "source": "demo fleet import",
    }
    if held:
        payload["hold_reason"] = m.hold_reason
        payload["hold_return_state"] = module.hold_return_state
    await ledger.append(
        uow,
        module,
        "module.imported",
        actor="system",
        role="admin",
        place=factory.code,
        at=at,
        payload=payload,
    )
    report.modules += 1
    report.events += 1
