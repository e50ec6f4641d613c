"""Webhook delivery latency: from a transition's commit to a loopback receiver's 2xx, through the
outbox and the dispatcher (in-process, SQLite, default settings: 100 ms poll), while transitions keep
coming. Reported as p50/p99 against a budget of 1 s (p50) and 2 s (p99): ratio = budget / measured."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time
from pathlib import Path

from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.core.config import load_settings
from tests.benchmarks.common import Result, timed_result
from tests.integration.webhook_receiver import Receiver

EVENTS = 400


async def _measure(url: str, var: Path) -> list[float]:
    settings = load_settings(
        environ={
            "AFM_DATABASE_URL": url,
            "AFM_VAR_DIR": str(var),
            "AFM_LOG_LEVEL": "warning",
        },
        config_file=var / "none.toml",
    )
    with Receiver() as receiver:
        app = create_app(settings)
        async with AsyncTestClient(app=app) as client:
            token = (await client.post("/api/v1/auth/token", json={"username": "admin", "password": "demo"})).json()
            admin = {"Authorization": f"Bearer {token['access_token']}"}
            body = {"name": "bench", "url": receiver.url, "event_types": ["lifecycle.*"], "allow_private": True}
            assert (await client.post("/api/v1/webhooks", json=body, headers=admin)).status_code == 201
            modules = (await client.get("/api/v1/modules?state=in_service&limit=20", headers=admin)).json()["items"]
            serials = [m["serial"] for m in modules]
            arrivals: dict[str, float] = {}
            committed: dict[str, float] = {}
            for i in range(EVENTS // 2):
                serial = serials[i % len(serials)]
                for transition, payload in (("hold", {"reason": "Benchmark hold of the latency run"}), ("release", {})):
                    response = await client.post(
                        f"/api/v1/modules/{serial}/transitions",
                        json={"transition": transition, "payload": payload},
                        headers=admin,
                    )
                    committed[f"{serial}:{response.json()['version']}"] = time.time()
                await asyncio.sleep(0.005)  # a steady stream, not one burst
            deadline = time.monotonic() + 60
            while len(arrivals) < len(committed) and time.monotonic() < deadline:
                with receiver.lock:
                    for headers, _ in receiver.requests:
                        arrivals.setdefault(headers["AFM-Event-Id"], float(headers["X-Arrived"]))
                await asyncio.sleep(0.05)
    return [arrivals[k] - committed[k] for k in committed if k in arrivals]


def run(url: str, var: Path) -> list[Result]:
    latencies = asyncio.run(_measure(url, var))
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M")
    return [
        timed_result(f"webhook delivery p50 ({len(latencies)} events, {stamp})", max(p50, 1e-6), "budget", 1.0, "1/s"),
        timed_result("webhook delivery p99", max(p99, 1e-6), "budget", 2.0, "1/s"),
    ]
