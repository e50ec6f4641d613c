"""Schemathesis over the whole OpenAPI as every demo login, bounded for `make test`: no 5xx, no
undocumented status or content type, every JSON body as documented. `python -m tests.fuzz` runs the
same with many more examples (and on PostgreSQL with `--database postgres`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz import runner
from tests.fuzz.databases import DemoDatabases, demo_databases

# Schema-valid and schema-breaking requests per operation (about 370 for the admin, 95 for each other
# login, 275 on PostgreSQL): the admin reaches every operation's rules, the other logins mostly check
# that refusals (403) are documented and come before any failure. `python -m tests.fuzz` runs thousands.
BUDGET = {"admin": (3, 1), "floor": (1, 0), "planner": (1, 0), "engineer": (1, 0), "auditor": (1, 0)}
POSTGRES_BUDGET = (2, 1)


@pytest.fixture(scope="module")
def sqlite_demo(sqlite_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDatabases]:
    with demo_databases("sqlite", tmp_path_factory.mktemp("fuzz"), sqlite_templates["demo"]) as databases:
        yield databases


def _fuzz(databases: DemoDatabases, role: str, budget: tuple[int, int] | None = None) -> runner.RoleReport:
    examples, negative = budget or BUDGET[role]
    try:
        return runner.fuzz_role(databases.app(role), role, examples=examples, negative_examples=negative)
    finally:
        runner.shutdown()


def _verdict(report: runner.RoleReport) -> None:
    assert report.operations > 0 and report.examples >= report.operations, runner.table([report])
    assert report.statuses, "no request was answered"
    assert report.ok, runner.table([report]) + "\n\n" + "\n\n".join(map(str, report.findings.values()))


@pytest.mark.parametrize("role", runner.ROLES)
def test_api_conforms_to_its_openapi(sqlite_demo: DemoDatabases, role: str) -> None:
    report = _fuzz(sqlite_demo, role)
    _verdict(report)
    if role == "admin":  # the admin may do everything: most answers are not refusals
        assert report.statuses[403] < report.examples / 2, runner.table([report])


@pytest.mark.postgres
def test_api_conforms_to_its_openapi_on_postgresql(
    pg_templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PostgreSQL refuses what SQLite stores (NUL characters, integers beyond 64 bits, …): the admin's
    requests once more there."""
    with demo_databases("postgresql", tmp_path_factory.mktemp("fuzz-pg"), pg_templates["demo"]) as databases:
        _verdict(_fuzz(databases, "admin", POSTGRES_BUDGET))
