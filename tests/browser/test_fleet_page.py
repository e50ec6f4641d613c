"""The fleet dashboard in a real browser: charts drawn on the server, tables, exports, demand edited
and a redeployment planned."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot, serious_accessibility_violations


def test_planner_reads_the_fleet_edits_demand_and_plans(
    page: Page, base_url: str, tmp_path: Path, axe_source: str
) -> None:
    login(page, base_url, "planner")
    page.get_by_role("link", name="Fleet").click()
    expect(page.get_by_test_id("chart-modules_by_state").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("chart-modules_by_country").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("table-cycle_times").locator("tbody tr").first).not_to_contain_text("No data")
    xlsx = page.request.get(f"{base_url}{page.get_by_test_id('xlsx').get_attribute('href')}")
    assert xlsx.ok and xlsx.body()[:2] == b"PK"  # a zip: an XLSX workbook

    row = page.locator("#site-ISKEF1")
    row.get_by_label("Demand spec for ISKEF1").select_option("HGX-H200-40")
    row.get_by_label("Modules wanted at ISKEF1").fill("2")
    row.get_by_role("button", name="Add demand").click()
    expect(page.locator("#site-ISKEF1").get_by_test_id("demand")).to_contain_text("HGX-H200-40: 2 modules")

    page.get_by_role("button", name="Plan").click()
    plan = page.get_by_test_id("redeployment-plan")
    expect(plan).to_be_visible(timeout=20_000)
    expect(plan).to_contain_text("demanded modules served")
    screenshot(page, tmp_path / "fleet.png")
    assert serious_accessibility_violations(page, axe_source) == []
