"""Scans per second through the real server (granian, one worker, SQLite) against a raw one-row insert
per request through the same server, auth and write unit of work; and scan latency with 64 scanners.

Two measurements, both over HTTP on 127.0.0.1 with keep-alive connections:
- throughput: a closed loop of 16 clients sending as fast as answers come, for each endpoint in turn;
- latency: 64 clients, each a handheld scanner scanning every 2 s on average (an open loop, exponential
  gaps, as on a busy floor), for 20 s; p50/p99 of the answers.
A closed loop of 64 clients would measure queueing (Little's law: latency = 64 / throughput), not the
service, so the latency test offers a realistic load instead and reports what that load got.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from litestar import Litestar, post
from litestar.di import NamedDependency
from sqlalchemy import text

from app.core.auth.guards import allow
from app.core.db import Database
from tests.benchmarks.common import Result

THROUGHPUT_CLIENTS = 16
SCANNERS = 64
SCANS_PER_SECOND_EACH = 0.5
LATENCY_SECONDS = 20.0


@post("/bench/insert", opt=allow("admin", "floor"), status_code=201)
async def raw_insert(db: NamedDependency[Database]) -> dict[str, bool]:
    """The baseline: one row inserted in one write transaction per request."""
    async with db.write() as uow:
        await uow.session.execute(text("INSERT INTO bench_rows (note) VALUES ('x')"))
    return {"ok": True}


def make_app() -> Litestar:
    """The service as `afm serve` runs it, plus the baseline route (granian factory)."""
    from app.asgi import create_app

    app = create_app()
    app.register(raw_insert)
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"bench server exited {proc.returncode}")
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("bench server not healthy after 60 s")


async def _closed_loop(
    base: str, headers: dict[str, str], bodies: list[dict[str, str]] | None, path: str, n: int
) -> float:
    import httpx

    counter = iter(range(n))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in counter:
            body = bodies[i % len(bodies)] if bodies else None
            response = await client.post(path, json=body, headers=headers)
            assert response.status_code == 201, response.text

    limits = httpx.Limits(max_connections=THROUGHPUT_CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(THROUGHPUT_CLIENTS)))
        return time.perf_counter() - start


async def _scanners(base: str, headers: dict[str, str], codes: list[str]) -> tuple[list[float], int]:
    """64 scanners, each its own connection, each scanning every 2 s on average; latencies in seconds.

    The clients are made and connected before the clock starts: making an httpx client costs tens of
    milliseconds of CPU (its TLS context), which would stall the event loop and inflate other answers."""
    import httpx

    latencies: list[float] = []
    failures = 0
    rng = random.Random(7)
    clients = [httpx.AsyncClient(base_url=base, timeout=30) for _ in range(SCANNERS)]
    try:
        await asyncio.gather(*(c.get("/healthz") for c in clients))  # open each scanner's connection
        end = time.monotonic() + LATENCY_SECONDS

        async def scanner(k: int, client: httpx.AsyncClient) -> None:
            nonlocal failures
            await asyncio.sleep(rng.random() / SCANS_PER_SECOND_EACH)  # scanners do not start in step
            while time.monotonic() < end:
                started = time.perf_counter()
                body = {"code": codes[(k + len(latencies)) % len(codes)], "station": "TWKHH1-INS-01"}
                response = await client.post("/api/v1/scans", json=body, headers=headers)
                elapsed = time.perf_counter() - started
                latencies.append(elapsed)
                failures += response.status_code != 201
                pause = rng.expovariate(SCANS_PER_SECOND_EACH) - elapsed
                if pause > 0:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(scanner(k, c) for k, c in enumerate(clients)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return latencies, failures


def run(db_url: str, var_dir: Path, requests: int) -> list[Result]:
    import logging

    import httpx

    # The load generator must not log each request (an in-process app earlier in the run may have
    # set the root logger to INFO): that would be the generator's cost, not the service's.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AFM_DATABASE_URL": db_url,
        "AFM_VAR_DIR": str(var_dir),
        "AFM_PORT": str(port),
        "AFM_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "tests.benchmarks.bench_scans:make_app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def main() -> tuple[float, float, list[float], int]:
        await _wait_healthy(base, server)
        async with httpx.AsyncClient(base_url=base) as client:
            token = (await client.post("/api/v1/auth/token", json={"username": "floor", "password": "demo"})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            modules = (await client.get("/api/v1/modules?limit=200", headers=headers)).json()["items"]
            codes = [
                (await client.get(f"/api/v1/modules/{m['serial']}/tag?format=uri", headers=headers)).text
                for m in modules
            ]
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, note TEXT)"))
        await engine.dispose()
        bodies = [{"code": c, "station": "TWKHH1-INS-01"} for c in codes]
        await _closed_loop(base, headers, None, "/bench/insert", 100)  # warm up both paths
        await _closed_loop(base, headers, bodies, "/api/v1/scans", 100)
        insert_s = await _closed_loop(base, headers, None, "/bench/insert", requests)
        scan_s = await _closed_loop(base, headers, bodies, "/api/v1/scans", requests)
        latencies, failures = await _scanners(base, headers, codes)
        # Unloaded latency (one client, one request at a time): the floor under the latency test.
        async with httpx.AsyncClient(base_url=base) as client:
            for path, body in (("/bench/insert", None), ("/api/v1/scans", bodies[0])):
                times = []
                for _ in range(200):
                    t0 = time.perf_counter()
                    await client.post(path, json=body, headers=headers)
                    times.append(time.perf_counter() - t0)
                print(f"unloaded {path}: median {statistics.median(times) * 1000:.2f} ms", file=sys.stderr)
        return insert_s, scan_s, latencies, failures

    try:
        insert_s, scan_s, latencies, failures = asyncio.run(main())
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    p50, p99 = _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000
    offered = SCANNERS * SCANS_PER_SECOND_EACH
    print(
        f"scans: {requests / scan_s:,.0f}/s vs raw insert {requests / insert_s:,.0f}/s; "
        f"{SCANNERS} scanners at {offered:.0f} scans/s offered: {len(latencies):,} scans, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {failures} failed",
        file=sys.stderr,
    )
    return [
        Result(
            name=f"scans over HTTP (granian, 1 worker, SQLite), {requests:,} requests, {THROUGHPUT_CLIENTS} clients",
            measured="scans/s",
            value=requests / scan_s,
            baseline_name="one-row insert per request",
            baseline=requests / insert_s,
            unit="req/s",
            goal=0.5,
        ),
        Result(
            name=f"scan p99 latency, {SCANNERS} scanners x {SCANS_PER_SECOND_EACH:g}/s, {len(latencies):,} scans"
            f" (p50 {p50:.1f} ms, {failures} failed)",
            measured="ms",
            value=1 / max(p99, 1e-9),  # the table compares rates: 1/p99 against 1/20 ms
            baseline_name="goal",
            baseline=1 / 20.0,
            unit="1/ms",
            goal=1.0,
            value_text=f"p99 {p99:.1f} ms",
            baseline_text="20 ms",
        ),
    ]
