"""Shipments: planned legs from the route planner, packing, departures and arrivals, custody hand-offs
by scan, ETAs, export licences, and versioned shipping documents.

Every write here is one unit of work: the shipment rows, the lifecycle transitions of its modules (taken
through the engine, so roles and guards hold) and the ledger events commit together or not at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import func, select

from app.core.auth.domain import Principal
from app.core.db import UnitOfWork, utcnow
from app.core.definitions import Lifecycle
from app.core.errors import Conflict, InvalidInput, NotFound, RuleRefused
from app.core.ledger import service as ledger
from app.core.lifecycle.schemas import TransitionRequest
from app.factory.models import Module
from app.factory.repository import FactoryRepository
from app.logistics import documents as docs
from app.logistics.domain import ContainerNumberError, LegTimes, check_container_number, check_incoterm, estimate
from app.logistics.models import (
    Crate,
    CustodyHandoff,
    ExportLicence,
    Shipment,
    ShipmentContainer,
    ShipmentDocument,
    ShipmentLeg,
    ShipmentPackage,
)
from app.logistics.schemas import (
    ContainerRead,
    DocumentRead,
    HandoffIn,
    HandoffRead,
    LegRead,
    LicenceIn,
    LicenceRead,
    PackageRead,
    PartyIn,
    ShipmentCreate,
    ShipmentRead,
    ShipmentSummary,
)
from app.routes.domain import Network
from app.routes.schemas import PlanIn
from app.sites.models import Site
from app.tags.payload import sscc
from app.tags.service import TagSetup

OPEN = ("planned", "in_transit")
DUNNAGE_KG = 150.0  # lashing, desiccant, shock and tilt indicators added to a module shipped as a unit
DOC_CODES = {"manifest": "MAN", "packing-list": "PKL", "commercial-invoice": "INV", "dg-note": "DGN"}
DOC_PATHS = {kind: f"{kind}.pdf" for kind in DOC_CODES}


# --- reading ------------------------------------------------------------------------------------------


async def load_shipment(uow: UnitOfWork, ref: str, *, for_update: bool = False) -> Shipment:
    query = select(Shipment).where(Shipment.ref == ref)
    if for_update:
        query = query.with_for_update()
    shipment = await uow.session.scalar(query)
    if shipment is None:
        raise NotFound(f"no shipment {ref!r}", shipment=ref)
    return shipment


async def _legs(uow: UnitOfWork, shipment: Shipment) -> list[ShipmentLeg]:
    rows = await uow.session.scalars(
        select(ShipmentLeg).where(ShipmentLeg.shipment_id == shipment.id).order_by(ShipmentLeg.seq)
    )
    return list(rows)


async def _packages(uow: UnitOfWork, shipment: Shipment) -> list[ShipmentPackage]:
    rows = await uow.session.scalars(
        select(ShipmentPackage).where(ShipmentPackage.shipment_id == shipment.id).order_by(ShipmentPackage.number)
    )
    return list(rows)


async def _containers(uow: UnitOfWork, shipment: Shipment) -> list[ShipmentContainer]:
    rows = await uow.session.scalars(
        select(ShipmentContainer).where(ShipmentContainer.shipment_id == shipment.id).order_by(ShipmentContainer.id)
    )
    return list(rows)


async def _modules(uow: UnitOfWork, shipment: Shipment, *, for_update: bool = False) -> list[Module]:
    packages = await _packages(uow, shipment)
    repo = FactoryRepository(uow.session)
    out = []
    for p in packages:
        if p.module_id is None:
            continue
        serial = p.contents[0]
        module = await repo.module(serial, for_update=for_update)
        if module is not None:
            out.append(module)
    return out


async def shipment_read(uow: UnitOfWork, shipment: Shipment, now: dt.datetime | None = None) -> ShipmentRead:
    now = now or utcnow()
    legs = await _legs(uow, shipment)
    packages = await _packages(uow, shipment)
    modules = await _modules(uow, shipment)
    site = await uow.session.get(Site, shipment.site_id)
    assert site is not None
    estimates = estimate([_times(leg) for leg in legs], now) if legs else []
    handoffs = await uow.session.scalars(
        select(CustodyHandoff).where(CustodyHandoff.shipment_id == shipment.id).order_by(CustodyHandoff.seq)
    )
    documents = await uow.session.execute(
        select(
            ShipmentDocument.kind,
            ShipmentDocument.number,
            ShipmentDocument.version,
            ShipmentDocument.sha256,
            ShipmentDocument.issued_at,
            ShipmentDocument.issued_by,
        )
        .where(ShipmentDocument.shipment_id == shipment.id)
        .order_by(ShipmentDocument.kind, ShipmentDocument.version)
    )
    return ShipmentRead(
        id=shipment.ref,
        status=shipment.status,
        origin={"code": shipment.origin_code, "name": shipment.origin_name, "country": shipment.origin_country},
        destination={"code": f"site:{site.code}", "name": site.name, "country": site.country},
        incoterm=shipment.incoterm,
        incoterm_place=shipment.incoterm_place,
        consignor=shipment.consignor,
        consignee=shipment.consignee,
        notify=shipment.notify,
        currency=shipment.currency,
        modules=[{"serial": m.serial, "spec": m.spec.code, "state": m.state} for m in modules],
        legs=[
            LegRead(
                seq=leg.seq,
                mode=leg.mode,
                carrier=leg.carrier,
                origin=leg.origin_code,
                origin_name=leg.origin_name,
                destination=leg.destination_code,
                destination_name=leg.destination_name,
                distance_km=leg.distance_km,
                planned_departure=leg.planned_departure,
                planned_arrival=leg.planned_arrival,
                actual_departure=leg.actual_departure,
                actual_arrival=leg.actual_arrival,
                expected_departure=e.departure,
                expected_arrival=e.arrival,
                late_hours=round(e.late_by.total_seconds() / 3600, 1),
            )
            for leg, e in zip(legs, estimates, strict=True)
        ],
        containers=[ContainerRead(c.number, c.seal, c.size_type) for c in await _containers(uow, shipment)],
        packages=[
            PackageRead(
                number=p.number,
                sscc=f"(00) {p.sscc}",
                kind=p.kind,
                contents=list(p.contents),
                container=p.container,
                net_kg=p.net_kg,
                gross_kg=p.gross_kg,
                length_mm=p.length_mm,
                width_mm=p.width_mm,
                height_mm=p.height_mm,
            )
            for p in packages
        ],
        handoffs=[
            HandoffRead(
                seq=h.seq,
                kind=h.kind,
                party=h.party,
                organisation=h.organisation,
                place=h.place,
                at=h.at,
                recorded_by=h.recorded_by,
                leg=h.leg_seq,
                modules=list(h.scanned),
                seals=list(h.seals),
                seal_ok=h.seal_ok,
                note=h.note,
            )
            for h in handoffs
        ],
        documents=[
            DocumentRead(
                kind=d.kind,
                number=d.number,
                version=d.version,
                sha256=d.sha256,
                issued_at=d.issued_at,
                issued_by=d.issued_by,
                url=f"/api/v1/shipments/{shipment.ref}/{DOC_PATHS[d.kind]}?version={d.version}",
            )
            for d in documents
        ],
        planned_arrival=shipment.planned_arrival,
        eta=shipment.eta,
        late_hours=shipment.late_hours,
        flags=list(shipment.flags),
        route=shipment.route,
    )


async def list_shipments(
    uow: UnitOfWork, *, status: str | None, site: str | None, limit: int, offset: int
) -> tuple[list[ShipmentSummary], int]:
    """Late shipments first (most late at the top), then by ETA: what a planner must look at."""
    query = select(Shipment, Site.code).join(Site, Site.id == Shipment.site_id)
    count = select(func.count(Shipment.id)).join(Site, Site.id == Shipment.site_id)
    if status:
        query, count = query.where(Shipment.status == status), count.where(Shipment.status == status)
    if site:
        query, count = query.where(Site.code == site), count.where(Site.code == site)
    total = await uow.session.scalar(count) or 0
    rows = await uow.session.execute(
        query.order_by(Shipment.late_hours.desc(), Shipment.eta, Shipment.id).limit(limit).offset(offset)
    )
    out = []
    for shipment, site_code in rows:
        modules = await uow.session.scalar(
            select(func.count(ShipmentPackage.id)).where(
                ShipmentPackage.shipment_id == shipment.id, ShipmentPackage.module_id.is_not(None)
            )
        )
        out.append(
            ShipmentSummary(
                id=shipment.ref,
                status=shipment.status,
                origin=shipment.origin_name,
                destination=f"site:{site_code}",
                modules=modules or 0,
                planned_arrival=shipment.planned_arrival,
                eta=shipment.eta,
                late_hours=shipment.late_hours,
                flags=list(shipment.flags),
            )
        )
    return out, total


# --- planning -----------------------------------------------------------------------------------------


def _party(p: PartyIn) -> dict[str, Any]:
    return msgspec.to_builtins(p)


async def create_shipment(
    uow: UnitOfWork, network: Network, tags: TagSetup, data: ShipmentCreate, actor: Principal
) -> ShipmentRead:
    """Plan a shipment: the route's legs (one of the planner's alternatives) copied in with planned
    times from the departure, one package (SSCC) per module and crate, containers with their seals.
    Modules are packed later (POST …/pack), through the lifecycle engine."""
    from app.routes import service as routes  # the routes area plans; shipments keep what was chosen

    repo = FactoryRepository(uow.session)
    if len(set(data.modules)) != len(data.modules):
        raise InvalidInput("a module is listed twice")
    modules: list[Module] = []
    for serial in data.modules:
        module = await repo.module(serial, for_update=True)
        if module is None:
            raise NotFound(f"no module with serial {serial!r}", serial=serial)
        other = await _open_shipment_of(uow, module.id)
        if other is not None:
            raise Conflict(f"{serial} is already on open shipment {other}", serial=serial, shipment=other)
        modules.append(module)
    missing = sorted({m.spec.code for m in modules} - set(data.values))
    if missing:
        raise InvalidInput(f"declared customs value missing for spec(s) {', '.join(missing)} (values by spec code)")
    site = await uow.session.scalar(select(Site).where(Site.code == data.destination.removeprefix("site:")))
    if site is None:
        raise NotFound(f"no site {data.destination!r}", site=data.destination)

    heaviest = max(modules, key=lambda m: (m.spec.weight_kg, m.spec.height_mm))
    answer = await routes.plan(
        uow,
        network,
        PlanIn(
            origin=data.origin,
            destination=data.destination,
            criterion=data.criterion,
            modes=data.modes,
            avoid_countries=data.avoid_countries,
            avoid_passages=data.avoid_passages,
            k=data.route + 1,
            module=heaviest.serial,
        ),
    )
    if data.route >= len(answer.routes):
        raise InvalidInput(f"the planner found {len(answer.routes)} route(s); route {data.route} does not exist")
    route = answer.routes[data.route]
    try:
        check_incoterm(data.incoterm, [leg.mode for leg in route.legs])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if data.carriers and len(data.carriers) != len(route.legs):
        raise InvalidInput(f"carriers: {len(data.carriers)} given for {len(route.legs)} legs")

    containers = _check_containers(data, {m.serial for m in modules})
    now = utcnow()
    year = data.planned_departure.year
    seq = (await uow.session.scalar(select(func.count(Shipment.id)).where(Shipment.ref.like(f"SHP-{year}-%")))) or 0
    shipment = Shipment(
        ref=f"SHP-{year}-{seq + 1:06d}",
        status="planned",
        origin_code=answer.origin.code,
        origin_name=answer.origin.name,
        origin_country=answer.origin.country,
        site_id=site.id,
        incoterm=data.incoterm,
        incoterm_place=data.incoterm_place,
        consignor=_party(data.consignor),
        consignee=_party(data.consignee),
        notify=_party(data.notify) if data.notify else None,
        currency=data.currency,
        route={
            "criterion": data.criterion,
            "distance_km": route.distance_km,
            "duration_h": route.duration_h,
            "cost": route.cost,
            "co2_kg": route.co2_kg,
            "passages": route.passages,
            "countries": route.countries,
            "geometry": route.geometry,
            "export": msgspec.to_builtins(answer.export) if answer.export else None,
        },
        planned_arrival=now,
        eta=now,
        created_by=actor.username,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(shipment)
    await uow.session.flush()
    start = _utc(data.planned_departure)
    for i, leg in enumerate(route.legs, start=1):
        end = start + dt.timedelta(hours=leg.duration_h)
        uow.session.add(
            ShipmentLeg(
                shipment_id=shipment.id,
                seq=i,
                mode=leg.mode,
                carrier=data.carriers[i - 1] if data.carriers else "",
                origin_code=leg.origin.code,
                origin_name=leg.origin.name,
                destination_code=leg.destination.code,
                destination_name=leg.destination.name,
                distance_km=leg.distance_km,
                planned_departure=start,
                planned_arrival=end,
            )
        )
        start = end
    shipment.planned_arrival = shipment.eta = start
    for number, seal, size_type, _ in containers:
        uow.session.add(ShipmentContainer(shipment_id=shipment.id, number=number, seal=seal, size_type=size_type))
    container_of = {serial: number for number, _, _, serials in containers for serial in serials}
    number = 0
    for module in modules:
        number += 1
        spec = module.spec
        uow.session.add(
            ShipmentPackage(
                shipment_id=shipment.id,
                number=number,
                sscc=_sscc(tags, shipment.id, number),
                kind=f"module, {spec.length_mm / 304.8:.0f} ft {spec.cooling}-cooled",
                module_id=module.id,
                container=container_of.get(module.serial, ""),
                contents=[module.serial],
                net_kg=spec.weight_kg,
                gross_kg=spec.weight_kg + DUNNAGE_KG,
                length_mm=spec.length_mm,
                width_mm=spec.width_mm,
                height_mm=spec.height_mm,
                unit_value=data.values[spec.code],
            )
        )
    for serial in data.crates:
        crate = await uow.session.scalar(select(Crate).where(Crate.serial == serial))
        if crate is None:
            raise NotFound(f"no crate {serial!r}", crate=serial)
        number += 1
        uow.session.add(
            ShipmentPackage(
                shipment_id=shipment.id,
                number=number,
                sscc=_sscc(tags, shipment.id, number),
                kind="returnable crate",
                crate_id=crate.id,
                contents=[crate.serial],
                net_kg=0.0,
                gross_kg=crate.tare_kg,
                length_mm=crate.length_mm,
                width_mm=crate.width_mm,
                height_mm=crate.height_mm,
            )
        )
    await uow.session.flush()
    for module in modules:
        await ledger.append(
            uow,
            module,
            "shipment.planned",
            actor=actor.username,
            role=actor.role,
            payload={
                "shipment": shipment.ref,
                "destination": f"site:{site.code}",
                "legs": len(route.legs),
                "planned_arrival": shipment.planned_arrival.isoformat(),
                "container": container_of.get(module.serial, ""),
            },
            place=shipment.origin_code,
        )
    return await shipment_read(uow, shipment)


CLOCK_SKEW = dt.timedelta(minutes=5)  # a handheld's clock may run a little ahead


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _happened(t: dt.datetime | None) -> dt.datetime:
    """When something happened: now, or a reported time that is not in the future."""
    now = utcnow()
    if t is None:
        return now
    at = _utc(t)
    if at > now + CLOCK_SKEW:
        raise InvalidInput(f"{at.isoformat()} is in the future; report what has happened")
    return at


def _sscc(tags: TagSetup, shipment_id: int, number: int) -> str:
    """Serial reference = shipment id and package number: unique without a counter of its own."""
    width = 16 - len(tags.company_prefix)
    reference = shipment_id * 10_000 + number
    if reference >= 10**width:
        raise Conflict("SSCC serial references of this company prefix are used up")
    return sscc(tags.company_prefix, reference).value


def _check_containers(data: ShipmentCreate, serials: set[str]) -> list[tuple[str, str, str, list[str]]]:
    out: list[tuple[str, str, str, list[str]]] = []
    placed: set[str] = set()
    for i, c in enumerate(data.containers):
        try:
            number = check_container_number(c.number)
        except ContainerNumberError as exc:
            raise InvalidInput(f"containers[{i}]: {exc}") from None
        if any(number == o[0] for o in out):
            raise InvalidInput(f"containers[{i}]: {number} is listed twice")
        for s in c.modules:
            if s not in serials:
                raise InvalidInput(f"containers[{i}]: {s} is not a module of this shipment")
            if s in placed:
                raise InvalidInput(f"containers[{i}]: {s} is already in another container")
            placed.add(s)
        out.append((number, c.seal.strip(), c.size_type, list(c.modules)))
    return out


async def _open_shipment_of(uow: UnitOfWork, module_id: int) -> str | None:
    return await uow.session.scalar(
        select(Shipment.ref)
        .join(ShipmentPackage, ShipmentPackage.shipment_id == Shipment.id)
        .where(ShipmentPackage.module_id == module_id, Shipment.status.in_(OPEN))
    )


# --- packing, legs and hand-offs ----------------------------------------------------------------------


async def _take(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    module: Module,
    transition: str,
    actor: Principal,
    *,
    payload: dict[str, Any] | None = None,
    place: str = "",
    at: dt.datetime | None = None,
) -> None:
    from app.core.lifecycle import service as lifecycle_service

    await lifecycle_service.transition(
        uow,
        lifecycle,
        module.serial,
        TransitionRequest(transition=transition, payload=payload or {}),
        actor,
        place=place,
        at=at,
    )


async def pack(
    uow: UnitOfWork, lifecycle: Lifecycle, ref: str, serials: Sequence[str] | None, actor: Principal
) -> ShipmentRead:
    """Pack modules into the shipment: each takes `pack` (or `redeploy` from decommissioned) with the
    destination site, through the engine."""
    shipment = await load_shipment(uow, ref, for_update=True)
    if shipment.status != "planned":
        raise Conflict(f"shipment {ref} is {shipment.status}; only a planned shipment is packed")
    site = await uow.session.get(Site, shipment.site_id)
    assert site is not None
    modules = await _modules(uow, shipment, for_update=True)
    wanted = set(serials) if serials is not None else {m.serial for m in modules}
    unknown = wanted - {m.serial for m in modules}
    if unknown:
        raise InvalidInput(f"not on shipment {ref}: {', '.join(sorted(unknown))}")
    for module in modules:
        if module.serial not in wanted or module.state == "packed":
            continue
        transition = "redeploy" if module.state == "decommissioned" else "pack"
        await _take(uow, lifecycle, module, transition, actor, payload={"site": site.code}, place=shipment.origin_code)
    shipment.updated_at = utcnow()
    return await shipment_read(uow, shipment)


async def leg_event(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    ref: str,
    seq: int,
    event: str,
    at: dt.datetime | None,
    actor: Principal,
) -> ShipmentRead:
    """Record a leg's actual departure or arrival; the first departure takes every module to
    `in_transit` (guards: manifest issued, export cleared). The ETA follows."""
    shipment = await load_shipment(uow, ref, for_update=True)
    await _leg_event(uow, lifecycle, shipment, seq, event, _happened(at), actor)
    return await shipment_read(uow, shipment)


async def _leg_event(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    shipment: Shipment,
    seq: int,
    event: str,
    at: dt.datetime,
    actor: Principal,
) -> None:
    if shipment.status == "delivered":
        raise Conflict(f"shipment {shipment.ref} is delivered")
    legs = await _legs(uow, shipment)
    if not 1 <= seq <= len(legs):
        raise NotFound(f"shipment {shipment.ref} has legs 1-{len(legs)}, not {seq}")
    leg = legs[seq - 1]
    if event == "departed":
        if leg.actual_departure is not None:
            raise Conflict(f"leg {seq} of {shipment.ref} departed already at {leg.actual_departure.isoformat()}")
        if seq > 1 and legs[seq - 2].actual_departure is None:
            raise Conflict(f"leg {seq - 1} of {shipment.ref} has not departed yet")
        if seq > 1 and legs[seq - 2].actual_arrival is None:
            legs[seq - 2].actual_arrival = at  # a hand-over ends the previous leg
        leg.actual_departure = at
        if shipment.status == "planned":
            for module in await _modules(uow, shipment, for_update=True):
                if module.state == "packed":
                    await _take(uow, lifecycle, module, "depart", actor, place=leg.origin_code, at=at)
                elif module.state != "in_transit":
                    raise Conflict(f"{module.serial} is {module.state}; pack it before the shipment departs")
            shipment.status = "in_transit"
    else:
        if leg.actual_departure is None:
            raise Conflict(f"leg {seq} of {shipment.ref} has not departed")
        if leg.actual_arrival is not None:
            raise Conflict(f"leg {seq} of {shipment.ref} arrived already at {leg.actual_arrival.isoformat()}")
        if at < leg.actual_departure:
            raise InvalidInput(f"leg {seq} cannot arrive before it departed ({leg.actual_departure.isoformat()})")
        leg.actual_arrival = at
    for module in await _modules(uow, shipment, for_update=True):
        await ledger.append(
            uow,
            module,
            f"shipment.leg_{event}",
            actor=actor.username,
            role=actor.role,
            payload={"shipment": shipment.ref, "leg": seq, "mode": leg.mode, "carrier": leg.carrier},
            place=leg.origin_code if event == "departed" else leg.destination_code,
            at=at,
        )
    _update_eta(shipment, legs)


def _times(leg: ShipmentLeg) -> LegTimes:
    return LegTimes(leg.planned_departure, leg.planned_arrival, leg.actual_departure, leg.actual_arrival)


def _update_eta(shipment: Shipment, legs: list[ShipmentLeg], now: dt.datetime | None = None) -> None:
    last = estimate([_times(leg) for leg in legs], now or utcnow())[-1]
    shipment.eta = last.arrival
    shipment.late_hours = round(last.late_by.total_seconds() / 3600, 1)
    shipment.updated_at = utcnow()


async def handoff(
    uow: UnitOfWork, lifecycle: Lifecycle, tags: TagSetup, ref: str, data: HandoffIn, actor: Principal
) -> ShipmentRead:
    """A custody hand-off, scanned by the receiving party: the modules' tags (verified), the seals
    checked against those recorded — a mismatch is flagged on the shipment and in each module's ledger,
    never silently accepted. A pickup or hand-over starts its leg; a delivery at the destination site
    ends the journey and takes each module to `delivered`."""
    shipment = await load_shipment(uow, ref, for_update=True)
    if shipment.status == "delivered":
        raise Conflict(f"shipment {ref} is delivered")
    at = _happened(data.at)
    modules = {m.serial: m for m in await _modules(uow, shipment, for_update=True)}
    scanned: list[str] = []
    for code in data.codes:
        serial = tags.serial_from_scan(code)
        if serial not in modules:
            raise InvalidInput(f"{serial} is not on shipment {ref}")
        if serial not in scanned:
            scanned.append(serial)
    packages = await _packages(uow, shipment)
    recorded = {c.number: c.seal for c in await _containers(uow, shipment)}
    presented: dict[str, str] = {}
    for check in data.seals:
        try:
            number = check_container_number(check.container)
        except ContainerNumberError as exc:
            raise InvalidInput(f"seals: {exc}") from None
        if number not in recorded:
            raise InvalidInput(f"container {number} is not on shipment {ref}")
        presented[number] = check.seal.strip()
    seals: list[dict[str, Any]] = []
    flags: list[str] = []
    involved = {p.container for p in packages if p.container and p.contents and p.contents[0] in scanned}
    for number in sorted(involved | set(presented)):
        expected, found = recorded[number], presented.get(number)
        ok = found is not None and found == expected
        seals.append({"container": number, "expected": expected, "found": found, "ok": ok})
        if not ok:
            what = "not checked" if found is None else f"found {found}, recorded {expected}"
            flags.append(f"seal {what} on {number} at {data.place} ({at:%Y-%m-%d %H:%M} UTC, {data.organisation})")
    seq = (
        await uow.session.scalar(select(func.max(CustodyHandoff.seq)).where(CustodyHandoff.shipment_id == shipment.id))
        or 0
    ) + 1
    site = await uow.session.get(Site, shipment.site_id)
    assert site is not None
    leg_seq = data.leg
    if data.kind == "pickup" and leg_seq is None:
        leg_seq = 1
    if data.kind == "delivery" and data.place not in (site.code, f"site:{site.code}"):
        raise InvalidInput(f"a delivery is scanned at the destination site {site.code}, not at {data.place}")
    uow.session.add(
        CustodyHandoff(
            shipment_id=shipment.id,
            seq=seq,
            kind=data.kind,
            party=data.party,
            organisation=data.organisation,
            place=data.place,
            at=at,
            recorded_by=actor.username,
            leg_seq=leg_seq,
            scanned=scanned,
            seals=seals,
            seal_ok=not flags,
            note=data.note,
        )
    )
    if flags:
        shipment.flags = [*shipment.flags, *flags]
    for serial in scanned:
        await ledger.append(
            uow,
            modules[serial],
            "custody.handoff",
            actor=actor.username,
            role=actor.role,
            payload={
                "shipment": ref,
                "handoff": seq,
                "kind": data.kind,
                "party": data.party,
                "organisation": data.organisation,
                "seals": seals,
                "seal_ok": not flags,
                "flags": flags,
            },
            place=data.place,
            at=at,
        )
    legs = await _legs(uow, shipment)
    if data.kind in ("pickup", "handover") and leg_seq is not None:
        await _leg_event(uow, lifecycle, shipment, leg_seq, "departed", at, actor)
    elif data.kind == "delivery":
        last = legs[-1]
        if last.actual_departure is None:
            raise Conflict(f"the last leg of {ref} has not departed; it cannot be delivered")
        if last.actual_arrival is None:
            await _leg_event(uow, lifecycle, shipment, last.seq, "arrived", at, actor)
        for serial in scanned:
            if modules[serial].state == "in_transit":
                await _take(uow, lifecycle, modules[serial], "deliver", actor, place=site.code, at=at)
        if all(m.state == "delivered" for m in modules.values()):
            shipment.status = "delivered"
    _update_eta(shipment, legs)
    await uow.session.flush()
    return await shipment_read(uow, shipment)


# --- export licences ----------------------------------------------------------------------------------


async def record_licence(uow: UnitOfWork, data: LicenceIn, actor: Principal) -> LicenceRead:
    if await uow.session.scalar(select(ExportLicence.id).where(ExportLicence.number == data.number)) is not None:
        raise Conflict(f"licence {data.number} is already on record")
    licence = ExportLicence(
        number=data.number,
        eccn=data.eccn,
        countries=sorted(set(data.countries)),
        consignee=data.consignee,
        valid_until=data.valid_until,
        note=data.note,
        recorded_by=actor.username,
    )
    uow.session.add(licence)
    await uow.session.flush()
    return licence_read(licence)


def licence_read(licence: ExportLicence) -> LicenceRead:
    return LicenceRead(
        number=licence.number,
        eccn=licence.eccn,
        countries=list(licence.countries),
        consignee=licence.consignee,
        valid_until=licence.valid_until,
        note=licence.note,
        recorded_by=licence.recorded_by,
        created_at=licence.created_at,
    )


async def list_licences(uow: UnitOfWork) -> list[LicenceRead]:
    rows = await uow.session.scalars(select(ExportLicence).order_by(ExportLicence.valid_until.desc()))
    return [licence_read(x) for x in rows]


async def licence_for(uow: UnitOfWork, eccn: str, country: str, on: dt.date) -> str | None:
    """A valid licence on record for this classification (a licence for 4A090 covers 4A090.a) and
    destination country, or None."""
    rows = await uow.session.scalars(select(ExportLicence).where(ExportLicence.valid_until >= on))
    for licence in rows:
        covers = eccn == licence.eccn or eccn.startswith(licence.eccn + ".")
        if covers and country in licence.countries:
            return licence.number
    return None


# --- documents ----------------------------------------------------------------------------------------


async def manifest_issued(uow: UnitOfWork, module: Module) -> bool:
    """True when a manifest listing the module was issued for its open shipment."""
    ref = await _open_shipment_of(uow, module.id)
    if ref is None:
        return False
    rows = await uow.session.scalars(
        select(ShipmentDocument.serials)
        .join(Shipment, Shipment.id == ShipmentDocument.shipment_id)
        .where(Shipment.ref == ref, ShipmentDocument.kind == "manifest")
    )
    return any(module.serial in serials for serials in rows)


async def issue_document(
    uow: UnitOfWork, tags: TagSetup, ref: str, kind: str, actor: Principal, base_url: str
) -> DocumentRead:
    """Build the document model from the shipment as it is now, render it, and keep it as the next
    version; its SHA-256 goes into the ledger of every module it lists."""
    shipment = await load_shipment(uow, ref, for_update=True)
    version = (
        await uow.session.scalar(
            select(func.max(ShipmentDocument.version)).where(
                ShipmentDocument.shipment_id == shipment.id, ShipmentDocument.kind == kind
            )
        )
        or 0
    ) + 1
    model, modules = await _document_model(uow, tags, shipment, kind, version, base_url)
    from app.documents.shipping import render  # the PDF edge

    pdf = await asyncio.to_thread(render, model)
    digest = hashlib.sha256(pdf).hexdigest()
    row = ShipmentDocument(
        shipment_id=shipment.id,
        kind=kind,
        number=model.number,
        version=version,
        sha256=digest,
        serials=[m.serial for m in modules],
        pdf=pdf,
        issued_by=actor.username,
        issued_at=model.issued_at,
    )
    uow.session.add(row)
    for module in modules:
        await ledger.append(
            uow,
            module,
            "document.issued",
            actor=actor.username,
            role=actor.role,
            payload={"shipment": ref, "kind": kind, "number": model.number, "version": version, "sha256": digest},
            place=shipment.origin_code,
        )
    await uow.session.flush()
    return DocumentRead(
        kind=kind,
        number=model.number,
        version=version,
        sha256=digest,
        issued_at=row.issued_at,
        issued_by=row.issued_by,
        url=f"/api/v1/shipments/{ref}/{DOC_PATHS[kind]}?version={version}",
    )


async def document_pdf(uow: UnitOfWork, ref: str, kind: str, version: int | None) -> ShipmentDocument | None:
    shipment = await load_shipment(uow, ref)
    query = select(ShipmentDocument).where(ShipmentDocument.shipment_id == shipment.id, ShipmentDocument.kind == kind)
    if version is not None:
        query = query.where(ShipmentDocument.version == version)
    return await uow.session.scalar(query.order_by(ShipmentDocument.version.desc()).limit(1))


async def _document_model(
    uow: UnitOfWork, tags: TagSetup, shipment: Shipment, kind: str, version: int, base_url: str
) -> tuple[docs.ShippingDocument, list[Module]]:
    from app.routes.export import decide, load_rules

    site = await uow.session.get(Site, shipment.site_id)
    assert site is not None
    legs = await _legs(uow, shipment)
    packages = await _packages(uow, shipment)
    containers = await _containers(uow, shipment)
    modules = await _modules(uow, shipment)
    if not modules:
        raise Conflict(f"shipment {shipment.ref} has no modules")
    by_serial = {p.contents[0]: p for p in packages if p.module_id is not None}
    rules = load_rules()
    today = utcnow().date()
    lines = []
    for m in modules:
        spec = m.spec
        decision = decide(rules, spec.export_class, site.country, [site.country])
        if decision.status == "license_required":
            licence = (
                await licence_for(uow, spec.export_class, site.country, today) or "LICENCE REQUIRED - NONE ON RECORD"
            )
        elif decision.status == "allowed":
            licence = "NLR"
        else:
            licence = f"NOT CLEARED ({decision.status.replace('_', ' ')})"
        package = by_serial[m.serial]
        lines.append(
            docs.ModuleLine(
                serial=m.serial,
                spec_code=spec.code,
                description=spec.name,
                giai=tags.for_serial(m.serial).hri,
                hs_code=spec.hs_code,
                eccn=spec.export_class,
                licence=licence,
                country_of_origin=m.factory.country,
                unit_value=Decimal(str(package.unit_value)),
                currency=shipment.currency,
                net_kg=package.net_kg,
                gross_kg=package.gross_kg,
                battery_un_number=spec.battery_un_number,
                battery_wh=spec.battery_wh,
                battery_kg=round(spec.battery_wh / 150.0, 1),  # ~150 Wh/kg for Li-ion packs (net battery mass)
            )
        )
    if kind == "dg-note" and not any(line.battery_un_number for line in lines):
        raise Conflict(f"shipment {shipment.ref} carries no lithium batteries: no dangerous goods note is needed")
    sea_legs = [leg for leg in legs if leg.mode == "sea"]
    consignor = shipment.consignor
    try:
        model = docs.ShippingDocument(
            kind=kind,  # type: ignore[arg-type]
            number=f"{shipment.ref}-{DOC_CODES[kind]}",
            version=version,
            issued_at=utcnow(),
            shipment_ref=shipment.ref,
            shipment_url=f"{base_url.rstrip('/')}/shipments/{shipment.ref}",
            consignor=msgspec.convert(_party_doc(consignor), docs.Party),
            consignee=msgspec.convert(_party_doc(shipment.consignee), docs.Party),
            notify=msgspec.convert(_party_doc(shipment.notify), docs.Party) if shipment.notify else None,
            incoterm=shipment.incoterm,
            incoterm_place=shipment.incoterm_place,
            origin=shipment.origin_name,
            destination=f"{site.name} ({site.code}), {site.country}",
            port_of_loading=f"{sea_legs[0].origin_name} ({sea_legs[0].origin_code})" if sea_legs else "—",
            port_of_discharge=f"{sea_legs[-1].destination_name} ({sea_legs[-1].destination_code})" if sea_legs else "—",
            containers=tuple(docs.ContainerLine(c.number, c.seal, c.size_type) for c in containers),
            legs=tuple(
                docs.LegLine(
                    seq=leg.seq,
                    mode=leg.mode,
                    carrier=leg.carrier or "to be assigned",
                    origin=leg.origin_name,
                    destination=leg.destination_name,
                    planned_departure=leg.planned_departure,
                    planned_arrival=leg.planned_arrival,
                )
                for leg in legs
            ),
            modules=tuple(lines),
            packages=tuple(
                docs.PackageLine(
                    number=p.number,
                    sscc=p.sscc,
                    kind=p.kind,
                    contents=tuple(p.contents),
                    net_kg=p.net_kg,
                    gross_kg=p.gross_kg,
                    length_mm=p.length_mm,
                    width_mm=p.width_mm,
                    height_mm=p.height_mm,
                    container=p.container,
                )
                for p in packages
            ),
            invoice_currency=shipment.currency,
            emergency_contact=str(consignor.get("contact") or ""),
        )
    except (docs.ShippingDocumentError, msgspec.ValidationError) as exc:
        raise RuleRefused(f"{kind} of {shipment.ref} cannot be issued: {exc}") from None
    return model, modules


def _party_doc(party: dict[str, Any] | None) -> dict[str, Any]:
    data = dict(party or {})
    data["address"] = tuple(data.get("address") or ())
    return data
