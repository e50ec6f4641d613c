"""Fleet reports from the ledger through the API, and their CSV and XLSX exports."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.fleet.reports import TABLES
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(demo_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(make_settings(demo_url, tmp_path))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_reports_cover_the_demo_fleet_and_export(client: Client) -> None:
    auditor = await bearer(client, "auditor")
    total = (await client.get("/api/v1/modules?limit=1", headers=auditor)).json()["total"]
    reports = (await client.get("/api/v1/fleet/reports", headers=auditor)).json()
    assert list(reports) == list(TABLES)
    by_state = reports["modules_by_state"]
    count = by_state["columns"].index("modules")
    assert sum(row[count] for row in by_state["rows"]) == total
    cycle = reports["cycle_times"]
    assert cycle["rows"], "the demo histories have factory stages"
    median = cycle["columns"].index("median_h")
    assert all(row[median] >= 0 for row in cycle["rows"])

    csv = await client.get("/api/v1/fleet/reports/modules_by_state.csv", headers=auditor)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    read = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig")
    assert int(read["modules"].sum()) == total
    xlsx = await client.get("/api/v1/fleet/reports/fleet.xlsx", headers=auditor)
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert len(book.sheetnames) == len(TABLES)
    assert_problem(await client.get("/api/v1/fleet/reports/nope.csv", headers=auditor), 404, "cycle_times.csv")
