"""The lifecycle engine, pure: may this actor take this transition now, and what follows from it.

No I/O: the service passes in a snapshot of the module, the facts the guards need, and the site
codes that exist; `decide` returns the decision or raises a domain error naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from app.core.definitions import ANY_STATE, RETURN, Lifecycle, TransitionDef
from app.core.errors import Conflict, InvalidInput, PermissionDenied, RuleRefused
from app.core.lifecycle.guards import GUARDS, GuardFacts

OPTIONAL_PAYLOAD = ("note",)
MAX_TEXT = 2000


class TransitionNotAllowed(Conflict):
    slug = "transition-not-allowed"
    title = "Transition not allowed from the module's state"


class VersionConflict(Conflict):
    slug = "version-conflict"
    title = "The module changed since you read it"


class GuardFailed(RuleRefused):
    slug = "guard-failed"
    title = "A guard refused the transition"


class UnknownTransition(RuleRefused):
    slug = "unknown-transition"
    title = "Unknown transition"


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine needs to know about a module right now."""

    serial: str
    state: str
    version: int
    site: str | None = None
    hold_return_state: str | None = None
    hold_reason: str = ""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    transition: str
    from_state: str
    to_state: str
    site: str | None
    hold_return_state: str | None
    hold_reason: str
    event_payload: dict[str, Any]


def check_version(snapshot: Snapshot, if_match: str | None) -> None:
    """`If-Match: 3`, `"3"` or `W/"3"`: the version the client last saw must still be current."""
    if if_match is None or if_match.strip() == "*":
        return
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput(f"If-Match must be the module version (a number), got {if_match!r}")
    if int(text) != snapshot.version:
        raise VersionConflict(
            f"{snapshot.serial} is at version {snapshot.version}, not {text}; reload and try again",
            serial=snapshot.serial,
            version=snapshot.version,
        )


def _payload(t: TransitionDef, payload: Mapping[str, Any], known_sites: Iterable[str]) -> dict[str, Any]:
    allowed = set(t.payload) | set(OPTIONAL_PAYLOAD)
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise InvalidInput(
            f"transition {t.name!r} takes no payload field(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(allowed))}",
            transition=t.name,
        )
    clean: dict[str, Any] = {}
    for name in (*t.payload, *OPTIONAL_PAYLOAD):
        value = payload.get(name)
        if value is None and name in OPTIONAL_PAYLOAD:
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"transition {t.name!r} needs payload field {name!r} (text)", transition=t.name)
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"payload field {name!r} is longer than {MAX_TEXT} characters")
        clean[name] = value.strip()
    if "site" in clean:
        clean["site"] = clean["site"].upper()
        if clean["site"] not in set(known_sites):
            raise RuleRefused(f"known_site: no site {clean['site']!r}", rule="known_site")
    return clean


def decide(
    lifecycle: Lifecycle,
    snapshot: Snapshot,
    name: str,
    payload: Mapping[str, Any],
    *,
    roles: Iterable[str],
    facts: GuardFacts,
    known_sites: Iterable[str] = (),
    waivers: Mapping[str, str] | None = None,
) -> Decision:
    t = lifecycle.transition(name)
    if t is None:
        raise UnknownTransition(
            f"unknown transition {name!r}; transitions: {', '.join(x.name for x in lifecycle.transitions)}",
            transition=name,
        )
    roles = tuple(roles)
    if not set(roles) & set(t.roles):
        raise PermissionDenied(
            f"role(s) {', '.join(roles)} may not take {name!r}; allowed: {', '.join(t.roles)}",
            transition=name,
            allowed_roles=list(t.roles),
        )
    if snapshot.state not in lifecycle.sources(t):
        allowed = [x.name for x in lifecycle.available_from(snapshot.state)]
        raise TransitionNotAllowed(
            f"{snapshot.serial} is {snapshot.state}; {name!r} is not allowed from there "
            f"(allowed now: {', '.join(allowed) or 'none'})",
            serial=snapshot.serial,
            state=snapshot.state,
            transition=name,
        )
    clean = _payload(t, payload, known_sites)
    waived = _check_waivers(t, waivers or {}, roles)
    for guard_name in t.guards:
        if guard_name in waived:
            continue
        outcome = GUARDS[guard_name].check(facts)
        if not outcome.ok:
            raise GuardFailed(
                f"guard {guard_name} refused {name!r}: {outcome.reason}",
                guard=guard_name,
                transition=name,
                serial=snapshot.serial,
            )
    if t.to == RETURN:
        to_state = snapshot.hold_return_state or lifecycle.initial
        hold_return, hold_reason = None, ""
    elif ANY_STATE in t.from_:
        to_state = t.to
        hold_return, hold_reason = snapshot.state, clean.get("reason", "")
    else:
        to_state = t.to
        hold_return, hold_reason = snapshot.hold_return_state, snapshot.hold_reason
    event_payload: dict[str, Any] = {"transition": name, "from": snapshot.state, "to": to_state, **clean}
    if t.to == RETURN:
        event_payload["release"] = True
    elif ANY_STATE in t.from_:
        event_payload["hold"] = True
    if waived:
        event_payload["waived"] = dict(waived)
    return Decision(
        transition=name,
        from_state=snapshot.state,
        to_state=to_state,
        site=clean.get("site", snapshot.site),
        hold_return_state=hold_return,
        hold_reason=hold_reason,
        event_payload=event_payload,
    )


def _check_waivers(t: TransitionDef, waivers: Mapping[str, str], roles: tuple[str, ...]) -> dict[str, str]:
    if not waivers:
        return {}
    if "admin" not in roles:
        raise PermissionDenied("only an admin may waive a guard")
    for guard_name, reason in waivers.items():
        if guard_name not in t.guards:
            raise InvalidInput(f"{guard_name!r} is not a guard of {t.name!r}")
        if not GUARDS[guard_name].waivable:
            raise RuleRefused(f"guard {guard_name} cannot be waived", guard=guard_name)
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            raise InvalidInput(f"waiving {guard_name} needs a reason of at least 10 characters")
    return {k: v.strip() for k, v in waivers.items()}


class Projection(msgspec.Struct, kw_only=True):
    state: str
    version: int
    site: str | None = None
    hold_return_state: str | None = None
    hold_reason: str = ""


def replay(events: Iterable[tuple[str, Mapping[str, Any]]]) -> Projection | None:
    """The module's current state, rebuilt from its ledger alone (type, payload), oldest first."""
    projection: Projection | None = None
    for version, (event_type, payload) in enumerate(events, start=1):
        if event_type in ("module.registered", "module.imported"):
            projection = Projection(
                state=payload["state"],
                version=version,
                site=payload.get("site"),
                hold_return_state=payload.get("hold_return_state"),
                hold_reason=payload.get("hold_reason", ""),
            )
            continue
        if projection is None:
            raise ValueError("a module's ledger must open with module.registered or module.imported")
        projection.version = version
        if event_type.startswith("lifecycle."):
            projection.state = payload["to"]
            if "site" in payload:
                projection.site = payload["site"]
            if payload.get("hold"):
                projection.hold_return_state = payload["from"]
                projection.hold_reason = payload.get("reason", "")
            elif payload.get("release"):
                projection.hold_return_state = None
                projection.hold_reason = ""
    return projection
