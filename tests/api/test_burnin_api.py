"""Burn-in runs through the API: telemetry as nvidia-smi prints it, DCGM and Xid evidence, verdicts
that move the module, refusals that keep nothing, and the report PDF."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]
DATA = Path(__file__).resolve().parents[1] / "data"
HEADER = (
    "timestamp, index, uuid, serial, temperature.gpu, power.draw [W], clocks.current.sm [MHz], utilization.gpu [%], "
    "ecc.errors.uncorrected.volatile.total, remapped_rows.failure, clocks_event_reasons.hw_thermal_slowdown"
)


def telemetry(gpus: int, seconds: int, *, start_s: int = 0, hot: int | None = None, header: bool = True) -> bytes:
    """What `nvidia-smi --query-gpu=... --format=csv -l 1` prints for a healthy (or one hot) module."""
    t0 = dt.datetime(2026, 11, 20, 10, 0, 0)
    lines = [HEADER] if header else []
    for s in range(start_s, start_s + seconds):
        stamp = (t0 + dt.timedelta(seconds=s)).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
        for g in range(gpus):
            is_hot = g == hot
            slowdown = "Active" if is_hot and s % 10 == 0 else "Not Active"
            lines.append(
                f"{stamp}, {g}, GPU-{g:08x}-aaaa-bbbb-cccc-{g:012x}, {1654722010000 + g}, {90 if is_hot else 64}, "
                f"{695.5 - g * 0.1:.2f} W, {1980 - (g % 3)} MHz, 100 %, 0, No, {slowdown}"
            )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def app(demo_url: str, tmp_path: Path) -> Litestar:
    return create_app(make_settings(demo_url, tmp_path, burn_in_rules=DATA / "burnin" / "rules-short-soak.toml"))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def dcgm() -> bytes:
    """What `dcgmi diag -r 3 -j` prints (DCGM 3.x, all passing), from the fake used by the agent tests."""
    return subprocess.run(
        [str(DATA / "fakebin" / "dcgmi"), "diag", "-r", "3", "-j"], capture_output=True, check=True
    ).stdout


async def _assembled(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    module = (await client.get("/api/v1/modules?state=assembled&limit=1", headers=headers)).json()["items"][0]
    spec = (await client.get(f"/api/v1/specs/{module['spec']}", headers=headers)).json()
    return {**module, "gpus": spec["gpu_count"]}


async def _start(client: Client, headers: dict[str, str], serial: str) -> int:
    response = await client.post(
        f"/api/v1/modules/{serial}/burn-in-runs", json={"station": "TWKHH1-BRN-01"}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "burn_in"
    return int(response.json()["id"])


async def _csv(client: Client, headers: dict[str, str], run: int, body: bytes) -> Any:
    return await client.post(
        f"/api/v1/burn-in-runs/{run}/telemetry", content=body, headers={**headers, "Content-Type": "text/csv"}
    )


async def test_healthy_run_passes_and_moves_the_module(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    first = await _csv(client, floor, run, telemetry(module["gpus"], 200))
    assert first.status_code == 201, first.text
    assert first.json()["rows"] == module["gpus"] * 200
    second = await _csv(client, floor, run, telemetry(module["gpus"], 200, start_s=200))
    assert second.status_code == 201
    done = await client.post(f"/api/v1/burn-in-runs/{run}/finish", headers=floor)
    assert done.status_code == 200, done.text
    verdict = done.json()
    assert verdict["verdict"] == "pass", verdict
    assert verdict["rules_version"] == "test-short-soak"
    assert len(verdict["gpus"]) == module["gpus"]
    after = (await client.get(f"/api/v1/modules/{module['serial']}", headers=floor)).json()
    assert after["state"] == "burn_in_passed"
    types = [e["type"] for e in (await client.get(f"/api/v1/modules/{module['serial']}/events", headers=floor)).json()]
    assert types[-1] == "lifecycle.pass_burn_in"
    assert types.count("burnin.telemetry_recorded") == 2
    assert types.index("lifecycle.start_burn_in") < types.index("burnin.run_started")
    run_read = (await client.get(f"/api/v1/burn-in-runs/{run}", headers=floor)).json()
    assert run_read["status"] == "finished"
    assert run_read["telemetry_rows"] == module["gpus"] * 400
    assert_problem(await _csv(client, floor, run, telemetry(2, 5)), 409, "finished")


async def test_hot_gpu_fails_the_run_with_reasons_and_routes_to_rework(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    assert (await _csv(client, floor, run, telemetry(module["gpus"], 400, hot=3))).status_code == 201
    verdict = (await client.post(f"/api/v1/burn-in-runs/{run}/finish", headers=floor)).json()
    assert verdict["verdict"] == "fail"
    gpu3 = next(g for g in verdict["gpus"] if g["index"] == 3)
    assert gpu3["verdict"] == "fail"
    assert any(
        re.search(r"GPU 3 \(GPU-00000003-.*\): hw_thermal_slowdown active 10\.0 % of samples > 1\.0 %", r)
        for r in gpu3["reasons"]
    ), gpu3["reasons"]
    assert any("max temperature 90 °C > 87 °C" in r for r in gpu3["reasons"])
    assert all(g["verdict"] == "pass" for g in verdict["gpus"] if g["index"] != 3)
    after = (await client.get(f"/api/v1/modules/{module['serial']}", headers=floor)).json()
    assert after["state"] == "burn_in_failed"
    events = (await client.get(f"/api/v1/modules/{module['serial']}/events", headers=floor)).json()
    assert events[-1]["payload"]["reason"].startswith(f"burn-in run {run} failed: GPU 3 (")
    assert "(+1 more)" in events[-1]["payload"]["reason"]


async def test_short_run_and_missing_gpus_fail(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    await _csv(client, floor, run, telemetry(module["gpus"] - 1, 90))
    verdict = (await client.post(f"/api/v1/burn-in-runs/{run}/finish", headers=floor)).json()
    assert verdict["verdict"] == "fail"
    assert "soak 0:01:29 < minimum 0:05:00" in verdict["reasons"]
    assert f"{module['gpus'] - 1} GPUs reported telemetry; the spec has {module['gpus']}" in verdict["reasons"]


async def test_malformed_telemetry_is_refused_and_nothing_kept(client: Client, app: Litestar) -> None:
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    good = telemetry(2, 3).decode().splitlines()
    good[4] = good[4].replace("695.40 W", "69x.4 W").replace("695.50 W", "69x.5 W")
    bad = ("\n".join(good) + "\n").encode()
    problem = assert_problem(await _csv(client, floor, run, bad), 400, "line 5")
    assert problem["line"] == 5
    store = Path(app.state.settings.var_dir) / "files" / "sha256"
    assert not [p for p in store.rglob("*") if p.is_file()] if store.exists() else True
    read = (await client.get(f"/api/v1/burn-in-runs/{run}", headers=floor)).json()
    assert read["telemetry_rows"] == 0
    assert read["telemetry_uploads"] == 0
    unknown = HEADER.replace("temperature.gpu", "temprature.gpu").encode() + b"\n"
    assert_problem(await _csv(client, floor, run, unknown), 400, "temprature.gpu")


async def test_dcgm_and_xid_evidence(client: Client, dcgm: bytes) -> None:
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    await _csv(client, floor, run, telemetry(module["gpus"], 400))
    receipt = await client.post(
        f"/api/v1/burn-in-runs/{run}/dcgm", content=dcgm, headers={**floor, "Content-Type": "application/json"}
    )
    assert receipt.status_code == 201, receipt.text
    log = b"[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1896, name=python3, GPU has fallen off the bus.\n"
    xid = await client.post(
        f"/api/v1/burn-in-runs/{run}/xid", content=b"noise\n" + log, headers={**floor, "Content-Type": "text/plain"}
    )
    assert xid.status_code == 201, xid.text
    assert xid.json()["rows"] == 1
    broken = await client.post(
        f"/api/v1/burn-in-runs/{run}/dcgm",
        content=b'{"DCGM GPU Diagnostic": [\n',
        headers={**floor, "Content-Type": "application/json"},
    )
    assert_problem(broken, 400, "line")
    verdict = (await client.post(f"/api/v1/burn-in-runs/{run}/finish", headers=floor)).json()
    assert verdict["verdict"] == "fail"
    assert any(r.startswith("Xid 79 on PCI:0000:3b:00") for r in verdict["reasons"]), verdict["reasons"]
    read = (await client.get(f"/api/v1/burn-in-runs/{run}", headers=floor)).json()
    assert read["dcgm_level"] == 3
    assert read["xid_count"] == 1


async def test_burn_in_passed_needs_a_passing_run(client: Client, admin: dict[str, str]) -> None:
    module = (await client.get("/api/v1/modules?state=burn_in&limit=1", headers=admin)).json()["items"][0]
    url = f"/api/v1/modules/{module['serial']}/transitions"
    assert_problem(await client.post(url, json={"transition": "pass_burn_in"}, headers=admin), 422, "burn_in_passed")
    waived = {"transition": "pass_burn_in", "waivers": {"burn_in_passed": "the customer said it is fine"}}
    assert_problem(await client.post(url, json=waived, headers=admin), 422, "cannot be waived")
    auditor = await bearer(client, "auditor")
    assert_problem(await client.post(f"/api/v1/modules/{module['serial']}/burn-in-runs", headers=auditor), 403)
    planned = (await client.get("/api/v1/modules?state=planned&limit=1", headers=admin)).json()["items"][0]
    assert_problem(
        await client.post(f"/api/v1/modules/{planned['serial']}/burn-in-runs", headers=admin),
        409,
        "assembled or burn_in",
    )


async def test_report_pdf_reads_back(client: Client) -> None:
    pypdf = pytest.importorskip("pypdf")
    floor = await bearer(client, "floor")
    module = await _assembled(client, floor)
    run = await _start(client, floor, module["serial"])
    await _csv(client, floor, run, telemetry(module["gpus"], 400, hot=1))
    verdict = (await client.post(f"/api/v1/burn-in-runs/{run}/finish", headers=floor)).json()
    response = await client.get(f"/api/v1/burn-in-runs/{run}/report.pdf", headers=floor)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    text = " ".join(
        "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages).split()
    )
    assert module["serial"] in text
    assert "FAIL" in text
    assert "test-short-soak" in text
    for gpu in verdict["gpus"]:
        for reason in gpu["reasons"]:
            assert " ".join(reason.split()) in text, reason


async def test_oversized_upload_is_refused_and_nothing_kept(demo_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(demo_url, tmp_path, max_upload_bytes=64 * 1024))
    async with AsyncTestClient(app=app) as client:
        floor = await bearer(client, "floor")
        module = await _assembled(client, floor)
        run = await _start(client, floor, module["serial"])
        big = telemetry(module["gpus"], 200)
        assert len(big) > 64 * 1024
        assert_problem(await _csv(client, floor, run, big), 413, "exceeds")
        read = (await client.get(f"/api/v1/burn-in-runs/{run}", headers=floor)).json()
        assert read["telemetry_rows"] == 0
        store = tmp_path / "var" / "files"
        assert not [p for p in store.rglob("*") if p.is_file()] if store.exists() else True
        # The run still takes a proper upload afterwards.
        assert (await _csv(client, floor, run, telemetry(2, 3))).status_code == 201
