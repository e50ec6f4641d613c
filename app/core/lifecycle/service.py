"""The transition use case: one transaction appends the event and updates the module's projection,
or does nothing. Concurrent writers to one module are serialised by the database (row lock on
PostgreSQL, BEGIN IMMEDIATE on SQLite); `If-Match` turns a stale read into 409."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

import msgspec
from sqlalchemy import select

from app.core import idempotency
from app.core.auth.domain import Principal
from app.core.db import UnitOfWork
from app.core.definitions import Lifecycle
from app.core.ledger import service as ledger
from app.core.lifecycle import domain
from app.core.lifecycle.guards import GuardFacts
from app.core.lifecycle.schemas import TransitionRequest
from app.factory.models import Module
from app.factory.repository import FactoryRepository
from app.factory.schemas import ModuleRead
from app.factory.service import load_module, module_read
from app.sites.models import Site


async def guard_facts(uow: UnitOfWork, module: Module, needed: Collection[str] | None = None) -> GuardFacts:
    """Gather what the guards look at: only the facts `needed` names (all when None). Each area owns
    its facts; a fact an area cannot establish stays None and its guard refuses."""
    from app.burnin.service import burn_in_verdict
    from app.commissioning import service as commissioning
    from app.logistics.shipments import manifest_issued

    def wants(*guards: str) -> bool:
        return needed is None or any(g in needed for g in guards)

    facts: dict[str, Any] = {"serial": module.serial}
    if wants("bom_complete"):
        facts["bom"] = {line["kind"]: int(line["quantity"]) for line in module.spec.bom}
        facts["installed"] = await FactoryRepository(uow.session).part_counts(module.id)
    if wants("burn_in_passed"):
        facts["burn_in_verdict"] = await burn_in_verdict(uow, module.id)
    if wants("manifest_issued"):
        facts["manifest_issued"] = await manifest_issued(uow, module)
    if wants("export_cleared"):
        facts["export_cleared"], facts["export_reason"] = await _export_clearance(uow, module)
    if wants("checklist_signed"):
        facts["checklist_signed"] = await commissioning.checklist_signed(uow, module)
    if wants("validation_passed"):
        facts["validation_passed"] = await commissioning.validation_passed(uow, module)
    if wants("decommission_checklist_signed"):
        ready, reason = await commissioning.decommission_ready(uow, module)
        facts["decommission_checklist_signed"], facts["decommission_reason"] = ready, reason
    return GuardFacts(**facts)


async def _export_clearance(uow: UnitOfWork, module: Module) -> tuple[bool | None, str]:
    """Whether the module may leave for its destination site under the export rules. "allowed"
    clears it; a licence requirement clears it only with a valid licence on record for its
    classification and destination; "needs review" (an unknown classification or destination) and a
    denial never pass."""
    if module.site is None:
        return None, ""
    from iso3166 import countries_by_alpha2

    from app.logistics.shipments import licence_for  # licences are kept with shipments
    from app.routes.export import decide, load_rules  # the routes area owns the export rules

    decision = decide(load_rules(), module.spec.export_class, module.site.country, countries_by_alpha2.keys())
    if decision.status == "allowed":
        return True, decision.rule
    if decision.status == "license_required":
        number = await licence_for(uow, module.spec.export_class, module.site.country, dt.datetime.now(dt.UTC).date())
        if number is not None:
            return True, f"licence {number} on record — {decision.rule}"
    what = {
        "license_required": "an export licence is required and none is on record",
        "denied": "export is refused",
        "needs_review": "export needs compliance review",
    }[decision.status]
    return False, f"{what} — {decision.rule}; {decision.citation} (export rules {decision.rules_version})".replace(
        "; (", " ("
    )


def with_evidence(facts: GuardFacts, evidence: Mapping[str, str]) -> GuardFacts:
    """Facts that imported records establish: each named guard's fact holds."""
    changes: dict[str, Any] = {}
    for guard in evidence:
        if guard == "burn_in_passed":
            changes["burn_in_verdict"] = "pass"
        elif guard in GuardFacts.__struct_fields__:
            changes[guard] = True
    return msgspec.structs.replace(facts, **changes)


def snapshot(module: Module) -> domain.Snapshot:
    return domain.Snapshot(
        serial=module.serial,
        state=module.state,
        version=module.version,
        site=module.site.code if module.site else None,
        hold_return_state=module.hold_return_state,
        hold_reason=module.hold_reason,
    )


async def transition(
    uow: UnitOfWork,
    lifecycle: Lifecycle,
    serial: str,
    request: TransitionRequest,
    actor: Principal,
    *,
    if_match: str | None = None,
    idempotency_key: str | None = None,
    place: str = "",
    at: dt.datetime | None = None,
    imported_evidence: Mapping[str, str] | None = None,
) -> ModuleRead:
    """Take one transition. `imported_evidence` (guard name -> reference of the legacy record that
    satisfied it) exists only for importing history from another system, never over HTTP; it is
    recorded in the event, so an auditor sees which guards rested on imported records."""
    if idempotency_key is not None:
        idempotency_key = idempotency.check_key(idempotency_key)
    # The row lock first: a concurrent request with the same key has committed by the time we hold it,
    # so the key lookup below sees its answer.
    module = await load_module(uow, serial, for_update=True)
    fingerprint = ""
    if idempotency_key is not None:
        fingerprint = idempotency.request_fingerprint(
            "POST", f"/modules/{serial}/transitions", msgspec.to_builtins(request)
        )
        stored = await idempotency.recall(uow, actor.username, idempotency_key, fingerprint)
        if stored is not None:
            return msgspec.convert(stored, ModuleRead)
    current = snapshot(module)
    domain.check_version(current, if_match)
    t = lifecycle.transition(request.transition)
    facts = await guard_facts(uow, module, t.guards) if t is not None and t.guards else GuardFacts(serial=serial)
    if imported_evidence:
        facts = with_evidence(facts, imported_evidence)
    needs_site = t is not None and "site" in t.payload
    sites = await _site_codes(uow) if needs_site else ()
    decision = domain.decide(
        lifecycle,
        current,
        request.transition,
        request.payload,
        roles=actor.roles,
        facts=facts,
        known_sites=sites,
        waivers=request.waivers,
    )
    payload = dict(decision.event_payload)
    if imported_evidence:
        payload["evidence"] = dict(imported_evidence)
    module.state = decision.to_state
    module.hold_return_state = decision.hold_return_state
    module.hold_reason = decision.hold_reason
    if decision.site != current.site:
        module.site = await uow.session.scalar(select(Site).where(Site.code == decision.site))
    await ledger.append(
        uow,
        module,
        f"lifecycle.{decision.transition}",
        actor=actor.username,
        role=_acting_role(actor, lifecycle, decision.transition),
        payload=payload,
        place=place or (module.site.code if module.site else module.factory.code),
        at=at,
    )
    await uow.session.flush()
    # The certificate attests signed checklists and a passed validation; an entry on waived guards or
    # imported paper records has neither on file here, and the event already says why it was allowed.
    entered = decision.to_state == "in_service" and decision.transition == "enter_service"
    if entered and not imported_evidence and "waived" not in payload:
        await _on_entering_service(uow, module, actor)
    result = module_read(module, lifecycle)
    if idempotency_key is not None:
        idempotency.remember(uow, actor.username, idempotency_key, fingerprint, 200, result)
    return result


async def _on_entering_service(uow: UnitOfWork, module: Module, actor: Principal) -> None:
    """The commissioning certificate is issued in the same transaction as the entry into service."""
    from app.commissioning.service import issue_certificate
    from app.core.config import public_base_url

    await issue_certificate(uow, module, actor, public_base_url())


def _acting_role(actor: Principal, lifecycle: Lifecycle, name: str) -> str:
    """The role under which the actor took the transition (the first of theirs it allows)."""
    t = lifecycle.transition(name)
    allowed = set(t.roles) if t else set()
    return next((r for r in actor.roles if r in allowed), actor.role)


async def _site_codes(uow: UnitOfWork) -> list[str]:
    return list(await uow.session.scalars(select(Site.code)))


async def recall(uow: UnitOfWork, actor: Principal, serial: str, request: TransitionRequest, key: str) -> Any:
    """After losing a race on the same Idempotency-Key, the winner's stored answer."""
    fingerprint = idempotency.request_fingerprint(
        "POST", f"/modules/{serial}/transitions", msgspec.to_builtins(request)
    )
    stored = await idempotency.recall(uow, actor.username, idempotency.check_key(key), fingerprint)
    return msgspec.convert(stored, ModuleRead) if stored is not None else None


def lifecycle_read(lifecycle: Lifecycle) -> dict[str, Any]:
    return {
        "initial": lifecycle.initial,
        "states": [msgspec.structs.asdict(s) for s in lifecycle.states],
        "transitions": [
            {
                "name": t.name,
                "from": list(t.from_),
                "to": t.to,
                "roles": list(t.roles),
                "guards": list(t.guards),
                "payload": list(t.payload),
            }
            for t in lifecycle.transitions
        ],
    }
