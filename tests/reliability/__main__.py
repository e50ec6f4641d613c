"""`make reliability`: each part drives real `afm serve` processes on 127.0.0.1 and returns table rows;
the run prints one table and exits 1 when any goal is missed.

    python -m tests.reliability [--only crash|races|scale ...] [--cycles N] [--rounds N] ...

A new part is a module with `run(ctx) -> list[Row]`, added to PARTS below.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability import crash, races, scale, webhooks
from tests.reliability.common import Context, Part, Row, install_signal_handlers, prepare_targets, say, table

PARTS = [
    Part("crash", crash.run, "writes acknowledged before a SIGKILL survive it; the ledger verifies"),
    Part("races", races.run, "conflicting transitions from many clients: exactly one wins"),
    Part("scale", scale.run, "several workers share no state in memory; scans/s at 1, 2 and 4 workers"),
    Part("webhooks", webhooks.run, "webhook deliveries survive SIGKILLs: nothing lost, in order per module"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=[p.name for p in PARTS], help="repeatable; default all")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--cycles", type=int, default=20, help="crash: SIGKILL cycles per database")
    parser.add_argument(
        "--crash-budget", type=float, default=240, help="crash: seconds per database before cycling stops"
    )
    parser.add_argument("--workers", type=int, default=2, help="crash and races: workers per server")
    parser.add_argument("--rounds", type=int, default=100, help="races: rounds per database")
    parser.add_argument("--racers", type=int, default=8, help="races: clients per round")
    parser.add_argument("--seconds", type=float, default=10.0, help="scale: load time per worker count")
    parser.add_argument("--clients", type=int, default=24, help="scale: closed-loop clients")
    parser.add_argument("--scale-workers", default="1,2,4", help="scale: worker counts, the first is the baseline")
    parser.add_argument("--seed", type=int, default=None, help="kill moments and choices (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server logs, SQLite files)")
    args = parser.parse_args()
    chosen = [p for p in PARTS if not args.only or p.name in args.only]
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    work = Path(tempfile.mkdtemp(prefix="afm-reliability-"))
    install_signal_handlers()
    say(f"reliability: parts {', '.join(p.name for p in chosen)}; seed {seed}; work folder {work}")
    started = time.monotonic()
    targets = []
    rows: list[Row] = []
    try:
        targets = prepare_targets(work, [d.strip() for d in args.databases.split(",") if d.strip()])
        ctx = Context(work=work, targets=targets, rng=random.Random(seed), options=vars(args))
        for part in chosen:
            say(f"== {part.name}: {part.summary}")
            t0 = time.monotonic()
            try:
                rows += part.run(ctx)
            except Exception as exc:  # one broken part must not hide the others' results
                rows.append(Row(part.name, "-", "part failed", f"{type(exc).__name__}: {exc}"[:300], "", False))
            say(f"   {part.name} took {time.monotonic() - t0:.0f} s")
    finally:
        for target in targets:
            try:
                target.cleanup()
            except Exception as exc:
                say(f"cleanup of {target.name} failed: {exc!r}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    missed = [r for r in rows if r.ok is False]
    print(f"\n{len(rows)} rows, {len(missed)} missed, {time.monotonic() - started:.0f} s (seed {seed})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
