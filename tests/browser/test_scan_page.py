"""The floor scan page in a real browser: a wedge scanner types a tag and Enter; offline scans queue in
the browser and are recorded once when the network returns."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.browser.test_pages import _api, _token


def _tag(base_url: str, token: str, serial: str) -> str:
    return str(_api(base_url, "GET", f"/api/v1/modules/{serial}/tag?format=json", token)["uri"])


def _scan_events(base_url: str, token: str, serial: str) -> int:
    events = _api(base_url, "GET", f"/api/v1/modules/{serial}/events", token)
    return sum(1 for e in events if e["type"] == "scan.recorded")


def test_wedge_scan_shows_the_asset(page: Page, base_url: str, tmp_path: Path) -> None:
    token = _token(base_url, "floor")
    serial = _api(base_url, "GET", "/api/v1/modules?state=in_service&limit=1", token)["items"][0]["serial"]
    uri = _tag(base_url, token, serial)
    login(page, base_url, "floor")
    page.get_by_role("link", name="Scan").click()
    code = page.get_by_label("Scanned code")
    expect(code).to_be_focused()
    code.fill(uri)
    code.press("Enter")  # what a keyboard-wedge scanner sends
    outcome = page.get_by_test_id("scan-outcome")
    expect(outcome).to_have_class(re.compile("scan-ok"))
    expect(outcome).to_contain_text(serial)
    expect(outcome).to_contain_text("In service")
    expect(code).to_be_focused()
    screenshot(page, tmp_path / "scan-ok.png")
    code.fill(uri[:-1] + ("A" if uri[-1] != "A" else "B"))  # an altered tag
    code.press("Enter")
    expect(outcome).to_have_class(re.compile("scan-bad"))
    expect(outcome).to_contain_text("forged")
    screenshot(page, tmp_path / "scan-bad.png")


def test_offline_scans_queue_and_apply_once(page: Page, base_url: str, tmp_path: Path) -> None:
    token = _token(base_url, "floor")
    modules = _api(base_url, "GET", "/api/v1/modules?state=in_service&limit=3&offset=1", token)["items"]
    serials = [m["serial"] for m in modules]
    uris = [_tag(base_url, token, s) for s in serials]
    before = {s: _scan_events(base_url, token, s) for s in serials}
    login(page, base_url, "floor")
    page.goto(f"{base_url}/scan")
    code = page.get_by_label("Scanned code")
    page.context.set_offline(True)
    expect(page.get_by_test_id("network")).to_contain_text("Offline")
    for uri in uris:
        code.fill(uri)
        code.press("Enter")
    pending = page.get_by_test_id("pending")
    expect(pending).to_have_text("3 scans waiting to be sent")
    screenshot(page, tmp_path / "scan-offline.png")
    page.context.set_offline(False)
    expect(pending).to_be_hidden(timeout=15_000)
    expect(page.get_by_test_id("scan-outcome")).to_contain_text("3 queued scans recorded")
    for serial in serials:
        assert _scan_events(base_url, token, serial) == before[serial] + 1
    # A reload (the page comes back with nothing queued) sends nothing twice.
    page.reload()
    expect(page.get_by_test_id("pending")).to_be_hidden()
    for serial in serials:
        assert _scan_events(base_url, token, serial) == before[serial] + 1
