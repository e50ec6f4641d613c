"""`afm audit verify` throughput against raw hashlib SHA-256 over the same bytes, at N events."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
import sys
from pathlib import Path

from app.core.db import Database
from app.core.ledger import service as ledger
from app.core.ledger.domain import GENESIS, EventRecord, canonical, canonical_payload, chain_hash
from tests.benchmarks.common import Result, timed

EVENTS_PER_MODULE = 1000


def build(db_file: Path, events: int) -> list[bytes]:
    """Write `events` chained events over events/1000 modules straight into the SQLite file, with the
    ledger's own hashing; return the exact bytes each hash covers (for the baseline)."""
    conn = sqlite3.connect(db_file)
    spec_id, factory_id = conn.execute("SELECT (SELECT min(id) FROM specs), (SELECT min(id) FROM factories)").fetchone()
    covered: list[bytes] = []
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    modules = max(1, events // EVENTS_PER_MODULE)
    for m in range(modules):
        serial = f"BENCH-{m:06d}"
        cursor = conn.execute(
            "INSERT INTO modules (serial, spec_id, factory_id, state, hold_reason, version, head_hash, created_at,"
            " updated_at) VALUES (?, ?, ?, 'in_service', '', 0, ?, ?, ?)",
            (serial, spec_id, factory_id, GENESIS, start.isoformat(" "), start.isoformat(" ")),
        )
        module_id = cursor.lastrowid
        prev, rows = GENESIS, []
        count = min(EVENTS_PER_MODULE, events - m * EVENTS_PER_MODULE)
        for seq in range(1, count + 1):
            at = start + dt.timedelta(seconds=seq)
            payload = {"transition": "hold", "from": "in_service", "to": "on_hold", "reason": f"bench {seq}"}
            record = EventRecord(
                module=serial,
                seq=seq,
                type="lifecycle.hold",
                actor="bench",
                role="admin",
                at=at,
                place="NONVK1",
                request_id="",
                payload=payload,
            )
            digest = chain_hash(prev, record)
            covered.append(prev.encode("ascii") + canonical(record))
            rows.append(
                (
                    module_id,
                    seq,
                    record.type,
                    record.actor,
                    record.role,
                    at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    record.place,
                    "",
                    canonical_payload(payload).decode(),
                    prev,
                    digest,
                )
            )
            prev = digest
        conn.executemany(
            "INSERT INTO events (module_id, seq, type, actor, role, at, place, request_id, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE modules SET version = ?, head_hash = ? WHERE id = ?", (count, prev, module_id))
        if m % 50 == 0:
            print(f"\r  building ledger: {m * EVENTS_PER_MODULE:,}/{events:,} events", end="", file=sys.stderr)
    conn.commit()
    conn.close()
    print(f"\r  building ledger: {events:,}/{events:,} events", file=sys.stderr)
    return covered


def run(db_url: str, db_file: Path, events: int) -> Result:
    covered = build(db_file, events)
    total = len(covered)

    def baseline() -> None:
        sha = hashlib.sha256
        for data in covered:
            sha(data).hexdigest()

    hash_s = min(timed(baseline) for _ in range(3))

    async def verify() -> float:
        db = Database(db_url, pool_size=1)
        try:
            async with db.read() as uow:
                t = asyncio.get_running_loop().time()
                result = await ledger.verify(uow)
                elapsed = asyncio.get_running_loop().time() - t
            assert result.ok, result
            assert result.events_checked >= total
            return elapsed
        finally:
            await db.dispose()

    verify_s = asyncio.run(verify())
    # The demo fleet's own events are verified too; count what was checked.
    return Result(
        name=f"audit verify, {total:,} events",
        measured="events/s",
        value=total / verify_s,
        baseline_name="hashlib.sha256 over the same bytes",
        baseline=total / hash_s,
        unit="events/s",
        goal=0.5,
    )
