"""HTTP API of shipments, custody hand-offs, shipping documents and export licences."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from app.core.auth.domain import ALL_ROLES, STAFF, Principal, Role
from app.core.auth.guards import allow
from app.core.config import Settings
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.errors import NotFound
from app.core.schemas import Limit, Offset, Page
from app.logistics import shipments as service
from app.logistics.schemas import (
    DocumentIn,
    DocumentRead,
    HandoffIn,
    LegEventIn,
    LicenceIn,
    LicenceRead,
    PackIn,
    ShipmentCreate,
    ShipmentRead,
    ShipmentSummary,
)
from app.routes.service import NetworkHolder
from app.tags.service import TagSetup

PLANNERS = (Role.ADMIN, Role.PLANNER)


class ShipmentController(Controller):
    path = "/api/v1/shipments"
    tags = ["shipments"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListShipments")
    async def list_shipments(
        self,
        db: NamedDependency[Database],
        status: FromQuery[str | None] = None,
        site: FromQuery[str | None] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[ShipmentSummary]:
        """Shipments, late ones first (most hours late at the top), then by ETA."""
        async with db.read() as uow:
            items, total = await service.list_shipments(uow, status=status, site=site, limit=limit, offset=offset)
        return Page(items=items, total=total, limit=limit, offset=offset)

    @post("/", opt=allow(*PLANNERS), operation_id="CreateShipment")
    async def create(
        self,
        data: JSONBody[ShipmentCreate],
        db: NamedDependency[Database],
        route_network: NamedDependency[NetworkHolder],
        tag_setup: NamedDependency[TagSetup],
        principal: NamedDependency[Principal],
    ) -> ShipmentRead:
        """Plan a shipment to a site along one of the route planner's alternatives (`route`, 0 = best):
        its legs get planned times from `planned_departure`; each module and crate becomes a package
        with an SSCC; containers (ISO 6346, check digit verified) carry their seal numbers. A barred
        destination is refused (422) with the export rule cited."""
        network = await route_network.get()
        async with db.write() as uow:
            return await service.create_shipment(uow, network, tag_setup, data, principal)

    @get("/{ref:str}", opt=allow(*ALL_ROLES), operation_id="GetShipment")
    async def get_shipment(self, ref: FromPath[str], db: NamedDependency[Database]) -> ShipmentRead:
        """The shipment: legs with planned, actual and expected times, packages, custody hand-offs,
        documents (every version), ETA and flags such as seal mismatches."""
        async with db.read() as uow:
            return await service.shipment_read(uow, await service.load_shipment(uow, ref))

    @post(
        "/{ref:str}/pack", opt=allow(Role.ADMIN, Role.PLANNER, Role.FLOOR), operation_id="PackShipment", status_code=200
    )
    async def pack(
        self,
        ref: FromPath[str],
        data: JSONBody[PackIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> ShipmentRead:
        """Pack modules into the shipment (all not yet packed, or those named): each takes `pack` to the
        destination site through the lifecycle engine, in one transaction."""
        async with db.write() as uow:
            return await service.pack(uow, lifecycle, ref, data.modules, principal)

    @post(
        "/{ref:str}/legs/{seq:int}/departed",
        opt=allow(Role.ADMIN, Role.PLANNER, Role.FLOOR),
        operation_id="LegDeparted",
        status_code=200,
    )
    async def departed(
        self,
        ref: FromPath[str],
        seq: FromPath[int],
        data: JSONBody[LegEventIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> ShipmentRead:
        """A leg's actual departure. The first one takes every module to `in_transit`: refused (422)
        unless a manifest listing it is issued and it is export-cleared (a licence on record where the
        rules require one); then nothing is recorded."""
        async with db.write() as uow:
            return await service.leg_event(uow, lifecycle, ref, seq, "departed", data.at, principal)

    @post(
        "/{ref:str}/legs/{seq:int}/arrived",
        opt=allow(Role.ADMIN, Role.PLANNER, Role.FLOOR, Role.ENGINEER),
        operation_id="LegArrived",
        status_code=200,
    )
    async def arrived(
        self,
        ref: FromPath[str],
        seq: FromPath[int],
        data: JSONBody[LegEventIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
    ) -> ShipmentRead:
        """A leg's actual arrival; the ETA of the rest is recomputed from the remaining planned legs."""
        async with db.write() as uow:
            return await service.leg_event(uow, lifecycle, ref, seq, "arrived", data.at, principal)

    @post("/{ref:str}/handoffs", opt=allow(*STAFF), operation_id="RecordHandoff")
    async def handoff(
        self,
        ref: FromPath[str],
        data: JSONBody[HandoffIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        tag_setup: NamedDependency[TagSetup],
        principal: NamedDependency[Principal],
    ) -> ShipmentRead:
        """A custody hand-off scanned by the receiving party: module tags (forged ones 422), seals
        checked against those recorded (a mismatch is flagged, not refused: the goods are there and
        the discrepancy must be on record). A pickup or hand-over starts its leg; a delivery at the
        destination site takes the modules to `delivered`."""
        async with db.write() as uow:
            return await service.handoff(uow, lifecycle, tag_setup, ref, data, principal)

    @post("/{ref:str}/documents", opt=allow(*PLANNERS), operation_id="IssueShippingDocument")
    async def issue(
        self,
        ref: FromPath[str],
        data: JSONBody[DocumentIn],
        db: NamedDependency[Database],
        tag_setup: NamedDependency[TagSetup],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
    ) -> DocumentRead:
        """Issue the next version of a document from the shipment as it is now; earlier versions stay
        retrievable, and the SHA-256 of the PDF goes into the ledger of every module it lists."""
        async with db.write() as uow:
            return await service.issue_document(uow, tag_setup, ref, data.kind, principal, settings.resolver)

    @get(
        "/{ref:str}/{document:str}",
        opt=allow(*ALL_ROLES),
        operation_id="GetShippingDocument",
        media_type="application/pdf",
    )
    async def document(
        self,
        ref: FromPath[str],
        document: Annotated[
            str, Parameter(description="manifest.pdf, packing-list.pdf, commercial-invoice.pdf or dg-note.pdf")
        ],
        db: NamedDependency[Database],
        tag_setup: NamedDependency[TagSetup],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        version: FromQuery[int | None] = None,
    ) -> Response[bytes]:
        """A shipping document as PDF, the latest version or `version`: `manifest.pdf`, `packing-list.pdf`
        (SSCC, contents, weights and dimensions per package), `commercial-invoice.pdf` (values, HS codes,
        origin, ECCN and licence, the 15 CFR 758.6 destination control statement for CCL items) or
        `dg-note.pdf` (lithium batteries, UN3481 / UN3536, class 9; 409 when the shipment carries none).
        The first request for a document nobody has issued issues version 1, for planners and admins."""
        kind = document.removesuffix(".pdf")
        if not document.endswith(".pdf") or kind not in service.DOC_CODES:
            raise NotFound(f"no document {document!r}; documents: {', '.join(service.DOC_PATHS.values())}")
        async with db.read() as uow:
            row = await service.document_pdf(uow, ref, kind, version)
        if row is None and version is None and set(principal.roles) & {Role.ADMIN, Role.PLANNER}:
            async with db.write() as uow:
                await service.issue_document(uow, tag_setup, ref, kind, principal, settings.resolver)
            async with db.read() as uow:
                row = await service.document_pdf(uow, ref, kind, None)
        if row is None:
            what = f"version {version} of the {kind}" if version is not None else f"no {kind}"
            raise NotFound(f"{what} of shipment {ref} was issued", shipment=ref)
        return Response(
            row.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{row.number}-v{row.version}.pdf"',
                "X-Document-Version": str(row.version),
                "X-Document-SHA256": row.sha256,
            },
        )


class LicenceController(Controller):
    path = "/api/v1/export-licences"
    tags = ["shipments"]

    @get("/", opt=allow(*ALL_ROLES), operation_id="ListExportLicences")
    async def list_licences(self, db: NamedDependency[Database]) -> list[LicenceRead]:
        async with db.read() as uow:
            return await service.list_licences(uow)

    @post("/", opt=allow(*PLANNERS), operation_id="RecordExportLicence")
    async def record(
        self, data: JSONBody[LicenceIn], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> LicenceRead:
        """Put an export licence on record: it clears modules of its ECCN (4A090 covers 4A090.a) to its
        destination countries until it expires, where the export rules require a licence."""
        async with db.write() as uow:
            return await service.record_licence(uow, data, principal)
