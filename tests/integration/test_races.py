"""Conflicting transitions through the HTTP API, fired at once at one fresh module: exactly one wins.

The fast, in-process form of `make reliability`'s races part (tests/reliability/races.py), on SQLite and
PostgreSQL: the same conflicting requests, a few rounds, the ledger verified at the end.
"""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem, bearer
from tests.reliability.races import racer_requests

ROUNDS = 10
RACERS = 6


async def test_conflicting_transitions_exactly_one_wins(client: AsyncTestClient[Litestar]) -> None:
    floor = await bearer(client, "floor")
    spec = (await client.get("/api/v1/specs", headers=floor)).json()["items"][0]["code"]
    for _ in range(ROUNDS):
        created = await client.post("/api/v1/modules", json={"spec": spec}, headers=floor)
        assert created.status_code == 201, created.text
        serial, version = created.json()["serial"], created.json()["version"]
        answers = await asyncio.gather(
            *(
                client.post(f"/api/v1/modules/{serial}/transitions", json=body, headers={**floor, **extra})
                for body, extra in racer_requests(RACERS, version)
            )
        )
        winners = [r for r in answers if r.status_code == 200]
        assert len(winners) == 1, [r.status_code for r in answers]
        for loser in answers:
            if loser.status_code != 200:
                assert_problem(loser, 409)
        module = (await client.get(f"/api/v1/modules/{serial}", headers=floor)).json()
        assert module["version"] == version + 1
        assert module["state"] == winners[0].json()["state"]
    auditor = await bearer(client, "auditor")
    verified = (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert verified["ok"], verified
