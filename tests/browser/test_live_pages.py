"""Live pages: a module page open in the browser follows the event stream and shows a transition made
elsewhere (another user, the API) without a reload; the webhooks page lists a subscription."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import login, screenshot

pytestmark = pytest.mark.browser


def _token(base_url: str, username: str) -> dict[str, str]:
    response = httpx.post(f"{base_url}/api/v1/auth/token", json={"username": username, "password": "demo"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_module_page_updates_live(page: Page, base_url: str, tmp_path: Path) -> None:
    admin = _token(base_url, "admin")
    modules = httpx.get(f"{base_url}/api/v1/modules?state=in_service&limit=50", headers=admin).json()["items"]
    serial = modules[-1]["serial"]
    login(page, base_url, "auditor")  # read-only: the change comes from someone else
    page.goto(f"{base_url}/modules/{serial}")
    expect(page.locator("#live")).to_have_attribute("data-live-open", "1", timeout=10_000)
    reason = "Leak sensor L3 tripped during the live page test"
    moved = httpx.post(
        f"{base_url}/api/v1/modules/{serial}/transitions",
        json={"transition": "hold", "payload": {"reason": reason}},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    expect(page.get_by_text(f"On hold: {reason}")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("live-note")).to_contain_text("lifecycle hold")
    screenshot(page, tmp_path / "live-module.png")
    httpx.post(
        f"{base_url}/api/v1/modules/{serial}/transitions", json={"transition": "release"}, headers=admin
    ).raise_for_status()
    expect(page.get_by_text(f"On hold: {reason}")).to_have_count(0, timeout=10_000)


def test_webhooks_page_creates_a_subscription(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "admin")
    page.goto(f"{base_url}/admin/webhooks")
    page.get_by_label("Name").fill("CMDB")
    page.get_by_label("Receiver URL").fill("http://127.0.0.1:9/afm")
    page.get_by_label("Allow a loopback or private-network receiver").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_test_id("secret")).to_contain_text("whsec_")
    expect(page.get_by_test_id("subscription")).to_contain_text("CMDB")
    page.get_by_role("button", name="Pause").first.click()
    expect(page.get_by_test_id("state").first).to_contain_text("paused")
    screenshot(page, tmp_path / "webhooks.png")
