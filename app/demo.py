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
from sqlalchemy import select

from app.core.auth import service as auth
from app.core.auth.domain import Principal
from app.core.auth.repository import UserRepository
from app.core.config import PROJECT_ROOT
from app.core.db import Database, UnitOfWork, utcnow
from app.core.definitions import Lifecycle, load_lifecycle
from app.core.errors import InvalidInput
from app.core.lifecycle.schemas import TransitionRequest
from app.core.lifecycle.service import transition
from app.factory.models import Factory, Module, Part, Spec, Station
from app.factory.repository import FactoryRepository
from app.factory.schemas import BomLine, ModuleCreate, SpecCreate
from app.factory.service import register_module
from app.logistics.models import Crate
from app.logistics.schemas import CrateCreate
from app.logistics.service import register_crate
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
    scan_action: str = ""  # a lifecycle transition a scan at this station takes


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


class Crates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    crates: list[CrateCreate]


class DemoFleet(msgspec.Struct, frozen=True):
    factories: list[FactoryDef]
    sites: list[SiteCreate]
    specs: list[SpecCreate]
    modules: list[ModuleDef]
    crates: list[CrateCreate] = []


class LoadReport(msgspec.Struct):
    users: int = 0
    factories: int = 0
    stations: int = 0
    sites: int = 0
    specs: int = 0
    modules: int = 0
    parts: int = 0
    events: int = 0
    crates: int = 0


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
        crates=_decode(directory / "crates.toml", Crates).crates if (directory / "crates.toml").exists() else [],
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
        elif not m.site and (lifecycle.state(m.state).where in ("site", "transit") or m.state == "packed"):
            faults.append(f"modules.toml: {m.serial}: a module that is {m.state} needs a site")
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


async def _actors(uow: UnitOfWork) -> dict[str, Principal]:
    repo = UserRepository(uow.session)
    actors = {}
    for username, _, roles in DEMO_USERS:
        user = await repo.by_username(username)
        assert user is not None
        actors[username] = Principal(user_id=user.id, username=username, roles=tuple(roles), via="cli")
    return actors


async def load(
    db: Database,
    fleet: DemoFleet | None = None,
    progress: Callable[[int, int], None] | None = None,
    company_prefix: str = "0614141",
) -> LoadReport:
    """Load the demo fleet in one transaction; a second run adds nothing."""
    fleet = fleet or read_fleet()
    lifecycle = load_lifecycle()
    report = LoadReport()
    async with db.write() as uow:
        await _ensure_users(uow, report)
        actors = await _actors(uow)
        now = utcnow()
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
                    repo.add(
                        Station(code=s.code, name=s.name, kind=s.kind, factory_id=factory.id, scan_action=s.scan_action)
                    )
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
            await _import_module(
                uow, lifecycle, m, specs[m.spec], factories[m.factory], sites.get(m.site), report, actors, now
            )
        for crate in fleet.crates:
            if await uow.session.scalar(select(Crate.id).where(Crate.serial == crate.serial)) is None:
                await register_crate(uow, company_prefix, crate)
                report.crates += 1
    return report


# Days each step of the demo histories takes; scaled down when a history would end in the future.
STEP_DAYS = {
    "start_assembly": 0.5,
    "complete_assembly": 12,
    "start_burn_in": 1,
    "pass_burn_in": 3,
    "fail_burn_in": 2,
    "start_rework": 1,
    "finish_rework": 4,
    "pack": 2,
    "depart": 3,
    "deliver": 24,
    "start_commissioning": 2,
    "start_validation": 5,
    "enter_service": 3,
    "start_decommissioning": 240,
    "complete_decommissioning": 10,
    "redeploy": 6,
    "retire": 30,
    "hold": 1,
    "release": 2,
}
PREFERRED_ACTOR = ("floor", "planner", "engineer", "admin")


def history(lifecycle: Lifecycle, target: str, hold_from: str | None) -> list[str]:
    """The transitions that take a new module to `target` (through `hold_from` when held): the
    shortest path through the definition, the way the module most plausibly got there."""
    goal = hold_from if target == "on_hold" and hold_from else target
    frontier: list[tuple[str, list[str]]] = [(lifecycle.initial, [])]
    seen = {lifecycle.initial}
    path: list[str] | None = [] if goal == lifecycle.initial else None
    while frontier and path is None:
        state, steps = frontier.pop(0)
        for t in lifecycle.transitions:
            if state in t.from_ and t.to not in seen and not t.to.startswith("@"):
                if t.to == goal:
                    path = [*steps, t.name]
                    break
                seen.add(t.to)
                frontier.append((t.to, [*steps, t.name]))
    if path is None:
        raise InvalidInput(f"the lifecycle has no path from {lifecycle.initial} to {goal}")
    return [*path, "hold"] if target == "on_hold" else path


async def _import_module(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    m: ModuleDef,
    spec: Spec,
    factory: Factory,
    site: Site | None,
    report: LoadReport,
    actors: dict[str, Principal],
    now: dt.datetime,
) -> None:
    """Register the module and replay its history through the real transition code."""
    start = dt.datetime.combine(m.built_on, dt.time(8, 0), tzinfo=dt.UTC)
    hold_from = ("in_service" if site else "assembled") if m.state == "on_hold" else None
    steps = history(lifecycle, m.state, hold_from)
    total = sum(STEP_DAYS.get(s, 1) for s in steps) or 1
    span = max((now - dt.timedelta(hours=1) - start).total_seconds(), 3600)
    scale = min(1.0, span / (total * 86400))
    await register_module(
        uow,
        lifecycle,
        ModuleCreate(spec=spec.code, serial=m.serial, factory=factory.code),
        actors["planner"],
        now=start - dt.timedelta(days=7),
    )
    module = await FactoryRepository(uow.session).module(m.serial)
    assert module is not None
    report.modules += 1
    report.events += 1
    fraction = _installed_fraction(m.state) if len(steps) <= 1 else 1.0
    report.parts += _install_parts(uow, module, spec, fraction, start)
    at = start
    for name in steps:
        t = lifecycle.transition(name)
        assert t is not None
        at += dt.timedelta(days=STEP_DAYS.get(name, 1) * scale)
        payload = {
            field: {"reason": m.hold_reason or _REASONS.get(name, "Scheduled"), "site": site.code if site else ""}[
                field
            ]
            for field in t.payload
        }
        actor = next(actors[r] for r in PREFERRED_ACTOR if r in t.roles)
        evidence = {g: f"{_EVIDENCE[g]} (demo fleet import)" for g in t.guards if g != "bom_complete"}
        await transition(
            uow,
            lifecycle,
            m.serial,
            TransitionRequest(name, payload),
            actor,
            at=at,
            imported_evidence=evidence,
        )
        report.events += 1
        if name in ("pass_burn_in", "fail_burn_in"):
            _imported_burn_in(uow, module, spec, name == "pass_burn_in", at, actor.username)


def _imported_burn_in(uow: UnitOfWork, module: Module, spec: Spec, passed: bool, at: dt.datetime, actor: str) -> None:
    """The factory MES's summary of a burn-in run that the imported history passed or failed: the verdict
    and its reasons (no telemetry), so that fleet reports count yields and failure reasons."""
    from app.burnin.domain import GpuVerdict, RunVerdict
    from app.burnin.models import BurnInRun

    duration = dt.timedelta(hours=24)
    gpus = []
    if not passed:
        index = sum(map(ord, module.serial)) % max(spec.gpu_count, 1)  # a different GPU per module
        gpus.append(
            GpuVerdict(
                index=index,
                uuid=f"GPU-{module.serial.lower()}-{index:03d}",
                serial="",
                verdict="fail",
                reasons=[f"{spec.gpu_model}: uncorrectable ECC errors (Xid 48) during DCGM level 3"],
                samples=0,
                max_temperature_c=None,
                median_sm_clock_mhz=None,
                clock_vs_fleet=None,
                ecc_uncorrected=None,
            )
        )
    verdict = RunVerdict(
        verdict="pass" if passed else "fail",
        reasons=[],
        warnings=["imported from the factory MES: no telemetry on file"],
        gpus=gpus,
        rules_version="imported",
        duration_s=duration.total_seconds(),
        dcgm_level=3,
    )
    uow.session.add(
        BurnInRun(
            module_id=module.id,
            station="",
            started_by=actor,
            started_at=at - duration,
            finished_at=at,
            status="finished",
            verdict=verdict.verdict,
            rules_version="imported",
            result=msgspec.to_builtins(verdict),
        )
    )


_REASONS = {
    "fail_burn_in": "GPU 3 uncorrectable ECC errors (Xid 48) during DCGM level 3",
    "start_decommissioning": "Customer contract ended; capacity moves to a new site",
    "retire": "End of life: GPUs out of vendor support",
    "hold": "Quarantine pending inspection",
}
_EVIDENCE = {
    "burn_in_passed": "burn-in report from the factory MES",
    "manifest_issued": "shipping manifest from the forwarder's system",
    "export_cleared": "export licence determination on file",
    "checklist_signed": "signed commissioning checklist (paper, scanned)",
    "validation_passed": "site acceptance test report",
    "decommission_checklist_signed": "signed decommissioning and media sanitisation record",
}


def _install_parts(uow: UnitOfWork, module: Module, spec: Spec, fraction: float, at: dt.datetime) -> int:
    count_all = 0
    for line in msgspec.convert(spec.bom, list[BomLine]):
        count = round(line.quantity * fraction)
        for i in range(count):
            uow.session.add(
                Part(
                    serial=part_serial(module.serial, line.kind, line.manufacturer, i),
                    kind=line.kind,
                    part_number=line.part_numbers[i % len(line.part_numbers)],
                    manufacturer=line.manufacturer,
                    description=line.description,
                    module_id=module.id,
                    position=f"{line.kind}-{i + 1:03d}",
                    installed_at=at,
                )
            )
        count_all += count
    return count_all
