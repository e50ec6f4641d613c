"""The lifecycle against real databases: racing writers and random walks through the service."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.auth.domain import Principal
from app.core.db import Database
from app.core.definitions import load_lifecycle
from app.core.errors import Conflict, DomainError
from app.core.ledger import service as ledger
from app.core.lifecycle import domain
from app.core.lifecycle import service as lifecycle_service
from app.core.lifecycle.schemas import TransitionRequest
from app.factory import service

LIFECYCLE = load_lifecycle()
ADMIN = Principal(user_id=1, username="admin", roles=("admin",), via="api")
ROUNDS = 20
RACERS = 6


async def _serial_in(db: Database, state: str) -> str:
    async with db.read() as uow:
        return (await service.list_modules(uow, LIFECYCLE, state=state, limit=1)).items[0].serial


async def _attempt(db: Database, serial: str, request: TransitionRequest, if_match: str | None) -> str:
    try:
        async with db.write() as uow:
            await lifecycle_service.transition(uow, LIFECYCLE, serial, request, ADMIN, if_match=if_match)
        return "won"
    except Conflict:
        return "409"


async def test_conflicting_writers_exactly_one_wins(db: Database) -> None:
    """Each round, racers fire conflicting transitions at one module at once: one wins, the rest
    get 409 (the state moved on, or their If-Match version is stale), and the chain stays intact."""
    serial = await _serial_in(db, "in_service")
    for round_no in range(ROUNDS):
        async with db.read() as uow:
            version = (await service.get_module(uow, LIFECYCLE, serial)).version
        racers = [
            _attempt(
                db,
                serial,
                TransitionRequest(transition="hold", payload={"reason": f"round {round_no}, racer {i}"}),
                str(version) if i % 2 else None,
            )
            for i in range(RACERS)
        ]
        outcomes = await asyncio.gather(*racers)
        assert outcomes.count("won") == 1, outcomes
        assert outcomes.count("409") == RACERS - 1, outcomes
        async with db.write() as uow:
            module = await lifecycle_service.transition(uow, LIFECYCLE, serial, TransitionRequest("release"), ADMIN)
        assert module.state == "in_service"
        assert module.version == version + 2
    async with db.read() as uow:
        result = await ledger.verify(uow)
    assert result.ok, result


async def test_same_idempotency_key_racing_appends_once(db: Database) -> None:
    serial = await _serial_in(db, "validating")
    request = TransitionRequest(transition="hold", payload={"reason": "duplicate scan"})

    async def send() -> int:
        async with db.write() as uow:
            module = await lifecycle_service.transition(
                uow, LIFECYCLE, serial, request, ADMIN, idempotency_key="scanner-9-000123"
            )
        return module.version

    versions = await asyncio.gather(*(send() for _ in range(5)))
    assert len(set(versions)) == 1
    async with db.read() as uow:
        events = await ledger.events_of(uow, (await service.load_module(uow, serial)).id)
    assert [e.type for e in events].count("lifecycle.hold") == 1


@pytest.fixture(scope="module")
def walk_template(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: dict[str, Path]) -> Path:
    return sqlite_templates["demo"]


walks = st.lists(
    st.tuples(
        st.sampled_from([t.name for t in LIFECYCLE.transitions]),
        st.booleans(),  # with admin waivers for the guards whose areas are absent
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(["planned", "assembling", "burn_in", "in_transit", "in_service", "on_hold"]), steps=walks)
def test_random_walks_through_the_service(
    walk_template: Path, tmp_path: Path, start: str, steps: list[tuple[str, bool]]
) -> None:
    """On a real SQLite file: whatever is tried, the stored projection equals a replay of the
    module's events, and the whole ledger verifies."""
    copy = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copy(walk_template, copy)

    async def walk() -> None:
        db = Database(f"sqlite+aiosqlite:///{copy}", pool_size=2)
        try:
            serial = await _serial_in(db, start)
            for name, waive in steps:
                t = LIFECYCLE.transition(name)
                assert t is not None
                payload = {f: {"reason": "walk", "site": "NONVK1"}[f] for f in t.payload}
                waivers = {g: "random walk waiver reason" for g in t.guards if waive and g != "bom_complete"}
                try:
                    async with db.write() as uow:
                        await lifecycle_service.transition(
                            uow, LIFECYCLE, serial, TransitionRequest(name, payload, waivers), ADMIN
                        )
                except DomainError:
                    pass
            async with db.read() as uow:
                module = await service.load_module(uow, serial)
                events = await ledger.events_of(uow, module.id)
                result = await ledger.verify(uow)
            projection = domain.replay((e.type, e.payload) for e in events)
            assert projection is not None
            assert (projection.state, projection.version, projection.hold_return_state) == (
                module.state,
                module.version,
                module.hold_return_state,
            )
            assert projection.site == (module.site.code if module.site else None)
            assert result.ok, result
        finally:
            await db.dispose()

    asyncio.run(walk())
