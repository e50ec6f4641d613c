"""Guards: pure functions, registered by name, that a transition's definition refers to.

Each takes the facts the service gathered (`GuardFacts`) and returns whether the guard holds and,
if not, why. A fact is `None` when the lifecycle area that records it does not exist yet: the guard
then refuses and says so — it never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec


class GuardFacts(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    bom: dict[str, int] = {}  # part kind -> quantity the spec's bill of materials needs
    installed: dict[str, int] = {}  # part kind -> parts installed now
    burn_in_verdict: str | None = None  # "pass" / "fail" of the latest finished run since entering burn-in
    manifest_issued: bool | None = None
    export_cleared: bool | None = None
    export_reason: str = ""  # the export rule that decided, with its citation
    checklist_signed: bool | None = None
    validation_passed: bool | None = None
    decommission_checklist_signed: bool | None = None
    decommission_reason: str = ""  # what is missing: the checklist, or which drives are not sanitised


class GuardOutcome(msgspec.Struct, frozen=True):
    ok: bool
    reason: str = ""


class Guard(msgspec.Struct, frozen=True):
    name: str
    check: Callable[[GuardFacts], GuardOutcome]
    area: str
    waivable: bool  # an admin may waive it with a recorded reason; never for legal controls


def _absent(area: str, serial: str, what: str) -> GuardOutcome:
    return GuardOutcome(False, f"no {what} recorded for {serial}: the {area} area is not available yet")


def bom_complete(facts: GuardFacts) -> GuardOutcome:
    if not facts.bom:
        return GuardOutcome(False, f"the spec of {facts.serial} has no bill of materials")
    short = [
        f"{kind} {facts.installed.get(kind, 0)}/{need}"
        for kind, need in sorted(facts.bom.items())
        if facts.installed.get(kind, 0) < need
    ]
    if short:
        return GuardOutcome(False, f"{facts.serial} is missing parts: {', '.join(short)}")
    return GuardOutcome(True)


def burn_in_passed(facts: GuardFacts) -> GuardOutcome:
    if facts.burn_in_verdict is None:
        return GuardOutcome(False, f"no finished burn-in run of {facts.serial} since it entered burn-in")
    if facts.burn_in_verdict != "pass":
        return GuardOutcome(False, f"the latest burn-in run of {facts.serial} did not pass")
    return GuardOutcome(True)


def export_cleared(facts: GuardFacts) -> GuardOutcome:
    if facts.export_cleared is None:
        return GuardOutcome(False, f"{facts.serial} has no destination site to clear for export")
    if facts.export_cleared:
        return GuardOutcome(True)
    return GuardOutcome(False, f"{facts.serial} is not export-cleared: {facts.export_reason}")


def decommission_checklist_signed(facts: GuardFacts) -> GuardOutcome:
    if facts.decommission_checklist_signed is None:
        return GuardOutcome(False, f"{facts.serial} has no site to be decommissioned at")
    if facts.decommission_checklist_signed:
        return GuardOutcome(True)
    return GuardOutcome(False, f"{facts.serial} cannot leave decommissioning: {facts.decommission_reason}")


def _flag(name: str, area: str, what: str, failing: str) -> Callable[[GuardFacts], GuardOutcome]:
    def check(facts: GuardFacts) -> GuardOutcome:
        value = getattr(facts, name)
        if value is None:
            return _absent(area, facts.serial, what)
        return GuardOutcome(True) if value else GuardOutcome(False, failing.format(serial=facts.serial))

    check.__name__ = name
    return check


GUARDS: dict[str, Guard] = {
    g.name: g
    for g in (
        Guard("bom_complete", bom_complete, "factory", waivable=False),
        # Never waived: a module leaves the factory only with a passing run on record.
        Guard("burn_in_passed", burn_in_passed, "burn-in", waivable=False),
        Guard(
            "manifest_issued",
            _flag("manifest_issued", "shipments", "shipping manifest", "no manifest issued for {serial}"),
            "shipments",
            waivable=True,
        ),
        # Never waived: a legal control. Facts come from workflows/export-rules.toml and the destination site.
        Guard("export_cleared", export_cleared, "export control", waivable=False),
        Guard(
            "checklist_signed",
            _flag("checklist_signed", "commissioning", "signed checklist", "checklist of {serial} not signed"),
            "commissioning",
            waivable=True,
        ),
        Guard(
            "validation_passed",
            _flag("validation_passed", "validation", "passed validation", "validation of {serial} not passed"),
            "validation",
            waivable=True,
        ),
        # Data on the drives is a customer's: never waived.
        Guard("decommission_checklist_signed", decommission_checklist_signed, "decommissioning", waivable=False),
    )
}
