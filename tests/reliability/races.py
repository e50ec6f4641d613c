"""Races: each round, N clients fire conflicting transitions at one fresh module at the same moment, through
a server with several workers. Half send `start_assembly` with no If-Match (only one can find the module
still planned); the others send `start_assembly` or `hold` with If-Match of the version they all read
(only one can find that version current). Exactly one must win; every loser gets 409 problem details;
the module moves exactly one version; the ledger verifies afterwards.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.reliability.common import Context, Row, Server, Target, afm, is_problem, say, spec_code, token

PART = "races"


@dataclass
class Tally:
    rounds: int = 0
    exactly_one: int = 0
    none: int = 0
    several: int = 0
    moved_once: int = 0
    loser_answers: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def racer_requests(n: int, version: int) -> list[tuple[dict[str, object], dict[str, str]]]:
    """The conflicting requests of one round: (body, headers) for each of n racers."""
    requests: list[tuple[dict[str, object], dict[str, str]]] = []
    for i in range(n):
        if i % 2 == 0:
            requests.append(({"transition": "start_assembly", "payload": {}}, {}))
        elif i % 4 == 1:
            requests.append(({"transition": "start_assembly", "payload": {}}, {"If-Match": str(version)}))
        else:
            body = {"transition": "hold", "payload": {"reason": f"race racer {i}"}}
            requests.append((body, {"If-Match": str(version)}))
    return requests


async def _race(
    start: asyncio.Event, client: httpx.AsyncClient, path: str, body: dict[str, object], extra: dict[str, str]
) -> httpx.Response:
    await start.wait()  # the barrier: every racer is ready before any sends
    return await client.post(path, json=body, headers=extra)


async def _rounds(base: str, headers: dict[str, str], spec: str, rounds: int, racers: int, tally: Tally) -> None:
    # One connection per racer, opened before the first round, so the racers land on different workers
    # and nothing but the race itself stands between their requests.
    clients = [
        httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=httpx.Limits(max_connections=1))
        for _ in range(racers)
    ]
    try:
        await asyncio.gather(*(c.get("/healthz") for c in clients))
        for round_no in range(rounds):
            created = (await clients[0].post("/api/v1/modules", json={"spec": spec})).raise_for_status().json()
            serial, version = created["serial"], int(created["version"])
            path = f"/api/v1/modules/{serial}/transitions"
            start = asyncio.Event()
            tasks = [
                asyncio.create_task(_race(start, c, path, body, extra))
                for c, (body, extra) in zip(clients, racer_requests(racers, version), strict=True)
            ]
            await asyncio.sleep(0)
            start.set()
            answers = await asyncio.gather(*tasks)
            winners = sum(1 for r in answers if r.status_code == 200)
            tally.rounds += 1
            tally.exactly_one += winners == 1
            tally.none += winners == 0
            tally.several += winners > 1
            for r in answers:
                if r.status_code != 200:
                    tally.loser_answers[f"{r.status_code}{'' if is_problem(r) else ' (not problem+json)'}"] += 1
            after = (await clients[0].get(f"/api/v1/modules/{serial}")).json()
            tally.moved_once += int(after["version"]) == version + 1
            if winners != 1 and len(tally.notes) < 5:
                tally.notes.append(f"round {round_no + 1}: {winners} winners: {[r.status_code for r in answers]}")
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def run_target(ctx: Context, target: Target) -> tuple[Tally, bool]:
    url = target.fresh("races")
    var = ctx.work / f"races-{target.name}"
    tally = Tally()
    with Server(url, var, workers=int(ctx.options["workers"])) as server:
        floor = token(server.base, "floor")
        spec = spec_code(server.base, floor)
        asyncio.run(_rounds(server.base, floor, spec, int(ctx.options["rounds"]), int(ctx.options["racers"]), tally))
    verified = afm(url, var, "audit", "verify", check=False).returncode == 0
    return tally, verified


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    racers, workers = int(ctx.options["racers"]), int(ctx.options["workers"])
    for target in ctx.each_target(PART):
        if isinstance(target, Row):
            rows.append(target)
            continue
        say(f"races: {target.name}, {ctx.options['rounds']} rounds of {racers} clients, {workers} workers…")
        t, verified = run_target(ctx, target)
        losers = ", ".join(f"{k} ×{v}" for k, v in sorted(t.loser_answers.items())) or "none"
        db = target.name
        rows += [
            Row(
                PART,
                db,
                f"rounds / exactly one winner / 0 / >1 ({racers} clients, {workers} workers)",
                f"{t.rounds} / {t.exactly_one} / {t.none} / {t.several}",
                "exactly one every round",
                t.rounds > 0 and t.exactly_one == t.rounds,
            ),
            Row(
                PART,
                db,
                "losers' answers",
                losers,
                "409 problem+json",
                set(t.loser_answers) <= {"409"},
            ),
            Row(
                PART,
                db,
                "module moved exactly one version",
                f"{t.moved_once}/{t.rounds}",
                "all",
                t.moved_once == t.rounds,
            ),
            Row(PART, db, "afm audit verify afterwards", "pass" if verified else "FAIL", "pass", verified),
        ]
        for note in t.notes:
            say(f"  {db}: {note}")
    return rows
