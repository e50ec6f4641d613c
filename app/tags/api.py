from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.auth.domain import ALL_ROLES, STAFF, Principal
from app.core.auth.guards import allow, page
from app.core.config import Settings
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.errors import DomainError, InvalidInput, NotFound
from app.core.filestore import FileStore
from app.core.openapi import consumes, produces
from app.factory.models import Module, Part
from app.factory.repository import FactoryRepository
from app.factory.service import load_module
from app.tags import service
from app.tags.labels import LabelTemplate
from app.tags.payload import AI, Identifier
from app.tags.schemas import (
    BatchIn,
    BatchRead,
    BatchResult,
    LabelRequest,
    ScanIn,
    ScanRead,
    TagRead,
    TemplateRead,
    template_read,
)
from app.tags.service import TagSetup

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", description="A replay returns the first answer")
]


async def scan_once(
    db: Database,
    setup: TagSetup,
    lifecycle: Lifecycle,
    principal: Principal,
    scan: ScanIn,
    *,
    via: str,
    key: str | None,
    photo_sha256: str = "",
) -> ScanRead:
    """One scan in its own transaction; a concurrent replay of the same key gets the first answer."""
    try:
        async with db.write() as uow:
            return await service.record_scan(
                uow, setup, lifecycle, principal, scan, via=via, idempotency_key=key, photo_sha256=photo_sha256
            )
    except IntegrityError:
        if key is None:
            raise
        async with db.read() as uow:
            first = await service.recall(uow, principal, scan, key)
        if first is None:
            raise
        return first


def _problem(exc: DomainError) -> dict[str, Any]:
    return {"type": exc.type_uri, "title": exc.title, "status": exc.status, "detail": exc.detail, **exc.extra}


class ScanController(Controller):
    path = "/api/v1/scans"
    tags = ["scans"]

    @post("", opt=allow(*STAFF), operation_id="RecordScan", status_code=201)
    async def record(
        self,
        data: JSONBody[ScanIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        tag_setup: NamedDependency[TagSetup],
        idempotency_key: IdempotencyKey = None,
    ) -> ScanRead:
        """Record one scan of a tag, and take the station's or the request's action.

        The code is read as scanned (URI, element string, keyboard-wedge artefacts) and its signature
        checked: a forged, altered or retired-key tag is refused with 422. The scan is a ledger event
        of the module it names; an action is a lifecycle transition with its roles and guards.
        """
        return await scan_once(db, tag_setup, lifecycle, principal, data, via="api", key=idempotency_key)

    @post("/batch", opt=allow(*STAFF), operation_id="RecordScanBatch", status_code=200)
    async def batch(
        self,
        data: JSONBody[BatchIn],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        tag_setup: NamedDependency[TagSetup],
    ) -> BatchRead:
        """Scans queued on a device while it was offline, applied in their order, each on its own.

        Each item's `id` is its idempotency key, so sending the same queue twice records each scan once.
        One refused item does not stop the rest; every item gets its own status and result or problem.
        """
        results: list[BatchResult] = []
        for index, item in enumerate(data.scans):
            try:
                scan = await scan_once(db, tag_setup, lifecycle, principal, item, via="batch", key=item.id)
                results.append(BatchResult(index=index, id=item.id, status=201, scan=scan))
            except DomainError as exc:
                results.append(BatchResult(index=index, id=item.id, status=exc.status, problem=_problem(exc)))
        applied = sum(1 for r in results if r.status == 201)
        return BatchRead(applied=applied, refused=len(results) - applied, results=results)

    @post(
        "/photo",
        opt=allow(*STAFF),
        operation_id="RecordScanPhoto",
        status_code=201,
        operation_class=consumes("image/jpeg", "image/png"),
    )
    async def photo(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        tag_setup: NamedDependency[TagSetup],
        settings: NamedDependency[Settings],
        store: NamedDependency[FileStore],
        station: FromQuery[str | None] = None,
        site: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        keep: FromQuery[bool] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> ScanRead:
        """A photo of a label (image/jpeg or image/png, e.g. from a phone camera), decoded on the server.

        The image is size-limited and not kept unless `keep=true` (then its SHA-256 is in the scan event).
        """
        import msgspec

        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        texts = await asyncio.to_thread(service.decode_photo, body, media_type, max_bytes=settings.max_photo_bytes)
        code = service.pick_tag(tag_setup, texts)
        try:
            scan = msgspec.convert({"code": code, "station": station, "site": site, "action": action}, ScanIn)
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc)) from None
        if not keep:
            return await scan_once(db, tag_setup, lifecycle, principal, scan, via="photo", key=idempotency_key)
        stored = store.save_bytes(body)
        try:
            return await scan_once(
                db, tag_setup, lifecycle, principal, scan, via="photo", key=idempotency_key, photo_sha256=stored.sha256
            )
        except BaseException:
            store.discard(stored)  # a refused scan keeps no photo
            raise


class TagController(Controller):
    path = "/api/v1"
    tags = ["tags"]

    @get(
        "/modules/{serial:str}/tag",
        opt=allow(*ALL_ROLES),
        operation_id="GetModuleTag",
        operation_class=produces(
            "image/png", "application/pdf", "application/vnd.zebra-zpl", "text/plain", "application/json"
        ),
    )
    async def module_tag(
        self,
        serial: FromPath[str],
        db: NamedDependency[Database],
        tag_setup: NamedDependency[TagSetup],
        label_templates: NamedDependency[dict[str, LabelTemplate]],
        format: FromQuery[str] = "png",
    ) -> Response[Any]:
        """The module's QR tag: `uri` (the signed GS1 Digital Link URI), `json`, or its shipping label as
        `png` (300 dpi), `pdf` or `zpl` (300 dpi)."""
        async with db.read() as uow:
            module = await load_module(uow, serial)
            tag = tag_setup.tag(tag_setup.for_serial(module.serial))
            if format == "uri":
                return Response(tag.uri, media_type=MediaType.TEXT)
            if format == "json":
                return Response(tag)
        from app.tags import labelling  # reportlab and Pillow load only when a label is drawn

        return await labelling.module_tag(tag_setup, module, format, label_templates[labelling.MODULE_TAG_TEMPLATE])


class LabelController(Controller):
    path = "/api/v1/labels"
    tags = ["labels"]

    @get("/templates", opt=allow(*ALL_ROLES), operation_id="ListLabelTemplates")
    async def templates(self, label_templates: NamedDependency[dict[str, LabelTemplate]]) -> list[TemplateRead]:
        """The label templates of labels/: name, asset kind, size in mm, sheet layout, outputs."""
        return [template_read(t) for t in sorted(label_templates.values(), key=lambda t: t.name)]

    @post(
        "",
        opt=allow(*STAFF),
        operation_id="PrintLabels",
        status_code=200,
        operation_class=produces("application/pdf", "application/vnd.zebra-zpl", "image/png"),
    )
    async def print_labels(
        self,
        data: JSONBody[LabelRequest],
        db: NamedDependency[Database],
        tag_setup: NamedDependency[TagSetup],
        label_templates: NamedDependency[dict[str, LabelTemplate]],
    ) -> Response[bytes]:
        """Labels for these serials through a template: one PDF (labels or sheets), ZPL, or one PNG."""
        from app.tags import labelling

        template = label_templates.get(data.template)
        if template is None:
            raise NotFound(f"no label template {data.template!r}; known: {', '.join(sorted(label_templates))}")
        async with db.read() as uow:
            labels = await labelling.label_data(uow, tag_setup, template, data.serials)
        output = await asyncio.to_thread(labelling.render, template, labels, data.format, dpi=data.dpi)
        return labelling.file_response(output, data.format, f"{template.name}-{len(labels)}")


class ResolverController(Controller):
    """GS1 Digital Link resolver for this service's own tags: a phone that scans a tag opens the asset's
    page here (after signing in). Other resolvers may point here too."""

    include_in_schema = False

    @get(["/8004/{value:str}", "/8004/{value:str}/"], opt=page(*ALL_ROLES))
    async def giai(
        self,
        request: Request[Any, Any, Any],
        value: FromPath[str],
        db: NamedDependency[Database],
        tag_setup: NamedDependency[TagSetup],
    ) -> Redirect:
        identifier = _checked(tag_setup, request, Identifier(AI.GIAI, value))
        serial = tag_setup.reference(identifier)
        async with db.read() as uow:
            if await FactoryRepository(uow.session).module(serial) is not None:
                return Redirect(f"/modules/{serial}", status_code=303)
            owner = await uow.session.scalar(
                select(Module.serial).join(Part, Part.module_id == Module.id).where(Part.serial == serial)
            )
        if owner is not None:
            return Redirect(f"/modules/{owner}", status_code=303)
        raise NotFound(f"no module or installed part with serial {serial!r} ({identifier.hri})")


def _checked(setup: TagSetup, request: Request[Any, Any, Any], identifier: Identifier) -> Identifier:
    # Read the tag as printed: our resolver address, the raw (still percent-encoded) path and the query.
    raw_path = (request.scope.get("raw_path", b"").decode("latin-1") or request.url.path).split("?")[0]
    query = request.scope.get("query_string", b"").decode("latin-1")
    scanned = setup.read(f"{setup.resolver}{raw_path}?{query}")
    if scanned.identifier != identifier:  # the URL's path and the signed identifier must be the same asset
        raise InvalidInput("the tag URI does not name the asset in its path")
    return scanned.identifier


__all__ = ["LabelController", "ResolverController", "ScanController", "TagController", "TagRead"]
