from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.burnin import service
from app.burnin.domain import AcceptanceRules
from app.burnin.schemas import RunCreated, RunRead, RunStart, UploadReceipt, VerdictRead
from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.config import Settings
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.filestore import FileStore
from app.core.openapi import consumes

FLOOR = (Role.FLOOR, Role.ADMIN)
EVIDENCE_LIMIT = 64 * 1024 * 1024  # DCGM JSON and kernel logs are small; telemetry streams


class BurnInController(Controller):
    path = "/api/v1"
    tags = ["burn-in"]

    @post("/modules/{serial:str}/burn-in-runs", opt=allow(*FLOOR), operation_id="StartBurnInRun", status_code=201)
    async def start(
        self,
        serial: FromPath[str],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        data: JSONBody[RunStart | None] = None,
    ) -> RunCreated:
        """Start a burn-in run (a module that is assembled moves to burn_in)."""
        async with db.write() as uow:
            return await service.start_run(uow, lifecycle, serial, principal, data.station if data else None)

    @get("/modules/{serial:str}/burn-in-runs", opt=allow(*ALL_ROLES), operation_id="ListBurnInRuns")
    async def list_runs(self, serial: FromPath[str], db: NamedDependency[Database]) -> list[RunRead]:
        from app.burnin.repository import BurnInRepository
        from app.factory.service import load_module

        async with db.read() as uow:
            module = await load_module(uow, serial)
            runs = await BurnInRepository(uow.session).runs_of(module.id)
            return [service.run_read(r) for r in runs]

    @get("/burn-in-runs/{run_id:int}", opt=allow(*ALL_ROLES), operation_id="GetBurnInRun")
    async def get_run(self, run_id: FromPath[int], db: NamedDependency[Database]) -> RunRead:
        async with db.read() as uow:
            return service.run_read(await service.get_run(uow, run_id))

    @post(
        "/burn-in-runs/{run_id:int}/telemetry",
        opt=allow(*FLOOR),
        operation_id="RecordBurnInTelemetry",
        operation_class=consumes("text/csv"),
        status_code=201,
        request_max_body_size=None,  # streamed to disk; bounded by AFM_MAX_UPLOAD_BYTES
    )
    async def telemetry(
        self,
        run_id: FromPath[int],
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        store: NamedDependency[FileStore],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
    ) -> UploadReceipt:
        """Body (`text/csv`): exactly what `nvidia-smi --query-gpu=… --format=csv` prints, header first.

        Streamed to disk and summarised in chunks; a malformed file is refused with 400 naming the line
        and column, and nothing of it is kept. A run may receive many uploads, each with its header."""
        return await service.record_telemetry(
            db, store, run_id, request.stream(), principal, max_bytes=settings.max_upload_bytes
        )

    @post(
        "/burn-in-runs/{run_id:int}/dcgm",
        opt=allow(*FLOOR),
        operation_id="RecordBurnInDcgm",
        operation_class=consumes("application/json"),
        status_code=201,
        request_max_body_size=EVIDENCE_LIMIT,
    )
    async def dcgm(
        self,
        run_id: FromPath[int],
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        store: NamedDependency[FileStore],
        principal: NamedDependency[Principal],
    ) -> UploadReceipt:
        """Body: the JSON `dcgmi diag -r N -j` prints (DCGM 3.x or 4.x shape)."""
        return await service.record_dcgm(db, store, run_id, await request.body(), principal)

    @post(
        "/burn-in-runs/{run_id:int}/xid",
        opt=allow(*FLOOR),
        operation_id="RecordBurnInXid",
        operation_class=consumes("text/plain"),
        status_code=201,
        request_max_body_size=EVIDENCE_LIMIT,
    )
    async def xid(
        self,
        run_id: FromPath[int],
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        store: NamedDependency[FileStore],
        principal: NamedDependency[Principal],
    ) -> UploadReceipt:
        """Body: kernel log text (dmesg / journalctl -k); `NVRM: Xid` lines are picked out."""
        return await service.record_xid(db, store, run_id, await request.body(), principal)

    @post("/burn-in-runs/{run_id:int}/finish", opt=allow(*FLOOR), operation_id="FinishBurnInRun", status_code=200)
    async def finish(
        self,
        run_id: FromPath[int],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        burn_in_rules: NamedDependency[AcceptanceRules],
    ) -> VerdictRead:
        """Judge the run by the acceptance rules; a pass moves the module to burn_in_passed, a fail to
        burn_in_failed. Every reason is stated with its numbers, and the rules version is kept."""
        async with db.write() as uow:
            return await service.finish_run(uow, lifecycle, run_id, principal, burn_in_rules)

    @get(
        "/burn-in-runs/{run_id:int}/report.pdf",
        opt=allow(*ALL_ROLES),
        operation_id="GetBurnInReport",
        media_type="application/pdf",
    )
    async def report(
        self, run_id: FromPath[int], request: Request[Any, Any, Any], db: NamedDependency[Database]
    ) -> Response[bytes]:
        """The burn-in report as a PDF: per-GPU table, plots, reasons, and a QR code to the run."""
        from app.burnin.report import build_report
        from app.documents.burnin_report import render_burnin_report

        async with db.read() as uow:
            report = build_report(await service.get_run(uow, run_id), base_url=str(request.base_url).rstrip("/"))
        pdf = render_burnin_report(report)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="burn-in-{run_id}-{report.module_serial}.pdf"'},
        )
