"""HTTP API of commissioning: checklist templates and runs, evidence, validation, certificates."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.commissioning import service
from app.commissioning.schemas import (
    AnswerIn,
    AnswerRead,
    CommissioningRead,
    RunRead,
    SanitisationIn,
    SignIn,
    StartChecklistIn,
    ValidationRunRead,
)
from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import TooLarge
from app.core.filestore import FileStore
from app.core.openapi import consumes, produces

FIELD = (Role.ADMIN, Role.ENGINEER)
WITNESSES = (Role.ADMIN, Role.ENGINEER, Role.AUDITOR)


async def _body(request: Request[Any, Any, Any], max_bytes: int) -> bytes:
    """The raw body, refused as soon as it passes the limit (nothing is buffered beyond it)."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"body exceeds {max_bytes:,} bytes", max_bytes=max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


class CommissioningController(Controller):
    path = "/api/v1"
    tags = ["commissioning"]

    @get("/checklists/templates", opt=allow(*ALL_ROLES), operation_id="ListChecklistTemplates")
    async def list_templates(self) -> list[dict[str, Any]]:
        """Checklist templates as loaded from workflows/checklists/: sections, items, sign-off rules."""
        return [msgspec.to_builtins(t) for t in service.templates().values()]

    @get("/modules/{serial:str}/commissioning", opt=allow(*ALL_ROLES), operation_id="GetCommissioning")
    async def status(self, serial: FromPath[str], db: NamedDependency[Database]) -> CommissioningRead:
        """What the module needs at its site before it enters service: the checklists its site's
        security level requires, their runs, the validation run, and what is next."""
        async with db.read() as uow:
            return await service.commissioning(uow, serial)

    @post("/modules/{serial:str}/checklists", opt=allow(*FIELD), operation_id="StartChecklist")
    async def start(
        self,
        serial: FromPath[str],
        data: JSONBody[StartChecklistIn],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> RunRead:
        """Start a checklist run; it keeps the template's version as it is now."""
        async with db.write() as uow:
            return await service.start_checklist(uow, serial, data.template, principal)

    @get("/checklist-runs/{run_id:int}", opt=allow(*ALL_ROLES), operation_id="GetChecklistRun")
    async def run(self, run_id: FromPath[int], db: NamedDependency[Database]) -> RunRead:
        async with db.read() as uow:
            return await service.run_read(uow, await service.load_run(uow, run_id))

    @put("/checklist-runs/{run_id:int}/answers/{item:str}", opt=allow(*FIELD), operation_id="AnswerChecklistItem")
    async def answer(
        self,
        run_id: FromPath[int],
        item: FromPath[str],
        data: JSONBody[AnswerIn],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> AnswerRead:
        """Answer one item. `base_version` is the version the edit was based on (0 for a first
        answer): 409 with the current answer when someone changed it since. Out-of-range values are
        flagged and need a comment (422 without one). Replaying the same `edit_id` stores nothing twice."""
        async with db.write() as uow:
            return await service.answer(uow, run_id, item, data, principal)

    @post("/checklist-runs/{run_id:int}/signatures", opt=allow(*WITNESSES), operation_id="SignChecklistRun")
    async def sign(
        self,
        run_id: FromPath[int],
        data: JSONBody[SignIn],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> RunRead:
        """Sign a complete run as the engineer, or as the witness where the template needs two people
        (a second, different person). The run is read-only once the sign-off holds."""
        async with db.write() as uow:
            return await service.sign(uow, run_id, data, principal)

    @post(
        "/evidence",
        opt=allow(*FIELD),
        operation_id="UploadEvidence",
        operation_class=consumes("image/jpeg", "image/png"),
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        store: NamedDependency[FileStore],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
    ) -> dict[str, Any]:
        """Keep a photo as evidence (image/jpeg or image/png, checked from its bytes, size- and
        pixel-limited) by its SHA-256; answer a photo item with that hash."""
        body = await _body(request, settings.max_photo_bytes)
        async with db.write() as uow:
            return await service.store_evidence(
                uow, store, body, request.headers.get("content-type", ""), principal, max_bytes=settings.max_photo_bytes
            )

    @get(
        "/evidence/{sha256:str}",
        opt=allow(*ALL_ROLES),
        operation_id="GetEvidence",
        operation_class=produces("*/*"),  # evidence is served in the media type it was uploaded with
    )
    async def get_evidence(
        self, sha256: FromPath[str], db: NamedDependency[Database], store: NamedDependency[FileStore]
    ) -> Response[bytes]:
        async with db.read() as uow:
            content, media_type = await service.evidence(uow, store, sha256)
        return Response(
            content, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"}
        )

    @post("/modules/{serial:str}/validation-runs", opt=allow(*FIELD), operation_id="StartValidationRun")
    async def start_validation(
        self, serial: FromPath[str], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> ValidationRunRead:
        """Start hardware validation with the suite for the module's spec (workflows/validation/)."""
        async with db.write() as uow:
            return await service.start_validation_run(uow, serial, principal)

    @get("/validation-runs/{run_id:int}", opt=allow(*ALL_ROLES), operation_id="GetValidationRun")
    async def validation(self, run_id: FromPath[int], db: NamedDependency[Database]) -> ValidationRunRead:
        async with db.read() as uow:
            return await service.validation_run(uow, run_id)

    @post(
        "/validation-runs/{run_id:int}/results/{step:str}",
        opt=allow(*FIELD),
        operation_id="ImportValidationResult",
        operation_class=consumes("application/json", "text/plain"),  # the tool's own output
    )
    async def import_result(
        self,
        run_id: FromPath[int],
        step: FromPath[str],
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        store: NamedDependency[FileStore],
        principal: NamedDependency[Principal],
    ) -> ValidationRunRead:
        """A step's result file as produced by the tool (DCGM diag JSON, nccl-tests all_reduce_perf
        output, ib_write_bw output, the throughput JSON), judged by the suite's thresholds with reasons."""
        body = await _body(request, service.MAX_RESULT_BYTES)
        async with db.write() as uow:
            return await service.import_result(uow, store, run_id, step, body, principal)

    @post("/modules/{serial:str}/sanitisation", opt=allow(*FIELD), operation_id="RecordSanitisation")
    async def sanitisation(
        self,
        serial: FromPath[str],
        data: JSONBody[SanitisationIn],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> dict[str, Any]:
        """Record the sanitisation of the module's drives while it is decommissioning (NIST SP 800-88
        Rev. 1: clear, purge or destroy, verified, with the certificate reference), one ledger event per
        drive. `complete_decommissioning` needs every installed drive purged or destroyed and verified."""
        async with db.write() as uow:
            return await service.record_sanitisation(uow, serial, data, principal)

    @get(
        "/modules/{serial:str}/certificate.pdf",
        opt=allow(*ALL_ROLES),
        operation_id="GetCommissioningCertificate",
        media_type="application/pdf",
    )
    async def certificate(self, serial: FromPath[str], db: NamedDependency[Database]) -> Response[bytes]:
        """The commissioning certificate issued when the module entered service."""
        async with db.read() as uow:
            row = await service.certificate(uow, serial)
        return Response(
            row.pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{row.number}.pdf"', "X-Document-SHA256": row.sha256},
        )
