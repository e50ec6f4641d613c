"""Burn-in use cases: start a run, record telemetry / DCGM / Xid evidence, finish with a verdict.

Uploads are streamed to the content-addressed file store and summarised off the event loop; the
run's merged summary, the ledger event and the verdict are each written in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from app.burnin import domain
from app.burnin.dcgm import DcgmResult, parse_dcgm
from app.burnin.domain import dump_summary, load_summary
from app.burnin.models import BurnInRun
from app.burnin.repository import BurnInRepository
from app.burnin.schemas import GpuResult, RunCreated, RunRead, UploadReceipt, VerdictRead
from app.burnin.streaming import Tee
from app.burnin.telemetry import summarise_nvidia_smi
from app.burnin.xid import XidEvent, parse_xid
from app.core.auth.domain import Principal
from app.core.db import Database, UnitOfWork, utcnow
from app.core.definitions import Lifecycle
from app.core.errors import Conflict, DomainError, NotFound
from app.core.filestore import FileStore, StoredFile
from app.core.ledger import service as ledger
from app.core.lifecycle import service as lifecycle_service
from app.core.lifecycle.schemas import TransitionRequest
from app.factory.service import load_module


async def burn_in_verdict(uow: UnitOfWork, module_id: int) -> str | None:
    """The verdict of the latest finished run since the module last started burn-in (the guard's fact)."""
    repo = BurnInRepository(uow.session)
    return await repo.latest_verdict(module_id, await repo.entered_burn_in_at(module_id))


async def start_run(
    uow: UnitOfWork, lifecycle: Lifecycle, serial: str, actor: Principal, station: str | None
) -> RunCreated:
    module = await load_module(uow, serial, for_update=True)
    if module.state == "assembled":  # starting the run is starting burn-in
        await lifecycle_service.transition(uow, lifecycle, serial, TransitionRequest("start_burn_in"), actor)
    elif module.state != "burn_in":
        raise Conflict(
            f"{serial} is {module.state}; a burn-in run starts from assembled or burn_in",
            serial=serial,
            state=module.state,
        )
    repo = BurnInRepository(uow.session)
    running = await repo.running_for(module.id)
    if running is not None:
        raise Conflict(f"run {running.id} of {serial} is still running; finish it first", run=running.id)
    run = BurnInRun(module_id=module.id, station=station or "", started_by=actor.username, started_at=utcnow())
    repo.add(run)
    await uow.session.flush()
    await ledger.append(
        uow,
        module,
        "burnin.run_started",
        actor=actor.username,
        role=actor.role,
        payload={"run": run.id, "station": run.station},
        place=station or module.factory.code,
    )
    return RunCreated(id=run.id, module=serial, state=module.state)


async def _running(uow: UnitOfWork, run_id: int, *, for_update: bool = True) -> BurnInRun:
    """The run, which must still be running to take evidence."""
    run = await BurnInRepository(uow.session).run(run_id, for_update=for_update)
    if run is None:
        raise NotFound(f"no burn-in run {run_id}", run=run_id)
    if run.status != "running":
        raise Conflict(f"burn-in run {run_id} is {run.status}; evidence can only be added while it runs", run=run_id)
    return run


async def _check_running(db: Database, run_id: int) -> BurnInRun:
    """Refuse before reading an upload when the run cannot take it."""
    async with db.read() as uow:
        return await _running(uow, run_id, for_update=False)


async def record_telemetry(
    db: Database, store: FileStore, run_id: int, chunks: AsyncIterator[bytes], actor: Principal, *, max_bytes: int
) -> UploadReceipt:
    """Stream an nvidia-smi CSV to the file store and summarise it as it arrives; merge it into the run."""
    run = await _check_running(db, run_id)
    start = load_summary(run.summary).start if run.summary else None
    tee = Tee(lambda stream: summarise_nvidia_smi(stream, start=start))
    try:
        stored = await store.save_stream(tee.through(chunks), max_bytes=max_bytes)
    except BaseException:
        await tee.abandon()
        raise
    try:
        summary = await tee.result
        async with db.write() as uow:
            run = await _running(uow, run_id)
            merged = summary
            if run.summary:
                merged = load_summary(run.summary).merge(summary)
            run.summary = dump_summary(merged)
            run.telemetry_uploads += 1
            run.telemetry_rows += summary.rows
            await _evidence_event(
                uow, run, actor, "burnin.telemetry_recorded", stored, rows=summary.rows, gpus=sorted(summary.gpus)
            )
    except DomainError:
        store.discard(stored)  # a refused file leaves nothing behind
        raise
    return UploadReceipt(run=run_id, kind="telemetry", rows=summary.rows, sha256=stored.sha256, bytes=stored.size)


async def record_dcgm(db: Database, store: FileStore, run_id: int, body: bytes, actor: Principal) -> UploadReceipt:
    await _check_running(db, run_id)
    result = parse_dcgm(body)  # refused before anything is kept
    stored = store.save_bytes(body)
    async with db.write() as uow:
        run = await _running(uow, run_id)
        run.dcgm = msgspec.to_builtins(result)
        await _evidence_event(
            uow,
            run,
            actor,
            "burnin.dcgm_recorded",
            stored,
            level=result.level,
            failed=[t.name for t in result.failed()],
        )
    return UploadReceipt(run=run_id, kind="dcgm", rows=len(result.tests), sha256=stored.sha256, bytes=stored.size)


async def record_xid(db: Database, store: FileStore, run_id: int, body: bytes, actor: Principal) -> UploadReceipt:
    await _check_running(db, run_id)
    events = parse_xid(body)
    stored = store.save_bytes(body)
    async with db.write() as uow:
        run = await _running(uow, run_id)
        run.xids = [*run.xids, *msgspec.to_builtins(events)]
        await _evidence_event(uow, run, actor, "burnin.xid_recorded", stored, xids=sorted({e.xid for e in events}))
    return UploadReceipt(run=run_id, kind="xid", rows=len(events), sha256=stored.sha256, bytes=stored.size)


async def _evidence_event(
    uow: UnitOfWork, run: BurnInRun, actor: Principal, type_: str, stored: StoredFile, **details: Any
) -> None:
    module = await load_module(uow, run.module.serial, for_update=True)
    await ledger.append(
        uow,
        module,
        type_,
        actor=actor.username,
        role=actor.role,
        payload={"run": run.id, "sha256": stored.sha256, "bytes": stored.size, **details},
        place=run.station or module.factory.code,
    )


async def finish_run(
    uow: UnitOfWork, lifecycle: Lifecycle, run_id: int, actor: Principal, rules: domain.AcceptanceRules
) -> VerdictRead:
    """Judge the run, store the verdict with its rules version, and move the module on: a pass to
    burn_in_passed, a fail to burn_in_failed (and from there to rework)."""
    run = await _running(uow, run_id)
    module = run.module
    repo = BurnInRepository(uow.session)
    summary = load_summary(run.summary) if run.summary else None
    dcgm = msgspec.convert(run.dcgm, DcgmResult) if run.dcgm else None
    xids = msgspec.convert(run.xids, list[XidEvent])
    verdict = domain.judge(
        summary,
        dcgm,
        xids,
        rules,
        expected_gpus=module.spec.gpu_count,
        fleet_history=await repo.fleet_clock_history(module.spec.gpu_model),
    )
    run.status = "finished"
    run.finished_at = utcnow()
    run.verdict = verdict.verdict
    run.rules_version = verdict.rules_version
    run.result = msgspec.to_builtins(verdict)
    await uow.session.flush()
    failing = [g for g in verdict.gpus if g.verdict == "fail"]
    if verdict.verdict == "pass":
        request = TransitionRequest("pass_burn_in", {"note": f"burn-in run {run.id} passed ({verdict.rules_version})"})
    else:
        all_reasons = verdict.reasons + [r for g in failing for r in g.reasons]
        more = f" (+{len(all_reasons) - 1} more)" if len(all_reasons) > 1 else ""
        reason = f"burn-in run {run.id} failed: {all_reasons[0]}{more}"
        request = TransitionRequest("fail_burn_in", {"reason": reason[:2000]})
    if module.state == "burn_in":
        await lifecycle_service.transition(uow, lifecycle, module.serial, request, actor)
    return verdict_read(verdict)


def verdict_read(verdict: domain.RunVerdict) -> VerdictRead:
    return VerdictRead(
        verdict=verdict.verdict,
        gpus=[GpuResult(g.index, g.uuid, g.verdict, g.reasons) for g in verdict.gpus],
        rules_version=verdict.rules_version,
        reasons=verdict.reasons,
        warnings=verdict.warnings,
    )


def run_read(run: BurnInRun) -> RunRead:
    summary = run.summary or {}
    result = msgspec.convert(run.result, domain.RunVerdict) if run.result else None
    return RunRead(
        id=run.id,
        module=run.module.serial,
        station=run.station,
        status=run.status,
        started_by=run.started_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        verdict=run.verdict,
        rules_version=run.rules_version,
        telemetry_uploads=run.telemetry_uploads,
        telemetry_rows=run.telemetry_rows,
        gpus_seen=len(summary.get("gpus", {})),
        dcgm_level=(run.dcgm or {}).get("level"),
        xid_count=len(run.xids),
        result=verdict_read(result) if result else None,
    )


async def get_run(uow: UnitOfWork, run_id: int) -> BurnInRun:
    run = await BurnInRepository(uow.session).run(run_id)
    if run is None:
        raise NotFound(f"no burn-in run {run_id}", run=run_id)
    return run
