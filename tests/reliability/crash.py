"""Crash safety: a storm of scans and transitions, the server SIGKILLed at a random moment, restarted.

Every write a client saw acknowledged (2xx) names what it wrote: a scan's answer names its event
(module, seq), a transition's answer the module's new version (its event's seq). Each request carries
its own X-Request-ID, which the ledger stores in the event, so after each kill the ledger is checked
exactly: every acknowledged write is there, once, as that event; `afm audit verify` passes (no torn
chain, no event without its module head or the other way round); and replays of acknowledged
Idempotency-Keys after the restart answer what they answered before, appending nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.reliability.common import (
    SCAN_STATION,
    Context,
    Row,
    Server,
    Target,
    afm,
    new_module,
    request_id,
    say,
    spec_code,
    tag_codes,
    token,
)

PART = "crash"
SCANNERS = 6
MOVERS = 4  # clients moving their own module on hold / release with If-Match
REPLAYS = 8  # acknowledged scans replayed after each restart


@dataclass
class Ack:
    """A write the client saw acknowledged, and the event it must have left in the ledger."""

    request_id: str
    serial: str
    seq: int
    type: str
    key: str
    body: dict[str, object] = field(default_factory=dict)


@dataclass
class Storm:
    acks: list[Ack] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)  # sent, no answer before the kill
    refused: int = 0  # 4xx answers (none expected, but not a write)
    errors: int = 0  # 5xx answers


@dataclass
class Totals:
    cycles: int = 0
    acknowledged: int = 0
    found: int = 0
    lost: int = 0
    duplicated: int = 0
    in_doubt: int = 0
    in_doubt_committed: int = 0
    verify_passed: int = 0
    replays: int = 0
    replays_same: int = 0
    server_errors: int = 0
    notes: list[str] = field(default_factory=list)


async def _scanner(client: httpx.AsyncClient, codes: list[str], rng: random.Random, storm: Storm) -> None:
    while True:
        rid, key = request_id(), request_id()
        body = {"code": rng.choice(codes), "station": SCAN_STATION}
        headers = {"Idempotency-Key": key, "X-Request-ID": rid}
        try:
            response = await client.post("/api/v1/scans", json=body, headers=headers)
        except httpx.ConnectError:  # never reached the server: not in doubt
            await asyncio.sleep(0.02)
            continue
        except httpx.TransportError:
            storm.in_doubt.append(rid)
            await asyncio.sleep(0.02)
            continue
        if response.status_code == 201:
            event = response.json()["event"]
            storm.acks.append(Ack(rid, event["module"], int(event["seq"]), "scan.recorded", key, body))
        elif response.status_code >= 500:
            storm.errors += 1
        else:
            storm.refused += 1


async def _mover(client: httpx.AsyncClient, serial: str, storm: Storm) -> None:
    """Hold and release one module, each with If-Match of the version last seen."""
    known: dict[str, object] | None = None
    while True:
        try:
            if known is None:  # after a restart, or a refusal: read where the module stands
                known = (await client.get(f"/api/v1/modules/{serial}")).json()
            name = "release" if known["state"] == "on_hold" else "hold"
            body = {"transition": name, "payload": {"reason": "crash drill"} if name == "hold" else {}}
            rid, key = request_id(), request_id()
            headers = {"If-Match": str(known["version"]), "Idempotency-Key": key, "X-Request-ID": rid}
            try:
                response = await client.post(f"/api/v1/modules/{serial}/transitions", json=body, headers=headers)
            except httpx.ConnectError:
                raise
            except httpx.TransportError:
                storm.in_doubt.append(rid)
                raise
        except httpx.TransportError:
            known = None
            await asyncio.sleep(0.02)
            continue
        if response.status_code == 200:
            known = response.json()
            storm.acks.append(Ack(rid, serial, int(known["version"]), f"lifecycle.{name}", key, body))
        else:
            storm.errors += response.status_code >= 500
            storm.refused += response.status_code < 500
            known = None


async def _storm(
    server: Server, floor: dict[str, str], admin: dict[str, str], codes: list[str], movers: list[str], delay: float
) -> Storm:
    """Clients write until the server is killed, `delay` seconds in."""
    storm = Storm()
    rng = random.Random()
    limits = httpx.Limits(max_connections=1)
    clients = [
        httpx.AsyncClient(base_url=server.base, headers=floor, timeout=10, limits=limits) for _ in range(SCANNERS)
    ] + [httpx.AsyncClient(base_url=server.base, headers=admin, timeout=10, limits=limits) for _ in movers]
    tasks = [asyncio.create_task(_scanner(c, codes, rng, storm)) for c in clients[:SCANNERS]]
    tasks += [asyncio.create_task(_mover(c, s, storm)) for c, s in zip(clients[SCANNERS:], movers, strict=True)]
    try:
        await asyncio.sleep(delay)
        server.kill()  # mid-request: the clients are writing as fast as answers come
        await asyncio.sleep(0.1)  # let the clients see their connections drop
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in clients:
            await client.aclose()
    return storm


async def _ledger_rows(url: str, request_ids: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    """The events carrying these request ids, straight from the database: rid -> [(serial, seq, type)]."""
    engine = create_async_engine(url)
    found: dict[str, list[tuple[str, int, str]]] = {}
    try:
        async with engine.connect() as conn:
            for start in range(0, len(request_ids), 500):
                chunk = request_ids[start : start + 500]
                params = {f"r{i}": rid for i, rid in enumerate(chunk)}
                names = ", ".join(f":r{i}" for i in range(len(chunk)))
                rows = await conn.execute(
                    text(
                        "SELECT e.request_id, m.serial, e.seq, e.type FROM events e "
                        f"JOIN modules m ON m.id = e.module_id WHERE e.request_id IN ({names})"
                    ),
                    params,
                )
                for rid, serial, seq, type_ in rows:
                    found.setdefault(rid, []).append((serial, int(seq), type_))
    finally:
        await engine.dispose()
    return found


def _check(url: str, storm: Storm, totals: Totals) -> None:
    rows = asyncio.run(_ledger_rows(url, [a.request_id for a in storm.acks] + storm.in_doubt))
    for ack in storm.acks:
        events = rows.get(ack.request_id, [])
        totals.acknowledged += 1
        if (ack.serial, ack.seq, ack.type) in events:
            totals.found += 1
        else:
            totals.lost += 1
            if len(totals.notes) < 5:
                totals.notes.append(f"lost {ack.type} {ack.serial} seq {ack.seq} (found {events})")
        totals.duplicated += len(events) > 1
    totals.in_doubt += len(storm.in_doubt)
    totals.in_doubt_committed += sum(1 for rid in storm.in_doubt if rid in rows)
    totals.duplicated += sum(1 for rid in storm.in_doubt if len(rows.get(rid, [])) > 1)
    totals.server_errors += storm.errors


def _replay(server: Server, floor: dict[str, str], sample: list[Ack], totals: Totals) -> None:
    """Acknowledged scans sent again with their keys after the restart: the first answer, nothing new."""
    with httpx.Client(base_url=server.base, headers=floor, timeout=10) as client:
        for ack in sample:
            response = client.post("/api/v1/scans", json=ack.body, headers={"Idempotency-Key": ack.key})
            totals.replays += 1
            if response.status_code == 201 and response.json()["event"] == {"module": ack.serial, "seq": ack.seq}:
                totals.replays_same += 1
            elif len(totals.notes) < 5:
                totals.notes.append(f"replay of {ack.key}: {response.status_code} {response.text[:200]}")


def run_target(ctx: Context, target: Target) -> Totals:
    cycles = int(ctx.options["cycles"])
    deadline = time.monotonic() + float(ctx.options["crash_budget"])
    url = target.fresh("crash")
    var = ctx.work / f"crash-{target.name}"
    server = Server(url, var, workers=int(ctx.options["workers"]))
    totals = Totals()
    server.start()
    try:
        floor, admin = token(server.base, "floor"), token(server.base, "admin")
        codes = tag_codes(server.base, floor)
        spec = spec_code(server.base, admin)
        with httpx.Client(base_url=server.base, headers=admin, timeout=30) as client:
            movers = [new_module(client, spec)[0] for _ in range(MOVERS)]
        previous: list[Ack] = []
        for cycle in range(cycles):
            if time.monotonic() > deadline:
                totals.notes.append(f"time cap of {ctx.options['crash_budget']:g} s reached after {cycle} cycles")
                break
            t0 = time.monotonic()
            if cycle:  # the storm starts as soon as the first worker answers; the others join as they start
                server.start(all_workers=False)
            t1 = time.monotonic()
            _replay(server, floor, [a for a in previous if a.type == "scan.recorded"][:REPLAYS], totals)
            delay = ctx.rng.uniform(0.3, 2.5)
            storm = asyncio.run(_storm(server, floor, admin, codes, movers, delay))
            t2 = time.monotonic()
            verified = afm(url, var, "audit", "verify", check=False)
            t3 = time.monotonic()
            totals.verify_passed += verified.returncode == 0
            if verified.returncode != 0 and len(totals.notes) < 5:
                totals.notes.append(f"cycle {cycle + 1}: audit verify: {verified.stdout.strip()[-300:]}")
            before = totals.lost
            _check(url, storm, totals)
            totals.cycles += 1
            ctx.rng.shuffle(storm.acks)
            previous = storm.acks
            say(
                f"  {target.name} cycle {cycle + 1}/{cycles}: killed after {delay:.2f} s, "
                f"{len(storm.acks)} acknowledged, {totals.lost - before} lost, "
                f"{len(storm.in_doubt)} in doubt, verify rc {verified.returncode} "
                f"(start {t1 - t0:.1f} s, verify {t3 - t2:.1f} s, check {time.monotonic() - t3:.1f} s)"
            )
        # The last restart: the service comes back up on what the last kill left, and answers.
        server.start()
        _replay(server, floor, [a for a in previous if a.type == "scan.recorded"][:REPLAYS], totals)
    finally:
        server.kill()
    return totals


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for target in ctx.each_target(PART):
        if isinstance(target, Row):
            rows.append(target)
            continue
        say(f"crash: {target.name}, {ctx.options['cycles']} kill cycles…")
        t = run_target(ctx, target)
        db = target.name
        rows += [
            Row(
                PART,
                db,
                f"SIGKILL cycles ({ctx.options['workers']} workers, restarted each time)",
                str(t.cycles),
                str(ctx.options["cycles"]),
                t.cycles == int(ctx.options["cycles"]),
            ),
            Row(
                PART,
                db,
                "acknowledged / found / lost",
                f"{t.acknowledged} / {t.found} / {t.lost}",
                "lost 0",
                t.lost == 0 and t.acknowledged > 0,
            ),
            Row(
                PART,
                db,
                "events written twice",
                str(t.duplicated),
                "0",
                t.duplicated == 0,
            ),
            Row(
                PART,
                db,
                "afm audit verify after each kill",
                f"{t.verify_passed}/{t.cycles} pass",
                "all",
                t.verify_passed == t.cycles,
            ),
            Row(
                PART,
                db,
                "acknowledged keys replayed after restart",
                f"{t.replays_same}/{t.replays} same answer",
                "all",
                t.replays_same == t.replays,
            ),
            Row(
                PART,
                db,
                "unanswered at the kill (committed anyway)",
                f"{t.in_doubt} ({t.in_doubt_committed})",
                "",
                None,
            ),
            Row(PART, db, "5xx answers during the storm", str(t.server_errors), "0", t.server_errors == 0),
        ]
        for note in t.notes:
            say(f"  {db}: {note}")
    return rows
