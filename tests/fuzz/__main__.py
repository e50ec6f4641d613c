"""`python -m tests.fuzz`: a larger schemathesis run over the whole API as each demo login.

Prints one row per role (operations, examples, answers by class, failing examples by kind), then each
distinct failure with a curl command that reproduces it; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz import runner
    from tests.fuzz.databases import demo_databases

    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--examples", type=int, default=25, help="schema-valid requests per operation and role")
    parser.add_argument(
        "--negative",
        type=int,
        default=None,
        help="schema-breaking requests per operation and role (default: examples / 2)",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--role", action="append", choices=runner.ROLES, help="only these logins (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="another seed draws other requests")
    parser.add_argument(
        "--verbose", action="store_true", help="name each operation as it is fuzzed, then the statuses each answered"
    )
    args = parser.parse_args(argv)
    negative = args.examples // 2 if args.negative is None else args.negative
    roles = args.role or list(runner.ROLES)

    reports = []
    progress = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    with tempfile.TemporaryDirectory(prefix="afm-fuzz-") as work, demo_databases(args.database, Path(work)) as fresh:
        for role in roles:
            app = fresh.app(role)
            reports.append(
                runner.fuzz_role(
                    app,
                    role,
                    examples=args.examples,
                    negative_examples=negative,
                    base_seed=args.seed,
                    progress=progress,
                )
            )
            runner.shutdown()
            print(f"{role}: {reports[-1].examples} examples in {reports[-1].seconds:.0f} s", file=sys.stderr)
    if args.verbose:
        for report in reports:
            print(f"\n{report.role}: statuses per operation\n{runner.statuses_by_operation(report)}\n")
    print(runner.table(reports))
    found = list(runner.findings(reports))
    for finding in found:
        print(f"\n{finding}")
    print(f"\n{len(found)} distinct failure(s)" if found else "\nno failures")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
