"""`make bench`: run every benchmark on fresh SQLite databases and print a table of ratios."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.benchmarks import (
    bench_fleet,
    bench_import,
    bench_labels,
    bench_ledger,
    bench_manifest,
    bench_planner,
    bench_routes,
    bench_scans,
    bench_telemetry,
    bench_transitions,
    bench_webhooks,
)
from tests.benchmarks.common import table


def _fresh(base: Path, name: str) -> tuple[str, Path]:
    from app import demo
    from app.core import migrate
    from app.core.db import Database

    db_file = base / f"{name}.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    migrate.upgrade(url)

    async def load() -> None:
        db = Database(url, pool_size=1)
        try:
            await demo.load(db)
        finally:
            await db.dispose()

    asyncio.run(load())
    return url, db_file


BENCHMARKS = (
    "transitions",
    "scans",
    "telemetry",
    "ledger",
    "labels",
    "manifest",
    "routes",
    "planner",
    "fleet",
    "webhooks",
    "import",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=int(os.environ.get("AFM_BENCH_EVENTS", 1_000_000)))
    parser.add_argument("--requests", type=int, default=int(os.environ.get("AFM_BENCH_REQUESTS", 2000)))
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only these benchmarks (repeatable); default: all"
    )
    args = parser.parse_args()
    chosen = set(args.only or BENCHMARKS)
    base = Path(tempfile.mkdtemp(prefix="afm-bench-"))
    os.environ["AFM_VAR_DIR"] = str(base / "var")
    os.environ.setdefault("AFM_LOG_LEVEL", "warning")
    from app.core.config import load_settings

    try:
        results = []
        url, _ = _fresh(base, "demo")
        if "transitions" in chosen:
            print("transitions benchmark…", file=sys.stderr)
            settings = load_settings(environ={**os.environ, "AFM_DATABASE_URL": url})
            results.append(bench_transitions.run(settings, args.requests))
        if "scans" in chosen:
            print("scans benchmark…", file=sys.stderr)
            url, _ = _fresh(base, "scans")
            results += bench_scans.run(url, base / "var", args.requests)
        if "telemetry" in chosen:
            print("burn-in telemetry benchmark…", file=sys.stderr)
            results.append(bench_telemetry.run(base))
            results.append(bench_telemetry.run_upload_to_verdict(url, base / "var", base))
        if "ledger" in chosen:
            print("ledger benchmark…", file=sys.stderr)
            url, db_file = _fresh(base, "ledger")
            results.append(bench_ledger.run(url, db_file, args.events))
        if "labels" in chosen:
            print("label PDF benchmark…", file=sys.stderr)
            results.append(bench_labels.run(base))
        if "manifest" in chosen:
            print("manifest PDF benchmark…", file=sys.stderr)
            results += bench_manifest.run()
        if "routes" in chosen:
            print("route planning benchmark…", file=sys.stderr)
            results += bench_routes.run()
        if "planner" in chosen:
            print("redeployment planner benchmark…", file=sys.stderr)
            results += bench_planner.run()
        if "fleet" in chosen:
            print("fleet at scale benchmark (PostgreSQL)…", file=sys.stderr)
            results += bench_fleet.run()
        if "import" in chosen:
            print("parts import benchmark…", file=sys.stderr)
            results += bench_import.run(_fresh(base, "import")[0])
        if "webhooks" in chosen:
            print("webhook delivery latency benchmark…", file=sys.stderr)
            url, _ = _fresh(base, "webhooks")
            results += bench_webhooks.run(url, base / "var")
        print()
        print(table(results))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
