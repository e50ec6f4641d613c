"""The shipment page in a real browser: legs on a timeline and the map, custody, documents, and a
seal mismatch shown as a warning."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.browser.test_pages import _api, _token

PARTY = {"name": "Pardubice Module Works", "address": ["Hradecka 1", "Pardubice"], "country": "CZ"}


def test_planner_sees_legs_custody_documents_and_a_seal_warning(page: Page, base_url: str, tmp_path: Path) -> None:
    planner, floor = _token(base_url, "planner"), _token(base_url, "floor")
    serial = _api(base_url, "GET", "/api/v1/modules?state=burn_in_passed&spec=HGX-H200-40&limit=1", planner)["items"][
        0
    ]["serial"]
    shipment = {
        "origin": "factory:CZPAR1",
        "destination": "site:ISKEF1",
        "modules": [serial],
        "planned_departure": "2026-12-07T06:00:00Z",
        "incoterm": "FCA",
        "incoterm_place": "Pardubice plant",
        "consignor": PARTY,
        "consignee": {"name": "Nordic Sovereign Cloud hf.", "address": ["Reykjanesbaer"], "country": "IS"},
        "values": {"HGX-H200-40": 4_100_000},
        "containers": [{"number": "CSQU3054383", "seal": "CZ-5521", "modules": [serial]}],
        "criterion": "cost",
    }
    ref = _api(base_url, "POST", "/api/v1/shipments", planner, json.dumps(shipment).encode())["id"]
    _api(base_url, "POST", f"/api/v1/shipments/{ref}/pack", floor, b"{}")
    _api(base_url, "POST", f"/api/v1/shipments/{ref}/documents", planner, json.dumps({"kind": "manifest"}).encode())
    tag = _api(base_url, "GET", f"/api/v1/modules/{serial}/tag?format=json", floor)["uri"]
    pickup = {
        "codes": [tag],
        "kind": "pickup",
        "party": "Jan Novak",
        "organisation": "Elbe Haulage",
        "place": "CZPAR1",
        "seals": [{"container": "CSQU3054383", "seal": "CZ-9999"}],  # not the seal recorded
    }
    _api(base_url, "POST", f"/api/v1/shipments/{ref}/handoffs", floor, json.dumps(pickup).encode())

    login(page, base_url, "planner")
    page.get_by_role("link", name="Shipments").click()
    page.get_by_role("link", name=ref).click()
    expect(page.get_by_role("heading", name=ref)).to_be_visible()
    expect(page.get_by_test_id("flag").first).to_contain_text("CZ-9999")
    expect(page.get_by_test_id("timeline").locator(".timeline-row")).to_have_count(
        len(_api(base_url, "GET", f"/api/v1/shipments/{ref}", planner)["legs"])
    )
    expect(page.get_by_test_id("shipment-map").locator("polyline").first).to_be_attached()
    expect(page.get_by_test_id("custody")).to_contain_text("Elbe Haulage")
    expect(page.get_by_test_id("custody")).to_contain_text("seal mismatch")
    link = page.get_by_test_id("documents").get_by_role("link", name=f"{ref}-MAN")
    expect(link).to_be_visible()
    pdf = page.request.get(f"{base_url}{link.get_attribute('href')}")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    screenshot(page, tmp_path / "shipment.png")
