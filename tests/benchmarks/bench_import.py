"""Parts imports: a realistic parts delivery (demo part numbers, makers and serials; tests/import_files.py)
of 1,000 and 10,000 rows as CSV, into the demo fleet's database. Measured, in rows per second:

- the dry run: read, map, type and check every row, load what the rows refer to, plan (nothing written);
- the apply: the same plan made again inside one write transaction, then the rows written;

each against a baseline measured in the same run on the same database: pandas.read_csv of the same bytes
plus one bulk INSERT of the same rows (no checks at all: the least any import pays). Goals: the dry run at
least a third of the baseline's speed, the apply at least a quarter (it plans, then writes).
Run alone: python -m tests.benchmarks.bench_import
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import Result, table

SIZES = (1_000, 10_000)
REPEATS = 3
DRY_GOAL = 1 / 3
APPLY_GOAL = 1 / 4


async def _measure(url: str, size: int) -> tuple[float, float, float]:
    """Median seconds of the dry run, the apply and the baseline; each apply and baseline writes new rows."""
    import pandas as pd
    from sqlalchemy import insert

    from app.core.auth.domain import Principal
    from app.core.db import Database, utcnow
    from app.core.definitions import load_lifecycle
    from app.factory.models import Part
    from app.integration import import_service
    from tests import import_files

    lifecycle = load_lifecycle()
    actor = Principal(user_id=1, username="admin", roles=("admin",), via="bench")
    db = Database(url, pool_size=2)

    async def imported(data: bytes, *, apply: bool) -> float:
        start = time.perf_counter()
        result = await import_service.run_import(
            db, lifecycle, "parts", data, "text/csv", actor, apply=apply, company_prefix="0614141"
        )
        elapsed = time.perf_counter() - start
        assert result.summary["create"] == size, result.summary
        return elapsed

    async def baseline(data: bytes) -> float:
        start = time.perf_counter()
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        now = utcnow()
        rows = [{**r, "position": "", "created_at": now} for r in frame.to_dict("records")]
        async with db.write() as uow:
            for i in range(0, len(rows), import_service.CHUNK):
                await uow.session.execute(insert(Part), rows[i : i + import_service.CHUNK])
        return time.perf_counter() - start

    def delivery(seed: str) -> bytes:
        return import_files.to_csv(import_files.parts_rows(size, seed=f"{seed}-{size}"))

    try:
        await imported(delivery("warm"), apply=False)  # imports, statement caches
        await baseline(delivery("warm-baseline"))
        dry = [await imported(delivery("dry"), apply=False) for _ in range(REPEATS)]
        applied, base = [], []
        for n in range(REPEATS):
            applied.append(await imported(delivery(f"apply{n}"), apply=True))
            base.append(await baseline(delivery(f"baseline{n}")))
    finally:
        await db.dispose()
    return statistics.median(dry), statistics.median(applied), statistics.median(base)


def run(url: str) -> list[Result]:
    results = []
    for size in SIZES:
        dry_s, apply_s, baseline_s = asyncio.run(_measure(url, size))
        baseline = "pandas.read_csv + bulk INSERT"
        for name, seconds, goal in (("dry run", dry_s, DRY_GOAL), ("apply", apply_s, APPLY_GOAL)):
            results.append(
                Result(
                    name=f"import {size:,} parts: {name}",
                    measured="rows per second",
                    value=size / seconds,
                    baseline_name=baseline,
                    baseline=size / baseline_s,
                    unit="rows/s",
                    goal=goal,
                    value_text=f"{size / seconds:,.0f} rows/s ({seconds:.2f} s)",
                    baseline_text=f"{size / baseline_s:,.0f} rows/s ({baseline_s:.2f} s)",
                )
            )
    return results


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="afm-bench-import-"))
    os.environ["AFM_VAR_DIR"] = str(base / "var")
    os.environ.setdefault("AFM_LOG_LEVEL", "warning")
    from tests.benchmarks.__main__ import _fresh

    url = os.environ.get("AFM_BENCH_IMPORT_URL") or _fresh(base, "import")[0]
    print(table(run(url)), file=sys.stdout)


if __name__ == "__main__":
    main()
