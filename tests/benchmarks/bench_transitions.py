"""Transitions per second through the HTTP stack on SQLite (one worker, in process) against a raw
one-row insert per request through the same stack, auth and write unit of work."""

from __future__ import annotations

import asyncio
import time

from litestar import post
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from app.asgi import create_app
from app.core.auth.guards import allow
from app.core.db import Database
from tests.benchmarks.common import Result


@post("/bench/insert", opt=allow("admin"), status_code=201)
async def raw_insert(db: NamedDependency[Database]) -> dict[str, bool]:
    """The baseline: one row inserted in one write transaction per request."""
    async with db.write() as uow:
        await uow.session.execute(text("INSERT INTO bench_rows (note) VALUES ('x')"))
    return {"ok": True}


def run(settings: object, requests: int) -> Result:
    app = create_app(settings)  # type: ignore[arg-type]
    app.register(raw_insert)

    async def main() -> tuple[float, float]:
        async with AsyncTestClient(app=app) as client:
            async with app.state.db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, note TEXT)"))
            token = (await client.post("/api/v1/auth/token", json={"username": "admin", "password": "demo"})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            page = (await client.get("/api/v1/modules?state=in_service&limit=100", headers=headers)).json()
            serials = [m["serial"] for m in page["items"]]
            for _ in range(20):  # warm up both paths
                await client.post("/bench/insert", headers=headers)

            start = time.perf_counter()
            for _ in range(requests):
                response = await client.post("/bench/insert", headers=headers)
                assert response.status_code == 201
            insert_s = time.perf_counter() - start

            start = time.perf_counter()
            for i in range(requests):
                serial = serials[(i // 2) % len(serials)]
                body = (
                    {"transition": "hold", "payload": {"reason": "bench"}} if i % 2 == 0 else {"transition": "release"}
                )
                # hold, then release, on each module in turn: every request is a valid transition
                response = await client.post(f"/api/v1/modules/{serial}/transitions", json=body, headers=headers)
                assert response.status_code == 200, response.text
            transition_s = time.perf_counter() - start
            return insert_s, transition_s

    insert_s, transition_s = asyncio.run(main())
    return Result(
        name=f"transitions over HTTP, SQLite, 1 worker, {requests:,} requests",
        measured="requests/s",
        value=requests / transition_s,
        baseline_name="one-row insert per request",
        baseline=requests / insert_s,
        unit="req/s",
        goal=0.5,
    )
