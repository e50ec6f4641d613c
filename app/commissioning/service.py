"""Commissioning use cases: checklist runs (answers with conflict detection, evidence, sign-off),
hardware validation runs (result files judged per step), the guard facts they establish, and the
certificate issued when a module enters service. Every write is one unit of work with its ledger events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import io
from typing import Any

import msgspec
from sqlalchemy import func, select

from app.commissioning import checklists as cl
from app.commissioning import validation as vs
from app.commissioning.models import (
    ChecklistAnswer,
    ChecklistRun,
    ChecklistSignature,
    CommissioningCertificateRecord,
    EvidenceFile,
    ValidationResult,
    ValidationRun,
)
from app.commissioning.schemas import (
    AnswerIn,
    AnswerRead,
    CommissioningRead,
    NextStep,
    RunRead,
    RunSummary,
    SanitisationIn,
    SignatureRead,
    SignIn,
    StepRead,
    ValidationRunRead,
)
from app.core.auth.domain import Principal
from app.core.db import UnitOfWork, utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleRefused, TooLarge
from app.core.filestore import FileStore
from app.core.ledger import service as ledger
from app.core.ledger.models import Event
from app.factory.models import Module, Part
from app.factory.repository import FactoryRepository
from app.sites.models import Site

CHECKLIST_STATES = ("delivered", "commissioning", "validating")  # when a commissioning checklist is worked on
DECOMMISSIONING_STATES = ("decommissioning",)
STORAGE_KINDS = ("ssd", "nvme", "hdd")  # parts that hold data: sanitised before a module leaves a site
SANITISED_BY = ("purge", "destroy")  # NIST SP 800-88 Rev. 1: "clear" does not stand up to lab recovery
VALIDATION_STATES = ("commissioning", "validating")
PHOTO_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
MAX_PHOTO_PIXELS = 50_000_000
MAX_RESULT_BYTES = 20 * 1024 * 1024  # a DCGM level-3 JSON or a perf test's stdout is far smaller


@functools.cache
def templates() -> dict[str, cl.ChecklistTemplate]:
    return cl.load_templates()


@functools.cache
def suites() -> dict[str, vs.ValidationSuite]:
    return vs.load_suites()


# --- reading ------------------------------------------------------------------------------------------


async def _module(uow: UnitOfWork, serial: str, *, for_update: bool = False) -> Module:
    module = await FactoryRepository(uow.session).module(serial, for_update=for_update)
    if module is None:
        raise NotFound(f"no module with serial {serial!r}", serial=serial)
    return module


def _site(module: Module) -> Site:
    if module.site is None:
        raise Conflict(f"{module.serial} has no site: commissioning happens where it was delivered")
    return module.site


def _template_of(run: ChecklistRun) -> cl.ChecklistTemplate:
    return msgspec.convert(run.template, cl.ChecklistTemplate)


# The event that opens each stage's part of a deployment: runs started before it belong to an earlier
# deployment (a module redeployed back to a site it once served starts afresh).
STAGE_OPENED_BY = {"decommissioning": "lifecycle.start_decommissioning"}
DEFAULT_OPENED_BY = "lifecycle.deliver"


async def _opened_at(uow: UnitOfWork, module: Module, stage: str) -> int:
    kind = STAGE_OPENED_BY.get(stage, DEFAULT_OPENED_BY)
    seq = await uow.session.scalar(select(func.max(Event.seq)).where(Event.module_id == module.id, Event.type == kind))
    return int(seq or 0)


async def _runs_at_site(uow: UnitOfWork, module: Module, stage: str = "delivery") -> list[ChecklistRun]:
    """The module's runs at its site in this deployment (for commissioning stages, or decommissioning)."""
    site = _site(module)
    since = await _opened_at(uow, module, stage)
    rows = await uow.session.scalars(
        select(ChecklistRun)
        .where(ChecklistRun.module_id == module.id, ChecklistRun.site_id == site.id, ChecklistRun.started_seq > since)
        .order_by(ChecklistRun.id)
    )
    decommissioning = stage == "decommissioning"
    return [r for r in rows if (r.template.get("stage") == "decommissioning") == decommissioning]


async def _answers(uow: UnitOfWork, run: ChecklistRun) -> dict[str, ChecklistAnswer]:
    rows = await uow.session.scalars(select(ChecklistAnswer).where(ChecklistAnswer.run_id == run.id))
    return {a.item_id: a for a in rows}


async def _signatures(uow: UnitOfWork, run: ChecklistRun) -> list[ChecklistSignature]:
    rows = await uow.session.scalars(
        select(ChecklistSignature).where(ChecklistSignature.run_id == run.id).order_by(ChecklistSignature.id)
    )
    return list(rows)


async def load_run(uow: UnitOfWork, run_id: int, *, for_update: bool = False) -> ChecklistRun:
    query = select(ChecklistRun).where(ChecklistRun.id == run_id)
    if for_update:
        query = query.with_for_update()
    run = await uow.session.scalar(query)
    if run is None:
        raise NotFound(f"no checklist run {run_id}", run=run_id)
    return run


def _answer_read(a: ChecklistAnswer) -> AnswerRead:
    return AnswerRead(
        item=a.item_id,
        value=a.value,
        comment=a.comment,
        flagged=a.flagged,
        flag_reason=a.flag_reason,
        version=a.version,
        answered_by=a.answered_by,
        answered_at=a.answered_at,
    )


async def run_read(uow: UnitOfWork, run: ChecklistRun) -> RunRead:
    template = _template_of(run)
    answers = await _answers(uow, run)
    site = await uow.session.get(Site, run.site_id)
    module = await uow.session.get(Module, run.module_id)
    assert site is not None
    assert module is not None
    values = {k: a.value for k, a in answers.items()}
    visible = {i.id for i in cl.visible_items(template, values, site.security_level)}
    missing = [i.id for i in cl.missing_items(template, values, site.security_level)]
    signatures = await _signatures(uow, run)
    return RunRead(
        id=run.id,
        module=module.serial,
        site=site.code,
        security_level=site.security_level,
        template=run.template,
        status=run.status,
        answers=[_answer_read(a) for a in answers.values()],
        visible=sorted(visible),
        missing=missing,
        flagged=[a.item_id for a in answers.values() if a.flagged],
        signatures=[SignatureRead(s.kind, s.name, s.username, s.role, s.signed_at) for s in signatures],
        needs_witness=template.signoff.witness,
        started_by=run.started_by,
        started_at=run.started_at,
        signed_at=run.signed_at,
    )


async def commissioning(uow: UnitOfWork, serial: str) -> CommissioningRead:
    """What a module at its site needs before it enters service, and what is done."""
    module = await _module(uow, serial)
    site = _site(module)
    required = _required(site)
    runs = await _runs_at_site(uow, module)
    latest = {r.template_id: r for r in runs}
    summaries = []
    steps: list[NextStep] = []
    for t in required:
        run = latest.get(t.id)
        summaries.append(
            RunSummary(
                template=t.id,
                title=t.title,
                stage=t.stage,
                level=t.level,
                run=run.id if run else None,
                status=run.status if run else "not started",
                version=run.template_version if run else t.version,
            )
        )
        if run is None:
            steps.append(NextStep(f"start the {t.title} checklist", f"checklist:{t.id}"))
        elif run.status != "signed":
            steps.append(NextStep(f"complete and sign the {t.title} checklist", f"run:{run.id}"))
    vrun = await _latest_validation(uow, module)
    if vrun is None:
        steps.append(NextStep("start hardware validation", "validation"))
    elif vrun.verdict != "pass":
        steps.append(
            NextStep(
                f"validation is {vrun.verdict}: {'; '.join(vrun.reasons) or 'import results'}", f"validation:{vrun.id}"
            )
        )
    if not steps:
        steps.append(
            NextStep("enter service", "enter_service")
            if module.state == "validating"
            else NextStep(f"{module.state.replace('_', ' ')}", "")
        )
    return CommissioningRead(
        module=module.serial,
        state=module.state,
        site=site.code,
        security_level=site.security_level,
        checklists=summaries,
        validation=await validation_read(uow, vrun) if vrun else None,
        next=steps,
    )


def _required(site: Site) -> list[cl.ChecklistTemplate]:
    try:
        return cl.required_templates(templates(), site.security_level)
    except ValueError as exc:
        raise Conflict(f"site {site.code}: {exc}") from None


# --- checklists ---------------------------------------------------------------------------------------


async def start_checklist(uow: UnitOfWork, serial: str, template_id: str, actor: Principal) -> RunRead:
    module = await _module(uow, serial, for_update=True)
    site = _site(module)
    template = templates().get(template_id)
    if template is None:
        raise NotFound(f"no checklist template {template_id!r}; templates: {', '.join(sorted(templates()))}")
    states = DECOMMISSIONING_STATES if template.stage == "decommissioning" else CHECKLIST_STATES
    if module.state not in states:
        raise Conflict(
            f"{serial} is {module.state}; a {template.stage} checklist is worked on when it is {' or '.join(states)}"
        )
    if template.security_levels and site.security_level not in template.security_levels:
        raise RuleRefused(
            f"template {template_id} is for {', '.join(template.security_levels)} sites; "
            f"{site.code} is {site.security_level}"
        )
    existing = next((r for r in await _runs_at_site(uow, module, template.stage) if r.template_id == template_id), None)
    if existing is not None:
        raise Conflict(f"{serial} has a {template_id} run at {site.code} already (run {existing.id})", run=existing.id)
    run = ChecklistRun(
        module_id=module.id,
        site_id=site.id,
        template_id=template.id,
        template_version=template.version,
        template=msgspec.to_builtins(template),
        status="open",
        started_seq=module.version + 1,
        started_by=actor.username,
    )
    uow.session.add(run)
    await uow.session.flush()
    await ledger.append(
        uow,
        module,
        "checklist.started",
        actor=actor.username,
        role=actor.role,
        payload={"run": run.id, "template": template.id, "version": template.version},
        place=site.code,
    )
    return await run_read(uow, run)


async def answer(uow: UnitOfWork, run_id: int, item_id: str, data: AnswerIn, actor: Principal) -> AnswerRead:
    """Store one answer. The edit names the version it was based on (0 for a first answer): if someone
    else changed the item since, 409 with their answer, so the engineer resolves it. A replayed edit
    (same edit id, e.g. an offline queue sent twice) returns the stored answer and writes nothing."""
    run = await load_run(uow, run_id, for_update=True)
    module = await uow.session.get(Module, run.module_id, with_for_update=True)
    assert module is not None
    current = (await _answers(uow, run)).get(item_id)
    if current is not None and current.edit_id == data.edit_id:
        return _answer_read(current)
    if run.status != "open":
        raise Conflict(f"checklist run {run_id} is signed and read-only")
    template = _template_of(run)
    item = next((i for s in template.sections for i in s.items if i.id == item_id), None)
    if item is None:
        raise NotFound(f"template {template.id} {template.version} has no item {item_id!r}")
    site = await uow.session.get(Site, run.site_id)
    assert site is not None
    values = {k: a.value for k, a in (await _answers(uow, run)).items()}
    if item.id not in {i.id for i in cl.visible_items(template, values, site.security_level)}:
        raise RuleRefused(f"item {item_id} is not asked here (its condition or the site's security level)")
    based_on = current.version if current is not None else 0
    if data.base_version != based_on:
        raise Conflict(
            f"item {item_id} was changed by {current.answered_by if current else 'someone'} since your version "
            f"{data.base_version} (now {based_on}): review their answer and send yours again on version {based_on}",
            current=msgspec.to_builtins(_answer_read(current)) if current is not None else None,
        )
    try:
        checked = cl.check_answer(item, data.value, data.comment)
    except cl.AnswerError as exc:
        raise InvalidInput(f"{item_id}: {exc}") from None
    if item.kind == "photo":
        found = await uow.session.scalar(select(EvidenceFile.id).where(EvidenceFile.sha256 == data.value))
        if found is None:
            raise InvalidInput(
                f"{item_id}: no evidence file {data.value}; upload the photo first (POST /api/v1/evidence)"
            )
    at = _happened(data.answered_at)
    if current is None:
        current = ChecklistAnswer(run_id=run.id, item_id=item_id, version=0)
        uow.session.add(current)
    current.value = data.value
    current.comment = data.comment
    current.flagged = checked.flagged
    current.flag_reason = checked.reason
    current.version = based_on + 1
    current.edit_id = data.edit_id
    current.answered_by = actor.username
    current.answered_at = at
    await ledger.append(
        uow,
        module,
        "checklist.answered",
        actor=actor.username,
        role=actor.role,
        payload={
            "run": run.id,
            "template": template.id,
            "template_version": template.version,
            "item": item_id,
            "value": data.value,
            "comment": data.comment,
            "flagged": checked.flagged,
            "reason": checked.reason,
            "version": current.version,
            "edit": data.edit_id,
            "answered_at": at.isoformat(),
        },
        place=site.code,
    )
    await uow.session.flush()
    return _answer_read(current)


def _happened(t: dt.datetime | None) -> dt.datetime:
    now = utcnow()
    if t is None:
        return now
    at = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    if at > now + dt.timedelta(minutes=5):
        raise InvalidInput(f"{at.isoformat()} is in the future")
    return at


async def sign(uow: UnitOfWork, run_id: int, data: SignIn, actor: Principal) -> RunRead:
    """Sign a complete run as the engineer or as the witness; once the template's sign-off holds the
    run is signed and read-only. A two-person template stays open with one signature."""
    run = await load_run(uow, run_id, for_update=True)
    if run.status != "open":
        raise Conflict(f"checklist run {run_id} is signed already")
    module = await uow.session.get(Module, run.module_id, with_for_update=True)
    site = await uow.session.get(Site, run.site_id)
    assert module is not None
    assert site is not None
    template = _template_of(run)
    values = {k: a.value for k, a in (await _answers(uow, run)).items()}
    missing = cl.missing_items(template, values, site.security_level)
    if missing:
        raise RuleRefused(f"run {run_id} is not complete: {', '.join(i.id for i in missing)} unanswered")
    existing = await _signatures(uow, run)
    if data.kind == "witness" and not template.signoff.witness:
        raise RuleRefused(f"template {template.id} has no witness sign-off")
    if any(s.kind == data.kind for s in existing):
        raise Conflict(f"run {run_id} has its {data.kind} signature already")
    role = _signing_role(actor, template, data.kind)
    signatures = [cl.Signature(s.username, s.role, s.kind) for s in existing]  # type: ignore[arg-type]
    signatures.append(cl.Signature(actor.username, role, data.kind))
    if len({s.username for s in signatures}) < len(signatures):
        raise RuleRefused(f"{actor.username} has signed run {run_id} already: a witness is a second person")
    uow.session.add(
        ChecklistSignature(run_id=run.id, kind=data.kind, name=data.name, username=actor.username, role=role)
    )
    try:
        cl.check_signoff(template, signatures)
        complete = True
    except cl.SignOffError:
        complete = False  # e.g. the engineer signed a two-person template: the witness is still to come
    if complete:
        run.status = "signed"
        run.signed_at = utcnow()
    await ledger.append(
        uow,
        module,
        "checklist.signed" if complete else "checklist.signature",
        actor=actor.username,
        role=role,
        payload={
            "run": run.id,
            "template": template.id,
            "version": template.version,
            "kind": data.kind,
            "name": data.name,
        },
        place=site.code,
    )
    await uow.session.flush()
    return await run_read(uow, run)


def _signing_role(actor: Principal, template: cl.ChecklistTemplate, kind: str) -> str:
    allowed = template.signoff.engineer_roles if kind == "engineer" else template.signoff.witness_roles
    role = next((r for r in actor.roles if r in allowed), None)
    if role is None:
        raise PermissionDenied(f"the {kind} of {template.id} signs as {' or '.join(allowed)}")
    return role


# --- evidence -----------------------------------------------------------------------------------------


async def store_evidence(
    uow: UnitOfWork, store: FileStore, body: bytes, media_type: str, actor: Principal, *, max_bytes: int
) -> dict[str, Any]:
    """Keep a photo by its SHA-256: the type is checked from the bytes (not the header alone), the size
    and pixel count are bounded, and a file already kept is not written again."""
    from PIL import Image, UnidentifiedImageError

    from app.core.images import check_photo, media_type_of

    check_photo(body, media_type, max_bytes=max_bytes, max_pixels=MAX_PHOTO_PIXELS, what="evidence photo")
    media_type = media_type_of(media_type)
    try:
        with Image.open(io.BytesIO(body)) as picture:
            if picture.format != PHOTO_TYPES[media_type]:
                raise InvalidInput(f"the file is {picture.format}, not {media_type}")
            if picture.width * picture.height > MAX_PHOTO_PIXELS:
                raise TooLarge(f"photo is {picture.width}x{picture.height} pixels; at most {MAX_PHOTO_PIXELS:,}")
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"the evidence cannot be read as {media_type}: {exc}") from None
    sha256 = hashlib.sha256(body).hexdigest()
    known = await uow.session.scalar(select(EvidenceFile).where(EvidenceFile.sha256 == sha256))
    if known is None:
        await asyncio.to_thread(store.save_bytes, body)
        uow.session.add(
            EvidenceFile(
                sha256=sha256,
                media_type=media_type,
                size=len(body),
                width=width,
                height=height,
                uploaded_by=actor.username,
            )
        )
        await uow.session.flush()
    return {"sha256": sha256, "media_type": media_type, "size": len(body), "width": width, "height": height}


async def evidence(uow: UnitOfWork, store: FileStore, sha256: str) -> tuple[bytes, str]:
    row = await uow.session.scalar(select(EvidenceFile).where(EvidenceFile.sha256 == sha256.lower()))
    if row is None:
        raise NotFound(f"no evidence file {sha256}")
    return await asyncio.to_thread(store.path_for(row.sha256).read_bytes), row.media_type


# --- validation ---------------------------------------------------------------------------------------


async def _latest_validation(uow: UnitOfWork, module: Module) -> ValidationRun | None:
    return await uow.session.scalar(
        select(ValidationRun)
        .where(ValidationRun.module_id == module.id, ValidationRun.site_id == module.site_id)
        .order_by(ValidationRun.id.desc())
        .limit(1)
    )


async def validation_read(uow: UnitOfWork, run: ValidationRun) -> ValidationRunRead:
    suite = msgspec.convert(run.suite, vs.ValidationSuite)
    results = {
        r.step_id: r
        for r in await uow.session.scalars(select(ValidationResult).where(ValidationResult.run_id == run.id))
    }
    module = await uow.session.get(Module, run.module_id)
    assert module is not None
    return ValidationRunRead(
        id=run.id,
        module=module.serial,
        suite=suite.id,
        suite_version=suite.version,
        verdict=run.verdict,
        reasons=list(run.reasons),
        steps=[
            StepRead(
                step=s.id,
                title=s.title,
                kind=s.kind,
                required=s.required,
                verdict=results[s.id].verdict if s.id in results else "no result",
                reasons=list(results[s.id].reasons) if s.id in results else [],
                metrics=dict(results[s.id].metrics) if s.id in results else {},
                sha256=results[s.id].sha256 if s.id in results else None,
                uploaded_at=results[s.id].uploaded_at if s.id in results else None,
            )
            for s in suite.steps
        ],
        started_by=run.started_by,
        started_at=run.started_at,
    )


async def start_validation_run(uow: UnitOfWork, serial: str, actor: Principal) -> ValidationRunRead:
    module = await _module(uow, serial, for_update=True)
    site = _site(module)
    if module.state not in VALIDATION_STATES:
        raise Conflict(f"{serial} is {module.state}; hardware validation runs while commissioning or validating")
    try:
        suite = vs.suite_for(suites(), module.spec.code)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    run = ValidationRun(
        module_id=module.id,
        site_id=site.id,
        suite_id=suite.id,
        suite_version=suite.version,
        suite=msgspec.to_builtins(suite),
        verdict="incomplete",
        reasons=[f"no result yet for {s.id}" for s in suite.steps if s.required],
        started_by=actor.username,
    )
    uow.session.add(run)
    await uow.session.flush()
    await ledger.append(
        uow,
        module,
        "validation.started",
        actor=actor.username,
        role=actor.role,
        payload={"run": run.id, "suite": suite.id, "version": suite.version},
        place=site.code,
    )
    return await validation_read(uow, run)


async def import_result(
    uow: UnitOfWork, store: FileStore, run_id: int, step_id: str, body: bytes, actor: Principal
) -> ValidationRunRead:
    """Judge one step's result file by the suite's thresholds; keep the file by its SHA-256 and the
    verdict with its reasons; the run's verdict follows. A file that is not what the step takes is 400."""
    run = await uow.session.scalar(select(ValidationRun).where(ValidationRun.id == run_id).with_for_update())
    if run is None:
        raise NotFound(f"no validation run {run_id}")
    module = await uow.session.get(Module, run.module_id, with_for_update=True)
    assert module is not None
    module = await _module(uow, module.serial)
    if module.state not in VALIDATION_STATES:
        raise Conflict(f"{module.serial} is {module.state}; results are imported while commissioning or validating")
    if len(body) > MAX_RESULT_BYTES:
        raise TooLarge(f"result file exceeds {MAX_RESULT_BYTES:,} bytes")
    suite = msgspec.convert(run.suite, vs.ValidationSuite)
    step = next((s for s in suite.steps if s.id == step_id), None)
    if step is None:
        raise NotFound(f"suite {suite.id} has no step {step_id!r}; steps: {', '.join(s.id for s in suite.steps)}")
    try:
        verdict = vs.judge_step(step, module.spec.code, body, suite)
    except vs.ResultFileError as exc:
        raise InvalidInput(f"{step_id}: {exc}") from None
    stored = await asyncio.to_thread(store.save_bytes, body)
    result = await uow.session.scalar(
        select(ValidationResult).where(ValidationResult.run_id == run.id, ValidationResult.step_id == step_id)
    )
    if result is None:
        result = ValidationResult(run_id=run.id, step_id=step_id, kind=step.kind)
        uow.session.add(result)
    result.verdict = verdict.verdict
    result.reasons = list(verdict.reasons)
    result.metrics = msgspec.to_builtins(verdict.metrics)
    result.sha256 = stored.sha256
    result.uploaded_by = actor.username
    result.uploaded_at = utcnow()
    await uow.session.flush()
    verdicts = {
        r.step_id: vs.StepVerdict(
            step=r.step_id, kind=r.kind, verdict=r.verdict, reasons=tuple(r.reasons), metrics=r.metrics
        )  # type: ignore[arg-type]
        for r in await uow.session.scalars(select(ValidationResult).where(ValidationResult.run_id == run.id))
    }
    overall = vs.suite_verdict(suite, verdicts)
    run.verdict = overall.verdict
    run.reasons = list(overall.reasons)
    run.updated_at = utcnow()
    await ledger.append(
        uow,
        module,
        "validation.result",
        actor=actor.username,
        role=actor.role,
        payload={
            "run": run.id,
            "step": step_id,
            "verdict": verdict.verdict,
            "reasons": list(verdict.reasons),
            "sha256": stored.sha256,
            "suite_verdict": overall.verdict,
        },
        place=module.site.code if module.site else "",
    )
    return await validation_read(uow, run)


async def validation_run(uow: UnitOfWork, run_id: int) -> ValidationRunRead:
    run = await uow.session.get(ValidationRun, run_id)
    if run is None:
        raise NotFound(f"no validation run {run_id}")
    return await validation_read(uow, run)


# --- guard facts and the certificate ------------------------------------------------------------------


async def checklist_signed(uow: UnitOfWork, module: Module) -> bool | None:
    """Every checklist the module's site requires is signed for this deployment (None without a site)."""
    if module.site is None:
        return None
    signed = {r.template_id for r in await _runs_at_site(uow, module) if r.status == "signed"}
    return all(t.id in signed for t in _required(module.site))


async def decommission_ready(uow: UnitOfWork, module: Module) -> tuple[bool | None, str]:
    """A signed decommissioning checklist for this decommissioning, and every installed drive sanitised
    (purged or destroyed, verified) since it began; with the reason when not."""
    if module.site is None:
        return None, ""
    signed = [r for r in await _runs_at_site(uow, module, "decommissioning") if r.status == "signed"]
    missing = [d.serial for d in await _unsanitised(uow, module)]
    if not signed:
        return False, f"no signed decommissioning checklist for {module.serial} at {module.site.code}"
    if missing:
        return False, f"drives not sanitised (NIST SP 800-88 purge or destroy, verified): {', '.join(missing)}"
    return True, ""


async def _unsanitised(uow: UnitOfWork, module: Module) -> list[Part]:
    drives = list(
        await uow.session.scalars(
            select(Part).where(Part.module_id == module.id, Part.kind.in_(STORAGE_KINDS)).order_by(Part.serial)
        )
    )
    since = await _opened_at(uow, module, "decommissioning")
    done = {
        e.payload.get("drive")
        for e in await uow.session.scalars(
            select(Event).where(Event.module_id == module.id, Event.type == "sanitisation.recorded", Event.seq > since)
        )
        if e.payload.get("method") in SANITISED_BY and e.payload.get("verified") is True
    }
    return [d for d in drives if d.serial not in done]


async def record_sanitisation(uow: UnitOfWork, serial: str, data: SanitisationIn, actor: Principal) -> dict[str, Any]:
    """One ledger event per drive: method (NIST SP 800-88 Rev. 1 clear / purge / destroy), tool,
    verification and the certificate reference. Only the module's installed drives are accepted."""
    module = await _module(uow, serial, for_update=True)
    site = _site(module)
    if module.state not in DECOMMISSIONING_STATES:
        raise Conflict(f"{serial} is {module.state}; drives are sanitised while it is decommissioning")
    drives = {
        p.serial: p
        for p in await uow.session.scalars(
            select(Part).where(Part.module_id == module.id, Part.kind.in_(STORAGE_KINDS))
        )
    }
    unknown = [d.drive for d in data.drives if d.drive not in drives]
    if unknown:
        raise InvalidInput(f"not drives installed in {serial}: {', '.join(unknown)}")
    for d in data.drives:
        await ledger.append(
            uow,
            module,
            "sanitisation.recorded",
            actor=actor.username,
            role=actor.role,
            payload={
                "drive": d.drive,
                "part_number": drives[d.drive].part_number,
                "standard": "NIST SP 800-88 Rev. 1",
                "method": d.method,
                "technique": d.technique,
                "tool": d.tool,
                "verified": d.verified,
                "certificate": data.certificate,
            },
            place=site.code,
        )
    remaining = await _unsanitised(uow, module)
    return {"module": serial, "recorded": len(data.drives), "remaining": [p.serial for p in remaining]}


async def validation_passed(uow: UnitOfWork, module: Module) -> bool | None:
    if module.site is None:
        return None
    run = await _latest_validation(uow, module)
    return run is not None and run.verdict == "pass"


async def issue_certificate(uow: UnitOfWork, module: Module, actor: Principal, base_url: str) -> str:
    """The commissioning certificate, issued as the module enters service: its signed checklists,
    validation results and evidence hashes; the PDF is kept and its SHA-256 goes into the ledger."""
    from app.commissioning.certificate import (
        ChecklistSummary,
        CommissioningCertificate,
        Evidence,
        Signer,
        ValidationLine,
    )
    from app.documents.certificate import render_certificate

    site = _site(module)
    runs = [r for r in await _runs_at_site(uow, module) if r.status == "signed"]
    summaries = []
    photos: list[tuple[str, str]] = []  # (label, sha256)
    for run in runs:
        template = _template_of(run)
        answers = await _answers(uow, run)
        items = {i.id: i for s in template.sections for i in s.items}
        for a in answers.values():
            if items.get(a.item_id) is not None and items[a.item_id].kind == "photo":
                photos.append((f"{template.id}: {items[a.item_id].label}", a.value))
        summaries.append(
            ChecklistSummary(
                template_id=template.id,
                version=template.version,
                title=template.title,
                stage=template.stage,
                level=template.level,
                answered=len(answers),
                flagged=sum(1 for a in answers.values() if a.flagged),
                signers=tuple(
                    Signer(name=s.name, username=s.username, role=s.role, kind=s.kind, signed_at=s.signed_at)  # type: ignore[arg-type]
                    for s in await _signatures(uow, run)
                ),
            )
        )
    vrun = await _latest_validation(uow, module)
    if vrun is None or vrun.verdict != "pass":
        raise RuleRefused(f"{module.serial} has no passed validation run: no certificate")
    media = {
        e.sha256: e.media_type
        for e in await uow.session.scalars(
            select(EvidenceFile).where(EvidenceFile.sha256.in_([sha for _, sha in photos]))
        )
    }
    evidence = [Evidence(label=label, sha256=sha, media_type=media.get(sha, "image/jpeg")) for label, sha in photos]
    suite = msgspec.convert(vrun.suite, vs.ValidationSuite)
    results = {
        r.step_id: r
        for r in await uow.session.scalars(select(ValidationResult).where(ValidationResult.run_id == vrun.id))
    }
    lines = [
        ValidationLine(
            step=s.id,
            title=s.title,
            kind=s.kind,
            verdict=results[s.id].verdict,  # type: ignore[arg-type]
            summary="; ".join(results[s.id].reasons) or _metrics_text(results[s.id].metrics),
            result_sha256=results[s.id].sha256,
        )
        for s in suite.steps
        if s.id in results
    ]
    count = await uow.session.scalar(select(func.count(CommissioningCertificateRecord.id))) or 0
    now = utcnow()
    cert = CommissioningCertificate(
        number=f"CC-{now.year}-{count + 1:06d}",
        issued_at=now,
        module_serial=module.serial,
        spec_code=module.spec.code,
        spec_name=module.spec.name,
        gpu_model=module.spec.gpu_model,
        gpu_count=module.spec.gpu_count,
        factory=module.factory.name,
        site_code=site.code,
        site_name=site.name,
        site_country=site.country,
        security_level=site.security_level,
        entered_service_at=now,
        checklists=tuple(summaries),
        suite_id=suite.id,
        suite_version=suite.version,
        validation=tuple(lines),
        evidence=tuple(evidence),
        url=f"{base_url.rstrip('/')}/modules/{module.serial}",
        ledger_head=module.head_hash,
    )
    pdf = await asyncio.to_thread(render_certificate, cert)
    digest = hashlib.sha256(pdf).hexdigest()
    uow.session.add(CommissioningCertificateRecord(module_id=module.id, number=cert.number, sha256=digest, pdf=pdf))
    await ledger.append(
        uow,
        module,
        "certificate.issued",
        actor=actor.username,
        role=actor.role,
        payload={
            "number": cert.number,
            "sha256": digest,
            "checklists": [s.template_id for s in summaries],
            "suite": suite.id,
        },
        place=site.code,
    )
    return cert.number


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in metrics.items()) or "passed"


async def certificate(uow: UnitOfWork, serial: str) -> CommissioningCertificateRecord:
    module = await _module(uow, serial)
    row = await uow.session.scalar(
        select(CommissioningCertificateRecord)
        .where(CommissioningCertificateRecord.module_id == module.id)
        .order_by(CommissioningCertificateRecord.id.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(
            f"{serial} has no commissioning certificate: one is issued when it enters service with signed "
            "checklists and a passed validation (not on waived guards or imported records)"
        )
    return row
