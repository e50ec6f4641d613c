"""The field checklist in a real browser with the network taken away: answers (one with a photo) are
kept on the device, survive a reload with no network, and are stored once when the network returns.
The field pages pass axe-core's checks for serious accessibility violations."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser.conftest import login, screenshot, serious_accessibility_violations
from tests.browser.test_pages import _api, _token


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 90, 160)).save(out, format="PNG")
    return out.getvalue()


def _offline(context: BrowserContext, on: bool) -> None:
    """No network for the pages nor for their service worker (set_offline alone misses the worker)."""

    def worker_has_no_network(route: Route) -> None:
        if route.request.service_worker is not None:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    if on:
        context.set_offline(True)
        context.route("**/*", worker_has_no_network)
    else:
        context.unroute("**/*")
        context.set_offline(False)


def _setup(base_url: str) -> tuple[str, dict[str, Any], str]:
    engineer = _token(base_url, "engineer")
    serial = _api(base_url, "GET", "/api/v1/modules?state=delivered&spec=L4-EDGE-20&limit=1", engineer)["items"][0][
        "serial"
    ]
    body = json.dumps({"transition": "start_commissioning"}).encode()
    _api(base_url, "POST", f"/api/v1/modules/{serial}/transitions", engineer, body)
    run = _api(
        base_url,
        "POST",
        f"/api/v1/modules/{serial}/checklists",
        engineer,
        json.dumps({"template": "delivery-inspection"}).encode(),
    )
    return serial, run, engineer


def test_checklist_answers_survive_offline_and_sync_once(
    page: Page, context: BrowserContext, base_url: str, tmp_path: Path
) -> None:
    serial, run, token = _setup(base_url)
    items = [i for s in run["template"]["sections"] for i in s["items"] if i["id"] in run["visible"]]
    yes_no = next(i for i in items if i["kind"] == "yes_no" and i.get("ok") is not None)
    text = next(i for i in items if i["kind"] == "text")
    photo = next(i for i in items if i["kind"] == "photo")

    login(page, base_url, "engineer")
    page.goto(f"{base_url}/field/checklists/{run['id']}")
    expect(page.get_by_test_id("checklist-body").locator("fieldset.item").first).to_be_visible()
    # the worker controls the page and this page is in its cache before the network goes
    # Functions, not expression strings: Playwright evals strings inside the page, which afm's CSP refuses.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    page.wait_for_function(
        "() => caches.open('afm-field-v1').then(c => c.match(location.href)).then(r => !!r)",
        polling=200,
        timeout=15_000,
    )

    _offline(context, True)
    expect(page.get_by_test_id("network")).to_contain_text("Offline")
    ok_label = "Yes" if yes_no["ok"] else "No"
    page.locator(f"fieldset[data-item='{yes_no['id']}']").get_by_text(ok_label, exact=True).click()
    page.locator(f"fieldset[data-item='{text['id']}'] input[name='v-{text['id']}']").fill("seal SL-448812")
    page.locator(f"fieldset[data-item='{text['id']}'] input[name='v-{text['id']}']").press("Tab")
    page.locator(f"fieldset[data-item='{photo['id']}'] input[type=file]").set_input_files(
        files=[{"name": "side-a.png", "mimeType": "image/png", "buffer": _png()}]
    )
    expect(page.get_by_test_id("pending")).to_have_text("3 answers waiting to be sent")

    page.reload()  # still offline: the worker serves the page, IndexedDB the answers
    expect(page.get_by_test_id("pending")).to_have_text("3 answers waiting to be sent")
    expect(page.locator(f"fieldset[data-item='{text['id']}'] input[name='v-{text['id']}']")).to_have_value(
        "seal SL-448812"
    )
    expect(page.locator(f"fieldset[data-item='{photo['id']}']")).to_contain_text("Photo waiting to be sent")
    screenshot(page, tmp_path / "checklist-offline.png")

    _offline(context, False)
    page.evaluate("window.dispatchEvent(new Event('online'))")  # what the device does when the network returns
    expect(page.get_by_test_id("pending")).to_be_hidden(timeout=20_000)
    expect(page.locator(f"fieldset[data-item='{yes_no['id']}']")).to_contain_text("Saved v1")

    stored = _api(base_url, "GET", f"/api/v1/checklist-runs/{run['id']}", token)
    answers = {a["item"]: a for a in stored["answers"]}
    assert answers[text["id"]]["value"] == "seal SL-448812" and answers[text["id"]]["version"] == 1
    assert answers[yes_no["id"]]["value"] is yes_no["ok"]
    assert len(answers[photo["id"]]["value"]) == 64  # the photo's SHA-256, kept in the evidence store
    events = _api(base_url, "GET", f"/api/v1/modules/{serial}/events", token)
    answered = [e["payload"]["item"] for e in events if e["type"] == "checklist.answered"]
    assert sorted(answered) == sorted([yes_no["id"], text["id"], photo["id"]])  # each stored once
    page.reload()
    expect(page.get_by_test_id("pending")).to_be_hidden()


def test_field_pages_have_no_serious_accessibility_violations(page: Page, base_url: str, axe_source: str) -> None:
    token = _token(base_url, "engineer")
    module = _api(base_url, "GET", "/api/v1/modules?state=commissioning&limit=1", token)["items"][0]
    login(page, base_url, "engineer")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone, held in one hand
    page.goto(f"{base_url}/field?site={module['site']}")
    expect(page.get_by_test_id("field-modules")).to_contain_text(module["serial"])
    assert serious_accessibility_violations(page, axe_source) == []
    page.get_by_role("link", name=module["serial"]).first.click()
    expect(page.get_by_test_id("next")).to_be_visible()
    assert serious_accessibility_violations(page, axe_source) == []
    status = _api(base_url, "GET", f"/api/v1/modules/{module['serial']}/commissioning", token)
    started = next((c for c in status["checklists"] if c["run"]), None)
    if started is None:
        page.locator(f"button[data-start='{status['checklists'][0]['template']}']").click()
    else:
        page.goto(f"{base_url}/field/checklists/{started['run']}")
    expect(page.get_by_test_id("checklist-body").locator("fieldset.item").first).to_be_visible()
    assert serious_accessibility_violations(page, axe_source) == []
