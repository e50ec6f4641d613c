"""Scale-out on PostgreSQL: `afm serve` with several workers (what `AFM_WORKERS=N make run` starts).

1. Nothing one worker needs is only in another's memory. Checked from outside over fresh connections
   (each new connection may land on any worker): an Idempotency-Key replayed on many connections gets
   one answer; sign-in failures spread over connections are throttled as one count; and /metrics counts
   the requests of every worker (the prometheus_client multiprocess files, one per worker, summed).
2. Load: the same closed loop of scanners for a fixed time at 1, 2 and 4 workers; scans/s, the ratio to
   one worker, and errors (none allowed). The load generator shares the machine's cores with the
   server and PostgreSQL, so on a 2-core machine more workers than cores cannot scale: the table says
   what was measured.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.reliability.common import SCAN_STATION, Context, Row, Server, Target, request_id, say, tag_codes, token

PART = "scale"
STATE_WORKERS = 2
PROBES = 40  # fresh connections per state check
LOGIN_LIMIT = 3  # sign-in failures allowed per client in the window, for the throttle check


@dataclass
class Load:
    workers: int
    load_before: float  # the machine's 1-minute load average as the run began: others share these cores
    scans: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.scans / self.seconds if self.seconds else 0.0


async def _closed_loop(base: str, headers: dict[str, str], codes: list[str], clients: int, seconds: float) -> Load:
    """`clients` scanners, each on its own keep-alive connection, each sending its next scan as soon as
    the last one is answered; counted only inside the measured window, after a warm-up."""
    scans = errors = 0
    counting = False
    stop_at = 0.0
    limits = httpx.Limits(max_connections=1)
    pool = [httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) for _ in range(clients)]

    async def scanner(k: int, client: httpx.AsyncClient) -> None:
        nonlocal scans, errors
        i = k
        while not stop_at or time.monotonic() < stop_at:
            i += clients
            try:
                response = await client.post(
                    "/api/v1/scans", json={"code": codes[i % len(codes)], "station": SCAN_STATION}
                )
                ok = response.status_code == 201
            except httpx.HTTPError:
                ok = False
            if counting:
                scans += ok
                errors += not ok

    load_before = os.getloadavg()[0]
    try:
        await asyncio.gather(*(c.get("/healthz") for c in pool))
        tasks = [asyncio.create_task(scanner(k, c)) for k, c in enumerate(pool)]
        await asyncio.sleep(1.5)  # warm-up: connections, pools, caches of every worker
        counting, started = True, time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return Load(workers=0, load_before=load_before, scans=scans, errors=errors, seconds=elapsed)


def _readyz_by_worker(metrics_dir: Path) -> dict[str, float]:
    """GET /readyz answered, per worker process, from each worker's own multiprocess file."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts: dict[str, float] = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == "afm_requests_total" and sample.labels.get("path") == "/readyz":
                    total += sample.value
        counts[path.stem.removeprefix("counter_")] = total
    return counts


def _metrics_total(base: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "afm_requests_total" and sample.labels.get("path") == "/readyz":
                total += sample.value
    return total


def _state_checks(server: Server, floor: dict[str, str], codes: list[str]) -> list[Row]:
    """Over fresh connections, so that requests land on different workers."""
    rows: list[Row] = []
    db = "postgresql"
    # Metrics: every worker's requests counted, summed in one /metrics answer.
    for _ in range(PROBES):
        with httpx.Client(timeout=10) as fresh:
            fresh.get(f"{server.base}/readyz").raise_for_status()
    per_worker = _readyz_by_worker(server.var_dir / "prometheus")
    served = sum(1 for v in per_worker.values() if v > 0)
    reported = _metrics_total(server.base)
    rows.append(
        Row(
            PART,
            db,
            f"/metrics sums workers ({PROBES} requests on fresh connections)",
            f"{reported:.0f} reported; served by {served} of {server.workers} workers "
            f"({', '.join(f'{v:.0f}' for v in per_worker.values())})",
            f"{PROBES}, by >1 worker",
            reported == PROBES and served > 1,
        )
    )
    # Idempotency: the key's first answer is in the database, so every worker replays it.
    key = request_id()
    body = {"code": codes[0], "station": SCAN_STATION}
    seen = set()
    for _ in range(PROBES // 2):
        with httpx.Client(base_url=server.base, headers=floor, timeout=10) as fresh:
            response = fresh.post("/api/v1/scans", json=body, headers={"Idempotency-Key": key})
            seen.add((response.status_code, str(response.json().get("event"))))
    rows.append(
        Row(
            PART,
            db,
            f"one Idempotency-Key on {PROBES // 2} fresh connections",
            f"{len(seen)} distinct answer(s): {sorted(seen)[0][0] if seen else '-'}",
            "1 answer, 201",
            len(seen) == 1 and next(iter(seen))[0] == 201,
        )
    )
    # Sign-in throttle: failures counted in the database, not per worker.
    statuses = []
    for _ in range(LOGIN_LIMIT * STATE_WORKERS + 1):
        with httpx.Client(timeout=10) as fresh:
            statuses.append(
                fresh.post(
                    f"{server.base}/api/v1/auth/token", json={"username": "auditor", "password": "wrong-password"}
                ).status_code
            )
    first_429 = statuses.index(429) + 1 if 429 in statuses else 0
    rows.append(
        Row(
            PART,
            db,
            f"sign-in throttle on fresh connections (limit {LOGIN_LIMIT} failures)",
            f"429 from attempt {first_429}" if first_429 else f"no 429 in {len(statuses)} attempts",
            f"429 at attempt {LOGIN_LIMIT + 1}",
            first_429 == LOGIN_LIMIT + 1,
        )
    )
    return rows


def run_target(ctx: Context, target: Target) -> list[Row]:
    url = target.fresh("scale")
    var = ctx.work / "scale"
    counts = [int(w) for w in str(ctx.options["scale_workers"]).split(",") if w.strip()]
    seconds, clients = float(ctx.options["seconds"]), int(ctx.options["clients"])
    env = {"AFM_LOGIN_MAX_FAILURES": str(LOGIN_LIMIT)}
    rows: list[Row] = []
    loads: list[Load] = []
    floor: dict[str, str] = {}
    codes: list[str] = []
    for workers in counts:
        with Server(url, var, workers=workers, env=env) as server:
            if not floor:
                floor = token(server.base, "floor")
                codes = tag_codes(server.base, floor)
            say(f"  {workers} worker(s): {clients} clients for {seconds:g} s…")
            load = asyncio.run(_closed_loop(server.base, floor, codes, clients, seconds))
            load.workers = workers
            loads.append(load)
            say(f"  {workers} worker(s): {load.rate:,.0f} scans/s, {load.errors} errors")
    base_rate = loads[0].rate if loads else 0.0
    for load in loads:
        ratio = load.rate / base_rate if base_rate else 0.0
        rows.append(
            Row(
                PART,
                "postgresql",
                f"scans/s at {load.workers} worker(s), {clients} clients, {seconds:g} s (cores: {os.cpu_count()})",
                f"{load.rate:,.0f}/s ({load.scans:,} scans), x{ratio:.2f} vs {counts[0]}, {load.errors} errors"
                f" (load avg {load.load_before:.1f})",
                "0 errors",
                load.errors == 0 and load.scans > 0,
            )
        )
    say(f"  state checks on {STATE_WORKERS} workers…")
    with Server(url, var, workers=STATE_WORKERS, env=env) as server:
        rows += _state_checks(server, floor, codes)
    return rows


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for target in ctx.each_target(PART):
        if isinstance(target, Row):
            if target.database == "postgresql":
                rows.append(target)
            continue
        if target.name != "postgresql":
            continue  # scale-out is a PostgreSQL setup; SQLite has one writer whatever the workers
        say(f"scale: PostgreSQL at {ctx.options['scale_workers']} workers…")
        rows += run_target(ctx, target)
    if not any(t.name == "postgresql" for t in ctx.targets):
        rows.append(Row(PART, "postgresql", "skipped", "PostgreSQL not among --databases"))
    return rows
