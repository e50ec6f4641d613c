"""The route planner page in a real browser: Shanghai to Rotterdam by sea, then with Suez avoided
(the second route is longer and passes the Cape)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot


def test_plan_shanghai_rotterdam_then_avoid_suez(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "planner")
    page.get_by_role("link", name="Routes").click()
    page.get_by_label("Origin").fill("CNSHA")
    page.get_by_label("Destination").fill("NLRTM")
    for mode in ("road", "rail", "air"):  # a containerised module by sea, fastest first (the default)
        page.locator(f"input[name=modes][value={mode}]").uncheck()
    page.get_by_role("button", name="Plan").click()
    routes = page.get_by_test_id("route")
    expect(routes.first).to_be_visible(timeout=20_000)
    expect(routes.first.get_by_test_id("passages")).to_contain_text("suez")
    direct = float(routes.first.get_attribute("data-distance") or 0)
    expect(page.get_by_test_id("plan-map").locator("polyline").first).to_be_attached()
    screenshot(page, tmp_path / "plan-suez.png")

    page.get_by_label("Avoid Suez Canal").check()
    page.get_by_role("button", name="Plan").click()
    expect(routes.first.get_by_test_id("passages")).not_to_contain_text("suez", timeout=20_000)
    around = float(routes.first.get_attribute("data-distance") or 0)
    assert around > direct * 1.2
    # by time the Cape beats Panama: the canal's waiting time outweighs the shorter distance
    expect(routes.first.get_by_test_id("passages")).to_contain_text("cape-of-good-hope")
    screenshot(page, tmp_path / "plan-cape.png")
