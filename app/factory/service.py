"""Use cases of the module registry. Each takes a unit of work and never commits."""

from __future__ import annotations

import datetime as dt

import msgspec

from app.core.auth.domain import Principal
from app.core.db import UnitOfWork, utcnow
from app.core.definitions import Lifecycle
from app.core.errors import Conflict, NotFound, RuleRefused
from app.core.ledger import service as ledger
from app.core.ledger.domain import GENESIS
from app.core.schemas import Page
from app.factory import domain
from app.factory.models import Factory, Module, Part, Spec
from app.factory.repository import FactoryRepository
from app.factory.schemas import (
    EventRead,
    FactoryRead,
    Location,
    ModuleCreate,
    ModuleRead,
    PartInstall,
    PartRead,
    PartRemove,
    PartReplace,
    SpecCreate,
    SpecRead,
    StationRead,
)


def spec_read(spec: Spec) -> SpecRead:
    return msgspec.convert(spec, SpecRead, from_attributes=True)


def factory_read(factory: Factory) -> FactoryRead:
    return FactoryRead(
        code=factory.code,
        name=factory.name,
        country=factory.country,
        city=factory.city,
        lat=factory.lat,
        lon=factory.lon,
        unlocode=factory.unlocode,
        stations=[StationRead(s.code, s.name, s.kind, factory.code, s.scan_action) for s in factory.stations],
    )


def module_read(module: Module, lifecycle: Lifecycle) -> ModuleRead:
    kind = domain.location_kind(lifecycle, module.state, module.hold_return_state)
    if kind in ("site", "transit") and module.site is not None:
        place = module.site
        location = Location(kind=kind, code=place.code, name=place.name, country=place.country)  # type: ignore[arg-type]
    else:
        f = module.factory
        location = Location(kind="factory", code=f.code, name=f.name, country=f.country)
    return ModuleRead(
        serial=module.serial,
        spec=module.spec.code,
        state=module.state,
        state_label=lifecycle.state(module.state).label,
        version=module.version,
        location=location,
        factory=module.factory.code,
        site=module.site.code if module.site else None,
        hold_reason=module.hold_reason,
        created_at=module.created_at,
        updated_at=module.updated_at,
    )


def part_read(part: Part) -> PartRead:
    return PartRead(
        serial=part.serial,
        kind=part.kind,
        part_number=part.part_number,
        manufacturer=part.manufacturer,
        description=part.description,
        module=part.module.serial if part.module else None,
        position=part.position,
        installed_at=part.installed_at,
    )


async def list_specs(uow: UnitOfWork) -> list[SpecRead]:
    return [spec_read(s) for s in await FactoryRepository(uow.session).specs()]


async def get_spec(uow: UnitOfWork, code: str) -> SpecRead:
    spec = await FactoryRepository(uow.session).spec(code)
    if spec is None:
        raise NotFound(f"no module spec {code!r}", spec=code)
    return spec_read(spec)


async def create_spec(uow: UnitOfWork, data: SpecCreate) -> SpecRead:
    repo = FactoryRepository(uow.session)
    if await repo.spec(data.code):
        raise Conflict(f"module spec {data.code!r} already exists", spec=data.code)
    gpus = sum(line.quantity for line in data.bom if line.kind == "gpu")
    if data.bom and gpus != data.gpu_count:
        raise RuleRefused(
            f"bom_gpu_count: the bill of materials lists {gpus} GPUs but gpu_count is {data.gpu_count}",
            rule="bom_gpu_count",
        )
    spec = Spec(**{f: getattr(data, f) for f in data.__struct_fields__ if f != "bom"})
    spec.bom = msgspec.to_builtins(data.bom)
    repo.add(spec)
    await uow.session.flush()
    return spec_read(spec)


async def list_factories(uow: UnitOfWork) -> list[FactoryRead]:
    return [factory_read(f) for f in await FactoryRepository(uow.session).factories()]


async def get_factory(uow: UnitOfWork, code: str) -> FactoryRead:
    factory = await FactoryRepository(uow.session).factory(code)
    if factory is None:
        raise NotFound(f"no factory {code!r}", factory=code)
    return factory_read(factory)


async def list_stations(uow: UnitOfWork, factory: str | None, kind: str | None) -> list[StationRead]:
    stations = await FactoryRepository(uow.session).stations(factory, kind)
    return [StationRead(s.code, s.name, s.kind, s.factory.code, s.scan_action) for s in stations]


async def list_modules(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    *,
    state: str | None = None,
    site: str | None = None,
    spec: str | None = None,
    factory: str | None = None,
    country: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[ModuleRead]:
    if state and state not in lifecycle.state_ids:
        raise RuleRefused(f"unknown state {state!r}; states: {', '.join(lifecycle.state_ids)}", rule="known_state")
    rows, total = await FactoryRepository(uow.session).modules(
        state=state, site=site, spec=spec, factory=factory, country=country, q=q, limit=limit, offset=offset
    )
    return Page(items=[module_read(m, lifecycle) for m in rows], total=total, limit=limit, offset=offset)


async def load_module(uow: UnitOfWork, serial: str, *, for_update: bool = False) -> Module:
    module = await FactoryRepository(uow.session).module(serial, for_update=for_update)
    if module is None:
        raise NotFound(f"no module with serial {serial!r}", serial=serial)
    return module


async def get_module(uow: UnitOfWork, lifecycle: Lifecycle, serial: str) -> ModuleRead:
    return module_read(await load_module(uow, serial), lifecycle)


async def register_module(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    data: ModuleCreate,
    actor: Principal,
    *,
    now: dt.datetime | None = None,
) -> ModuleRead:
    """A new module enters the registry in the lifecycle's initial state; its ledger opens."""
    repo = FactoryRepository(uow.session)
    spec = await repo.spec(data.spec)
    if spec is None:
        known = ", ".join(await repo.spec_codes()) or "none registered"
        raise RuleRefused(f"known_spec: no module spec {data.spec!r}; known: {known}", rule="known_spec")
    factories = await repo.factories()
    if data.factory is not None:
        factory = next((f for f in factories if f.code == data.factory), None)
        if factory is None:
            raise RuleRefused(f"known_factory: no factory {data.factory!r}", rule="known_factory")
    elif factories:
        factory = factories[0]
    else:
        raise RuleRefused("known_factory: no factory is registered yet", rule="known_factory")
    now = now or utcnow()
    if data.serial is not None:
        serial = data.serial
        if await repo.serial_taken(serial):
            raise Conflict(f"a module with serial {serial!r} already exists", serial=serial)
    else:
        await repo.lock_serial_allocation()
        serial = domain.next_serial(now.year, await repo.last_serial(domain.serial_prefix(now.year)))
    module = Module(
        serial=serial,
        spec=spec,
        factory=factory,
        site=None,
        state=lifecycle.initial,
        version=0,
        head_hash=GENESIS,
        created_at=now,
        updated_at=now,
    )
    repo.add(module)
    await uow.session.flush()
    await ledger.append(
        uow,
        module,
        "module.registered",
        actor=actor.username,
        role=actor.role,
        place=factory.code,
        at=now,
        payload={"spec": spec.code, "factory": factory.code, "state": module.state},
    )
    await uow.session.flush()
    return module_read(module, lifecycle)


async def list_parts(
    uow: UnitOfWork, *, module: str | None, kind: str | None, limit: int, offset: int
) -> Page[PartRead]:
    repo = FactoryRepository(uow.session)
    module_id = None
    if module:
        module_id = (await load_module(uow, module)).id
    rows, total = await repo.parts(module_id=module_id, kind=kind, limit=limit, offset=offset)
    return Page(items=[part_read(p) for p in rows], total=total, limit=limit, offset=offset)


async def module_events(uow: UnitOfWork, serial: str) -> list[EventRead]:
    module = await load_module(uow, serial)
    return [msgspec.convert(e, EventRead, from_attributes=True) for e in await ledger.events_of(uow, module.id)]


async def install_part(
    uow: UnitOfWork, serial: str, data: PartInstall, actor: Principal, *, replacing: str | None = None
) -> PartRead:
    """A build step: scan the module, then the part. A part is in at most one module at a time."""
    module = await load_module(uow, serial, for_update=True)
    domain.check_build_state(serial, module.state)
    repo = FactoryRepository(uow.session)
    part = await repo.part(data.serial)
    if part is not None and part.module_id is not None:
        where = part.module.serial if part.module else "another module"
        raise Conflict(
            f"part {data.serial} is installed in {where} at {part.position or 'an unknown position'}; "
            "remove it there first",
            part=data.serial,
            module=where,
            position=part.position,
        )
    domain.check_part_fits(serial, module.spec.bom, await repo.part_counts(module.id), data.kind, data.part_number)
    position = data.position or domain.next_position(data.kind, await repo.positions(module.id))
    if position in await repo.positions(module.id):
        raise Conflict(f"position {position} of {serial} is taken", position=position)
    now = utcnow()
    if part is None:
        part = Part(serial=data.serial, kind=data.kind, part_number=data.part_number, manufacturer=data.manufacturer)
        repo.add(part)
    elif (part.kind, part.part_number) != (data.kind, data.part_number):
        raise RuleRefused(
            f"part_identity: {data.serial} is recorded as {part.kind} {part.part_number}, not {data.kind} "
            f"{data.part_number}",
            rule="part_identity",
        )
    part.module = module
    part.position = position
    part.installed_at = now
    await uow.session.flush()
    payload: dict[str, object] = {
        "part": part.serial,
        "kind": part.kind,
        "part_number": part.part_number,
        "position": position,
    }
    if replacing:
        payload["replaces"] = replacing
    await ledger.append(
        uow,
        module,
        "factory.part_installed",
        actor=actor.username,
        role=actor.role,
        payload=payload,
        place=data.station or module.factory.code,
        at=now,
    )
    return part_read(part)


async def remove_part(uow: UnitOfWork, serial: str, part_serial: str, data: PartRemove, actor: Principal) -> PartRead:
    module = await load_module(uow, serial, for_update=True)
    domain.check_build_state(serial, module.state)
    part = await FactoryRepository(uow.session).part(part_serial)
    if part is None or part.module_id != module.id:
        raise NotFound(f"part {part_serial} is not installed in {serial}", part=part_serial)
    position = part.position
    part.module = None
    part.installed_at = None
    await uow.session.flush()
    await ledger.append(
        uow,
        module,
        "factory.part_removed",
        actor=actor.username,
        role=actor.role,
        payload={"part": part_serial, "kind": part.kind, "position": position, "reason": data.reason},
        place=data.station or module.factory.code,
    )
    return part_read(part)


async def replace_part(uow: UnitOfWork, serial: str, old_serial: str, data: PartReplace, actor: Principal) -> PartRead:
    """Remove a part and install its replacement at the same position, in one transaction. A GPU
    replaced in rework means a new burn-in: the guard only counts runs after the next start_burn_in."""
    removed = await remove_part(
        uow, serial, old_serial, PartRemove(reason=data.reason, station=data.new.station), actor
    )
    new = data.new if data.new.position else msgspec.structs.replace(data.new, position=removed.position)
    return await install_part(uow, serial, new, actor, replacing=old_serial)
