"""The server-rendered pages in a real browser: sign-in, the htmx-filtered modules list, a module's
detail, the phone layout, sign-out and read-only access. Each test leaves a full-page screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.factory.pages import PAGE_SIZE

from .conftest import login, screenshot, watch_console

pytestmark = pytest.mark.browser

# The demo fleet (fixtures/demo/modules.toml): 60 modules, 18 of them in service.
DEMO_TOTAL = 60
DEMO_IN_SERVICE = 18
UNIQUE_FRAGMENT = "24-000107"  # matches only AFM-24-000107
UNIQUE_SERIAL = "AFM-24-000107"


def _login_url(base_url: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"{base_url}/login") + r"(\?.*)?$")


def _login_redirect(base_url: str, target: str) -> re.Pattern[str]:
    """/login?next=<target>, the target plain or percent-encoded."""
    encoded = re.escape(target).replace("/", "(?:/|%2F)")
    return re.compile(re.escape(f"{base_url}/login?next=") + encoded + "$")


def test_login_required_and_wrong_password(page: Page, base_url: str, tmp_path: Path) -> None:
    page.goto(f"{base_url}/modules")
    expect(page).to_have_url(_login_redirect(base_url, "/modules"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.locator("input[name=username]").fill("planner")
    page.locator("input[name=password]").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_have_text("wrong username or password")
    expect(page).to_have_url(_login_url(base_url))
    expect(page.locator("input[name=username]")).to_have_value("planner")
    expect(page.get_by_test_id("who")).to_have_count(0)
    screenshot(page, tmp_path / "login-error.png")


def test_sign_in_lands_on_modules(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "planner")

    expect(page).to_have_url(f"{base_url}/modules")
    expect(page.get_by_role("heading", name="Modules", exact=True)).to_be_visible()
    expect(page.get_by_test_id("module-count")).to_have_text(f"{DEMO_TOTAL} modules")
    expect(page.get_by_test_id("who")).to_have_text("planner · planner")
    expect(page.locator("#module-table tbody tr")).to_have_count(PAGE_SIZE)  # first page of three
    screenshot(page, tmp_path / "modules.png")


def test_filters_swap_the_table_without_reload(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "planner")
    count = page.get_by_test_id("module-count")
    expect(count).to_have_text(f"{DEMO_TOTAL} modules")
    page.wait_for_load_state("load")  # htmx (deferred script) is wired up
    page.evaluate("window.__afmNoReload = true")  # lost if the page were reloaded

    page.get_by_label("State").select_option(label="In service")
    expect(count).to_have_text(f"{DEMO_IN_SERVICE} modules")
    expect(page).to_have_url(re.compile(r"[?&]state=in_service(&|$)"))
    rows = page.locator("#module-table tbody tr")
    expect(rows).to_have_count(DEMO_IN_SERVICE)
    expect(rows.locator(".badge").filter(has_not_text="In service")).to_have_count(0)
    assert page.evaluate("window.__afmNoReload") is True, "the filter reloaded the whole page"
    screenshot(page, tmp_path / "filter-state.png")

    page.get_by_label("State").select_option(value="")
    expect(count).to_have_text(f"{DEMO_TOTAL} modules")
    page.get_by_label("Search serial").press_sequentially(UNIQUE_FRAGMENT, delay=20)
    expect(count).to_have_text("1 module")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link")).to_have_text(UNIQUE_SERIAL)
    expect(page).to_have_url(re.compile(rf"[?&]q={UNIQUE_FRAGMENT}(&|$)"))
    assert page.evaluate("window.__afmNoReload") is True, "the search reloaded the whole page"
    screenshot(page, tmp_path / "filter-search.png")


def test_module_detail(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "engineer")
    link = page.locator("#module-table tbody tr a").first
    serial = link.inner_text().strip()
    assert re.fullmatch(r"AFM-\d{2}-\d{6}", serial), serial
    link.click()

    expect(page).to_have_url(f"{base_url}/modules/{serial}")
    expect(page.locator("h1")).to_contain_text(serial)
    expect(page.locator("h1 .badge")).to_be_visible()
    expect(page.get_by_test_id("location")).to_be_visible()
    expect(page.get_by_test_id("location")).not_to_be_empty()
    expect(page.get_by_role("heading", name="Parts")).to_be_visible()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    events = page.get_by_test_id("timeline").locator("li")
    expect(events.first).to_be_visible()
    expect(events.filter(has_text="→").first).to_be_visible()
    # The demo histories are real transitions: registered first, at the bottom of the factory build
    # chapter; each deployment to a site is a chapter of its own, newest open on top.
    chapters = page.get_by_test_id("chapter")
    build = chapters.last
    expect(build).to_contain_text("Factory build")
    if build.get_attribute("open") is None:
        build.locator("summary").click()
    expect(build.locator("li").last).to_contain_text("Registered")
    if chapters.count() > 1:
        expect(chapters.first).to_contain_text("Deployment")
    screenshot(page, tmp_path / "detail.png")


def test_modules_list_fits_a_phone(browser: Browser, base_url: str, tmp_path: Path) -> None:
    context = browser.new_context(
        base_url=base_url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        errors = watch_console(page)
        login(page, base_url, "floor")
        expect(page.get_by_test_id("module-count")).to_have_text(f"{DEMO_TOTAL} modules")
        expect(page.get_by_label("State")).to_be_visible()
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, f"horizontal overflow on a phone: scrollWidth/innerWidth = {width}"
        screenshot(page, tmp_path / "modules-phone.png")

        page.locator("#module-table tbody tr a").first.click()
        expect(page.get_by_test_id("timeline")).to_be_visible()
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, f"detail page overflows on a phone: scrollWidth/innerWidth = {width}"
        screenshot(page, tmp_path / "detail-phone.png")
        assert not errors, "errors in the browser console:\n" + "\n".join(errors)
    finally:
        context.close()


def test_sign_out(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "admin")
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(_login_url(base_url))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, tmp_path / "signed-out.png")

    page.goto(f"{base_url}/modules")
    expect(page).to_have_url(_login_redirect(base_url, "/modules"))
    expect(page.get_by_test_id("who")).to_have_count(0)


def test_auditor_can_read_the_list(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "auditor")

    expect(page.get_by_test_id("who")).to_have_text("auditor · auditor")
    expect(page.get_by_test_id("module-count")).to_have_text(f"{DEMO_TOTAL} modules")
    page.wait_for_load_state("load")
    page.get_by_label("State").select_option("in_service")
    expect(page.get_by_test_id("module-count")).to_have_text(f"{DEMO_IN_SERVICE} modules")
    page.locator("#module-table tbody tr a").first.click()
    expect(page.get_by_test_id("timeline").locator("li").first).to_be_visible()
    screenshot(page, tmp_path / "auditor.png")


def test_take_a_transition_on_the_module_page(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "engineer")
    page.goto(f"{base_url}/modules?state=validating")
    page.locator("#module-table tbody tr a").first.click()
    expect(page.locator("h1 .badge")).to_have_text("Validating")
    actions = page.get_by_test_id("actions")
    hold = actions.locator("form", has=page.locator("button[data-transition=hold]"))
    hold.locator("input[name=reason]").fill("Coolant loop pressure drop on the east manifold")
    hold.get_by_role("button").click()
    expect(page.locator("h1 .badge")).to_have_text("On hold")
    newest = page.get_by_test_id("timeline").locator("li").first
    expect(newest).to_contain_text("Hold")
    expect(newest).to_contain_text("Validating → On hold")
    expect(newest).to_contain_text("Coolant loop pressure drop")
    # Releasing is for admins: the engineer is not offered it.
    expect(page.locator("button[data-transition=release]")).to_have_count(0)
    screenshot(page, tmp_path / "held.png")


def test_guard_refusal_is_explained(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "engineer")
    page.goto(f"{base_url}/modules?state=commissioning")
    page.locator("#module-table tbody tr a").first.click()
    page.locator("button[data-transition=start_validation]").click()
    error = page.get_by_test_id("action-error")
    expect(error).to_contain_text("guard checklist_signed")
    expect(page.locator("h1 .badge")).to_have_text("Commissioning")
    screenshot(page, tmp_path / "refused.png")


def test_lifecycle_diagram(page: Page, base_url: str, tmp_path: Path) -> None:
    from app.core.definitions import load_lifecycle

    lifecycle = load_lifecycle()
    login(page, base_url, "auditor")
    page.get_by_role("link", name="Lifecycle").click()
    diagram = page.get_by_test_id("lifecycle-diagram").locator("svg")
    expect(diagram).to_be_visible()
    states = diagram.locator("g.state")
    expect(states).to_have_count(len(lifecycle.states))
    for state in lifecycle.states:
        rect = diagram.locator(f'g.state[data-state="{state.id}"] rect')
        assert rect.get_attribute("fill") == state.color
        expect(diagram.locator(f'g.state[data-state="{state.id}"]')).to_contain_text(state.label)
    screenshot(page, tmp_path / "lifecycle.png")


def _api(
    base_url: str,
    method: str,
    path: str,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> dict:
    import json
    import urllib.request

    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base_url + path, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _token(base_url: str, username: str) -> str:
    import json

    body = json.dumps({"username": username, "password": "demo"}).encode()
    return str(_api(base_url, "POST", "/api/v1/auth/token", body=body)["access_token"])


def test_station_scan_installs_parts(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, base_url, "floor")
    page.get_by_role("link", name="Stations").click()
    page.locator("a[href$='-ASM-01']").first.click()
    token = _token(base_url, "floor")
    serial = _api(base_url, "GET", "/api/v1/modules?state=assembling&limit=1", token)["items"][0]["serial"]
    tag = _api(base_url, "GET", f"/api/v1/modules/{serial}/tag?format=json", token)["uri"]
    page.get_by_label("Module serial").fill(tag)  # the module's QR tag, as the scanner types it
    page.get_by_label("Module serial").press("Enter")  # a keyboard-wedge scanner ends with Enter
    bom = page.get_by_test_id("bom")
    expect(bom).to_be_visible()
    part_serial = f"SCAN-{serial}-0001"
    page.get_by_label("Part serial").fill(part_serial)
    page.get_by_label("Part serial").press("Enter")
    outcome = page.get_by_test_id("scan-outcome")
    expect(outcome).to_contain_text("Installed")
    expect(outcome).to_contain_text(part_serial)
    expect(outcome).to_have_class(re.compile("scan-ok"))
    expect(page.get_by_label("Part serial")).to_be_focused()  # ready for the next scan
    screenshot(page, tmp_path / "station-ok.png")
    page.get_by_label("Part serial").fill(part_serial)  # the same part again: it is in this module now
    page.get_by_label("Part serial").press("Enter")
    expect(outcome).to_have_class(re.compile("scan-bad"))
    expect(outcome).to_contain_text(f"is installed in {serial}")
    screenshot(page, tmp_path / "station-bad.png")


def test_burn_in_run_page_shows_gpus_and_verdict(page: Page, base_url: str, tmp_path: Path) -> None:
    token = _token(base_url, "floor")
    serial = _api(base_url, "GET", "/api/v1/modules?state=burn_in&limit=1", token)["items"][0]["serial"]
    run = _api(base_url, "POST", f"/api/v1/modules/{serial}/burn-in-runs", token, b"{}")["id"]
    lines = ["timestamp, index, uuid, temperature.gpu, power.draw [W], clocks.sm [MHz], utilization.gpu [%]"]
    for s in range(60):
        for g in range(2):
            lines.append(
                f"2026/11/20 10:00:{s:02d}.000, {g}, GPU-{g:08x}-aaaa-bbbb-cccc-{g:012x}, 6{g}, 690.00 W, "
                f"1980 MHz, 100 %"
            )
    _api(
        base_url, "POST", f"/api/v1/burn-in-runs/{run}/telemetry", token, ("\n".join(lines) + "\n").encode(), "text/csv"
    )
    login(page, base_url, "floor")
    page.goto(f"{base_url}/burn-in-runs/{run}")
    expect(page.get_by_test_id("verdict")).to_have_text("RUNNING")
    expect(page.get_by_test_id("gpus").locator("tbody tr")).to_have_count(2)
    screenshot(page, tmp_path / "run-running.png")
    verdict = _api(base_url, "POST", f"/api/v1/burn-in-runs/{run}/finish", token)
    assert verdict["verdict"] == "fail"  # one minute of telemetry is no 4 h soak
    page.reload()
    expect(page.get_by_test_id("verdict")).to_have_text("FAIL")
    expect(page.get_by_test_id("reasons")).to_contain_text("soak 0:00:59 < minimum 4:00:00")
    expect(page.get_by_role("link", name="Report (PDF)")).to_be_visible()
    screenshot(page, tmp_path / "run-finished.png")
