"""Webhook delivery survives SIGKILL: transitions stream in, a loopback receiver (that also fails a
share of its requests) collects deliveries, and the server — dispatcher and all — is SIGKILLed at
random moments and restarted. Afterwards every acknowledged transition has reached the receiver
(after dropping duplicates by event id) and each module's events arrived in ledger order.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import httpx
import msgspec

from tests.integration.webhook_receiver import Receiver
from tests.reliability.common import Context, Row, Server, Target, say, token

PART = "webhooks"
MOVERS = 4
SERVER_ENV = {
    "AFM_DISPATCH_POLL_S": "0.02",
    "AFM_WEBHOOK_BACKOFF_BASE_S": "0.2",
    "AFM_WEBHOOK_BACKOFF_CAP_S": "1",
    "AFM_WEBHOOK_PAUSE_AFTER": "1000",
}


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    cycles = max(3, int(ctx.options.get("cycles") or 20) // 4)
    for target in ctx.each_target(PART):
        if isinstance(target, Row):
            rows.append(target)
            continue
        rows += _run_target(ctx, target, cycles)
    return rows


def _run_target(ctx: Context, target: Target, cycles: int) -> list[Row]:
    url = target.fresh("webhooks")
    var = ctx.work / f"var-webhooks-{target.name}"
    acked: dict[str, set[int]] = defaultdict(set)  # serial -> acknowledged seqs
    lock = threading.Lock()
    # Fails about one request in five: the dispatcher must retry, in order, through the kills.
    with Receiver(fail_share=0.2, rng=random.Random(ctx.rng.random())) as receiver:
        server = Server(url, var, workers=2, env=SERVER_ENV)
        server.start()
        admin = token(server.base, "admin")
        created = httpx.post(
            f"{server.base}/api/v1/webhooks",
            json={"name": "reliability", "url": receiver.url, "event_types": ["lifecycle.*"], "allow_private": True},
            headers=admin,
            timeout=30,
        )
        created.raise_for_status()
        modules = httpx.get(
            f"{server.base}/api/v1/modules", params={"state": "in_service", "limit": MOVERS}, headers=admin, timeout=30
        ).json()["items"]
        serials = [m["serial"] for m in modules]
        kills = 0
        for cycle in range(cycles):
            stop = threading.Event()
            base = server.base

            def mover(serial: str, stop: threading.Event = stop, base: str = base) -> None:
                with httpx.Client(base_url=base, headers=admin, timeout=10) as client:
                    while not stop.is_set():
                        try:
                            state = client.get(f"/api/v1/modules/{serial}").json()["state"]
                            move = (
                                {"transition": "release"}
                                if state == "on_hold"
                                else {"transition": "hold", "payload": {"reason": "Reliability run: webhook storm"}}
                            )
                            answer = client.post(f"/api/v1/modules/{serial}/transitions", json=move)
                        except (httpx.TransportError, ValueError, KeyError):
                            return  # the server is gone
                        if answer.status_code == 200:
                            with lock:
                                acked[serial].add(int(answer.json()["version"]))

            threads = [threading.Thread(target=mover, args=(s,), daemon=True) for s in serials]
            for thread in threads:
                thread.start()
            time.sleep(ctx.rng.uniform(0.5, 2.0))
            server.kill()  # mid-storm and, with deliveries flowing, mid-delivery
            kills += 1
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
            server.start()
            say(f"   {target.name}: webhook kill cycle {cycle + 1}/{cycles}")
        # Let the dispatcher catch up, then compare.
        wanted = {f"{s}:{q}" for s, seqs in acked.items() for q in seqs}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = {msgspec.json.decode(body)["id"] for _, body in list(receiver.requests)}
            if wanted <= got:
                break
            time.sleep(0.2)
        server.stop()
        bodies = [msgspec.json.decode(body) for _, body in list(receiver.requests)]
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for event in bodies:
        if event["id"] not in seen:
            seen.add(event["id"])
            first_seen[event["module"]].append(int(event["seq"]))
    lost = wanted - seen
    out_of_order = [m for m, seqs in first_seen.items() if seqs != sorted(seqs)]
    duplicates = len(bodies) - len(seen)
    return [
        Row(
            PART,
            target.name,
            f"acknowledged transitions delivered over {kills} SIGKILLs",
            f"acknowledged {len(wanted)} / delivered {len(wanted & seen)} / lost {len(lost)}",
            "0 lost",
            not lost and bool(wanted),
        ),
        Row(
            PART,
            target.name,
            "per-module order of first arrival",
            f"{len(first_seen)} modules, {len(out_of_order)} out of order",
            "0 out of order",
            not out_of_order,
        ),
        Row(PART, target.name, "duplicates dropped by event id", f"{duplicates} of {len(bodies)} requests"),
    ]
