"""The pure lifecycle engine: hypothesis walks the definition at random; the projection always
equals a replay of the events, and the hash chain always verifies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.auth.domain import ALL_ROLES
from app.core.definitions import load_lifecycle
from app.core.errors import Conflict, DomainError, PermissionDenied
from app.core.ledger.domain import GENESIS, EventRecord, chain_hash, verify_chain
from app.core.lifecycle import domain
from app.core.lifecycle.guards import GUARDS, GuardFacts

LIFECYCLE = load_lifecycle()
NAMES = [t.name for t in LIFECYCLE.transitions]
SITES = ("NONVK1", "FIKAJ1")
ALL_CLEAR = GuardFacts(
    serial="AFM-26-000001",
    bom={"gpu": 8},
    installed={"gpu": 8},
    burn_in_verdict="pass",
    manifest_issued=True,
    export_cleared=True,
    checklist_signed=True,
    validation_passed=True,
    decommission_checklist_signed=True,
)


def _payload(name: str, site_index: int) -> dict[str, str]:
    t = LIFECYCLE.transition(name)
    assert t is not None
    values = {"reason": "Inspection finding", "site": SITES[site_index % 2]}
    return {f: values[f] for f in t.payload}


def _start() -> tuple[domain.Snapshot, list[tuple[str, dict[str, Any]]]]:
    snapshot = domain.Snapshot(serial="AFM-26-000001", state=LIFECYCLE.initial, version=1)
    return snapshot, [("module.registered", {"state": LIFECYCLE.initial, "site": None})]


def _apply(snapshot: domain.Snapshot, decision: domain.Decision) -> domain.Snapshot:
    return msgspec.structs.replace(
        snapshot,
        state=decision.to_state,
        version=snapshot.version + 1,
        site=decision.site,
        hold_return_state=decision.hold_return_state,
        hold_reason=decision.hold_reason,
    )


steps = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(ALL_ROLES), st.integers(0, 1)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_random_walks_keep_projection_and_chain_sound(steps: list[tuple[str, str, int]]) -> None:
    snapshot, events = _start()
    for name, role, site_index in steps:
        try:
            decision = domain.decide(
                LIFECYCLE,
                snapshot,
                name,
                _payload(name, site_index),
                roles=(role,),
                facts=ALL_CLEAR,
                known_sites=SITES,
            )
        except PermissionDenied:
            t = LIFECYCLE.transition(name)
            assert t is not None
            assert role not in t.roles
            continue
        except Conflict:
            t = LIFECYCLE.transition(name)
            assert t is not None
            assert snapshot.state not in LIFECYCLE.sources(t)
            continue
        assert snapshot.state in LIFECYCLE.sources(LIFECYCLE.transition(name))  # type: ignore[arg-type]
        snapshot = _apply(snapshot, decision)
        events.append((f"lifecycle.{name}", decision.event_payload))
        assert snapshot.state in LIFECYCLE.state_ids
        projection = domain.replay(events)
        assert projection is not None
        assert (projection.state, projection.version, projection.site, projection.hold_return_state) == (
            snapshot.state,
            snapshot.version,
            snapshot.site,
            snapshot.hold_return_state,
        )
    # The chain over those events verifies, and any edit breaks it.
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    links, prev = [], GENESIS
    for seq, (event_type, payload) in enumerate(events, start=1):
        record = EventRecord(
            module=snapshot.serial,
            seq=seq,
            type=event_type,
            actor="a",
            role="admin",
            at=at + dt.timedelta(minutes=seq),
            payload=payload,
        )
        digest = chain_hash(prev, record)
        links.append((record, prev, digest))
        prev = digest
    assert verify_chain(links) == (len(events), None)


def test_terminal_state_allows_nothing() -> None:
    snapshot = domain.Snapshot(serial="S", state="retired", version=9, site="NONVK1")
    for name in NAMES:
        with pytest.raises(DomainError):
            domain.decide(
                LIFECYCLE, snapshot, name, _payload(name, 0), roles=ALL_ROLES, facts=ALL_CLEAR, known_sites=SITES
            )


def test_absent_areas_refuse_and_say_so() -> None:
    facts = GuardFacts(serial="AFM-26-000009", bom={"gpu": 8}, installed={"gpu": 8})
    for name, guard in GUARDS.items():
        outcome = guard.check(facts)
        if name == "bom_complete":
            assert outcome.ok
        elif name == "burn_in_passed":
            assert not outcome.ok
            assert "no finished burn-in run" in outcome.reason
        elif name == "export_cleared":
            assert not outcome.ok
            assert "no destination site" in outcome.reason
        elif name == "decommission_checklist_signed":
            assert not outcome.ok
            assert "no site to be decommissioned at" in outcome.reason
        else:
            assert not outcome.ok
            assert "not available yet" in outcome.reason


def test_bom_guard_names_what_is_missing() -> None:
    facts = GuardFacts(serial="AFM-26-000009", bom={"gpu": 8, "nic": 4}, installed={"gpu": 8, "nic": 1})
    outcome = GUARDS["bom_complete"].check(facts)
    assert not outcome.ok
    assert outcome.reason == "AFM-26-000009 is missing parts: nic 1/4"


def test_release_returns_to_the_held_state() -> None:
    snapshot = domain.Snapshot(serial="S", state="burn_in", version=4)
    held = domain.decide(LIFECYCLE, snapshot, "hold", {"reason": "smoke"}, roles=("floor",), facts=ALL_CLEAR)
    assert (held.to_state, held.hold_return_state, held.hold_reason) == ("on_hold", "burn_in", "smoke")
    snapshot = _apply(snapshot, held)
    released = domain.decide(LIFECYCLE, snapshot, "release", {}, roles=("admin",), facts=ALL_CLEAR)
    assert (released.to_state, released.hold_return_state) == ("burn_in", None)


def test_if_match_forms() -> None:
    snapshot = domain.Snapshot(serial="S", state="planned", version=3)
    for ok in (None, "*", "3", '"3"', 'W/"3"'):
        domain.check_version(snapshot, ok)
    with pytest.raises(domain.VersionConflict):
        domain.check_version(snapshot, "2")


def test_export_clearance_says_which_rule() -> None:
    guard = GUARDS["export_cleared"]
    assert guard.check(GuardFacts(serial="S-1", export_cleared=True)).ok
    refused = guard.check(GuardFacts(serial="S-1", export_cleared=False, export_reason="licence required (D:4)"))
    assert not refused.ok and "licence required (D:4)" in refused.reason
    assert not guard.waivable
