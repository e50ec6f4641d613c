"""Browser tests: a real `afm serve` on a free port with the demo fleet, driven by Debian's chromium.

Run on their own (pytest-playwright's sync fixtures must not share a process with asyncio tests):

    python -m pytest tests/browser -q
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Response, expect

# Service workers' own requests are routable only with this (microsoft/playwright#2311): the offline
# checklist test aborts them to take the network away from the worker too, as context.set_offline
# alone does not. Set before pytest-playwright starts its driver.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"  # axe-core from the npm registry, injected into pages by the accessibility checks
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"
AFM = Path(sys.executable).parent / "afm"
DEMO_PASSWORD = "demo"
STARTUP_TIMEOUT_S = 30.0


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must install Debian chromium ({CHROMIUM} is missing): apt-get install -y chromium")
    reason = f"Debian chromium not installed ({CHROMIUM} is missing): apt-get install -y chromium"
    print(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _afm(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run([str(AFM), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"`afm {' '.join(args)}` exited {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def afm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate a fresh SQLite database, load the demo fleet, serve it; yields the base URL."""
    _require_chromium()
    if not AFM.exists():
        pytest.fail(f"the afm command is missing at {AFM}; install the project: pip install -e '.[test]'")
    var_dir = tmp_path_factory.mktemp("afm-var")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFM_")}  # no stray DB URL or config
    env.update(
        AFM_VAR_DIR=str(var_dir),
        AFM_PORT=str(port),
        AFM_HOST="127.0.0.1",
        AFM_LOG_LEVEL="warning",
        AFM_CONFIG=str(var_dir / "afm.toml"),  # absent on purpose: defaults + environment only
    )
    _afm(["db", "upgrade"], env, var_dir)
    _afm(["demo", "load"], env, var_dir)

    base_url = f"http://127.0.0.1:{port}"
    log_path = var_dir / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(AFM), "serve"], env=env, cwd=var_dir, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(f"{base_url}/healthz"):
            if proc.poll() is not None:
                pytest.fail(f"afm serve exited {proc.returncode} before it was healthy:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"afm serve not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def base_url(afm_server: str) -> str:
    """Relative `page.goto("/modules")` resolves against the test server."""
    return afm_server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    _require_chromium()
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def watch_console(page: Page) -> list[str]:
    """Collect JavaScript errors, console errors and failed sub-requests (htmx swaps, CSS, scripts).

    A document's own status is the test's business (a wrong password answers 401 by design), as is a
    4xx problem answer to a script's fetch; the browser's automatic /favicon.ico probe is not a page
    request. None of those is collected.
    """
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(f"console.error: {msg.text} ({msg.location.get('url', '?')})")

    def on_response(response: Response) -> None:
        request = response.request
        expected = request.resource_type == "document" or request.url.endswith("/favicon.ico")
        # A 4xx problem answer to the page's own fetch (a refused scan) is shown to the user by design.
        problem = response.headers.get("content-type", "").startswith("application/problem+json")
        expected = expected or (request.resource_type == "fetch" and problem and response.status < 500)
        if response.status >= 400 and not expected:
            errors.append(f"{request.method} {request.url} ({request.resource_type}) -> {response.status}")

    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", on_console)
    page.on("response", on_response)
    return errors


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """pytest-playwright's page, failing the test on any JavaScript or console error."""
    page = context.new_page()
    errors = watch_console(page)
    yield page
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def login(page: Page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login form and wait for the modules list."""
    page.goto(f"{base_url}/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/modules")
    expect(page.get_by_test_id("who")).to_contain_text(username)


def screenshot(page: Page, path: Path) -> Path:
    """A full-page screenshot; asserts a real image was written, not an empty file."""
    page.screenshot(path=path, full_page=True)
    assert path.is_file(), f"no screenshot at {path}"
    size = path.stat().st_size
    assert size > 5_000, f"screenshot {path} is only {size} bytes; the page probably did not render"
    return path


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from the npm registry into .cache/npm on first use."""
    script = NPM_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            reason = "npm is not installed: the accessibility checks need axe-core from the npm registry"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(NPM_CACHE),
                "--no-save",
                "--no-audit",
                "--no-fund",
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not script.exists():
            pytest.fail(f"npm install axe-core@{AXE_VERSION} failed:\n{done.stdout}\n{done.stderr}")
    return script.read_text(encoding="utf-8")


def serious_accessibility_violations(page: Page, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    page.evaluate(axe_source)  # not add_script_tag: afm's CSP refuses inline scripts, DevTools evaluation is exempt
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(n['target'][0] for n in v['nodes'][:3])}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
