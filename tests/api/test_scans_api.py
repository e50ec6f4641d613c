"""Scans through the API: signed tags resolve, forged ones are refused, actions go through the engine,
replays and offline batches record each scan once, and phone photos are decoded on the server."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import pytest
import qrcode
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image, ImageFilter

from app.asgi import create_app
from app.tags import payload
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]


async def _module(client: Client, headers: dict[str, str], state: str) -> dict[str, Any]:
    return (await client.get(f"/api/v1/modules?state={state}&limit=1", headers=headers)).json()["items"][0]


async def _tag(client: Client, headers: dict[str, str], serial: str) -> str:
    response = await client.get(f"/api/v1/modules/{serial}/tag?format=uri", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def _events(client: Client, headers: dict[str, str], serial: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/v1/modules/{serial}/events", headers=headers)).json()


async def test_scan_records_a_ledger_event(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "in_service")
    uri = await _tag(client, floor, module["serial"])
    assert uri.startswith(f"http://127.0.0.1:8000/8004/0614141{module['serial']}?91=K1.")
    before = await _events(client, floor, module["serial"])
    response = await client.post("/api/v1/scans", json={"code": uri + "\r\n"}, headers=floor)
    assert response.status_code == 201, response.text
    scan = response.json()
    assert scan["asset"] == {
        "kind": "module",
        "identifier": f"(8004)0614141{module['serial']}",
        "serial": module["serial"],
        "description": scan["asset"]["description"],
        "state": "in_service",
        "state_label": scan["asset"]["state_label"],
        "module": None,
    }
    assert scan["recorded"] == ["scan.recorded"] and scan["transition"] is None
    assert scan["id"] is None and scan["event"]["module"] == module["serial"]
    after = await _events(client, floor, module["serial"])
    assert len(after) == len(before) + 1
    assert after[-1]["type"] == "scan.recorded" and after[-1]["payload"]["key_id"] == "K1"
    audit = await client.get(f"/api/v1/audit/verify?module={module['serial']}", headers=await bearer(client, "admin"))
    assert audit.json()["ok"] is True


async def test_altered_or_unsigned_codes_are_refused_and_change_nothing(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "in_service")
    uri = await _tag(client, floor, module["serial"])
    before = await _events(client, floor, module["serial"])
    last = uri[-1]
    altered = uri[:-1] + ("A" if last != "A" else "B")
    assert_problem(await client.post("/api/v1/scans", json={"code": altered}, headers=floor), 422, "forged")
    assert_problem(
        await client.post("/api/v1/scans", json={"code": uri.split("?")[0]}, headers=floor), 422, "no signature"
    )
    other = uri.replace("127.0.0.1:8000", "evil.example")
    assert_problem(await client.post("/api/v1/scans", json={"code": other}, headers=floor), 422, "not a resolver")
    assert await _events(client, floor, module["serial"]) == before
    # Element-string form of the same tag, as a GS1-aware scanner sends it, is accepted.
    ident, sig = uri.split("/8004/")[1].split("?91=")
    response = await client.post("/api/v1/scans", json={"code": f"(8004){ident}(91){sig}"}, headers=floor)
    assert response.status_code == 201, response.text


async def test_station_action_moves_the_module_through_the_engine(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "planned")
    uri = await _tag(client, floor, module["serial"])
    response = await client.post("/api/v1/scans", json={"code": uri, "station": "TWKHH1-ASM-01"}, headers=floor)
    assert response.status_code == 201, response.text
    scan = response.json()
    assert scan["transition"] == "start_assembly"
    assert (scan["from_state"], scan["to_state"]) == ("planned", "assembling")
    assert scan["recorded"] == ["scan.recorded", "lifecycle.start_assembly"]
    assert "Planned → Assembling" in scan["message"] or "→" in scan["message"]
    # The guard holds: completing assembly without the BOM is refused, and the scan is not recorded either.
    before = await _events(client, floor, module["serial"])
    refused = await client.post("/api/v1/scans", json={"code": uri, "action": "complete_assembly"}, headers=floor)
    assert_problem(refused, 422, "bom_complete")
    assert await _events(client, floor, module["serial"]) == before
    # A part scanned at the same station is recorded in its module's ledger; the station's action is
    # for modules.
    part = next(p for p in (await client.get("/api/v1/parts?limit=50", headers=floor)).json()["items"] if p["module"])
    settings: Any = client.app.state.settings
    keys = payload.Keyring(keys={settings.tag_key_id: settings.tag_key.encode()}, active=settings.tag_key_id)
    part_code = payload.uri(payload.giai("0614141", part["serial"]), keys, settings.resolver)
    scanned = await client.post("/api/v1/scans", json={"code": part_code, "station": "TWKHH1-ASM-01"}, headers=floor)
    assert scanned.status_code == 201, scanned.text
    assert scanned.json()["asset"]["kind"] == "part" and scanned.json()["asset"]["module"] == part["module"]
    assert scanned.json()["transition"] is None and scanned.json()["event"]["module"] == part["module"]
    # Roles hold too: an auditor cannot scan at all.
    auditor = await bearer(client, "auditor")
    assert (await client.post("/api/v1/scans", json={"code": uri}, headers=auditor)).status_code == 403


async def test_replay_with_the_same_key_appends_nothing(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "in_service")
    uri = await _tag(client, floor, module["serial"])
    before = await _events(client, floor, module["serial"])
    headers = {**floor, "Idempotency-Key": "scan-7f3a"}
    first = await client.post("/api/v1/scans", json={"code": uri}, headers=headers)
    again = await client.post("/api/v1/scans", json={"code": uri}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(await _events(client, floor, module["serial"])) == len(before) + 1
    other = await client.post("/api/v1/scans", json={"code": uri, "site": "NO-OSL-01"}, headers=headers)
    assert other.status_code in (404, 409)


async def test_offline_batch_in_order_with_per_item_results(client: Client) -> None:
    floor = await bearer(client, "floor")
    planned = await _module(client, floor, "planned")
    serving = await _module(client, floor, "in_service")
    good = await _tag(client, floor, serving["serial"])
    start = await _tag(client, floor, planned["serial"])
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    batch = {
        "scans": [
            {"id": "dev1-1", "code": good, "scanned_at": "2026-11-20T08:00:00Z"},
            {"id": "dev1-2", "code": forged},
            {"id": "dev1-3", "code": start, "action": "start_assembly"},
            {"id": "dev1-4", "code": start, "action": "start_assembly"},  # already assembling: 409
        ]
    }
    response = await client.post("/api/v1/scans/batch", json=batch, headers=floor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [201, 422, 201, 409]
    assert (body["applied"], body["refused"]) == (2, 2)
    assert body["results"][0]["scan"]["scanned_at"].startswith("2026-11-20T08:00:00")
    assert body["results"][1]["problem"]["detail"]
    events = await _events(client, floor, serving["serial"])
    # The same queue sent again (the device never saw the answer): nothing new is recorded.
    replay = (await client.post("/api/v1/scans/batch", json=batch, headers=floor)).json()
    assert [r["status"] for r in replay["results"]] == [201, 422, 201, 409]
    assert replay["results"][0]["scan"]["event"] == body["results"][0]["scan"]["event"]
    assert await _events(client, floor, serving["serial"]) == events


def _photo(text: str, *, fmt: str = "JPEG", rotate: int = 90) -> bytes:
    qr = qrcode.QRCode(border=4, box_size=9, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    image = qr.make_image().get_image().convert("L")
    page = Image.new("L", (image.width + 400, image.height + 300), 235)  # the label on a grey bench
    page.paste(image, (170, 120))
    page = page.rotate(rotate, expand=True, fillcolor=200).filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    page.save(out, format=fmt, quality=80)
    return out.getvalue()


async def test_photo_scan_is_decoded_on_the_server(client: Client, tmp_path: Path) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "in_service")
    uri = await _tag(client, floor, module["serial"])
    response = await client.post(
        "/api/v1/scans/photo", content=_photo(uri), headers={**floor, "Content-Type": "image/jpeg"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["asset"]["serial"] == module["serial"] and response.json()["via"] == "photo"
    assert response.json()["photo_sha256"] is None  # not kept unless asked
    kept = await client.post(
        "/api/v1/scans/photo?keep=true",
        content=_photo(uri, fmt="PNG", rotate=180),
        headers={**floor, "Content-Type": "image/png"},
    )
    assert kept.status_code == 201, kept.text
    assert len(kept.json()["photo_sha256"]) == 64
    # A kept photo of a genuine tag for an asset afm does not know: refused, and the photo is not kept.
    settings: Any = client.app.state.settings
    keys = payload.Keyring(keys={settings.tag_key_id: settings.tag_key.encode()}, active=settings.tag_key_id)
    stranger = payload.uri(payload.giai("0614141", "AFM-99-999999"), keys, settings.resolver)
    files = [f for f in (tmp_path / "var" / "files").rglob("*") if f.is_file()]
    unknown = await client.post(
        "/api/v1/scans/photo?keep=true", content=_photo(stranger), headers={**floor, "Content-Type": "image/jpeg"}
    )
    assert_problem(unknown, 404, "AFM-99-999999")
    assert [f for f in (tmp_path / "var" / "files").rglob("*") if f.is_file()] == files
    blank = io.BytesIO()
    Image.new("L", (640, 480), 255).save(blank, format="PNG")
    assert_problem(
        await client.post(
            "/api/v1/scans/photo", content=blank.getvalue(), headers={**floor, "Content-Type": "image/png"}
        ),
        422,
        "no QR code",
    )
    assert_problem(
        await client.post(
            "/api/v1/scans/photo", content=b"not an image", headers={**floor, "Content-Type": "image/png"}
        ),
        400,
    )
    assert_problem(
        await client.post("/api/v1/scans/photo", content=b"x", headers={**floor, "Content-Type": "text/plain"}), 415
    )


async def test_retired_keys_are_refused_old_keys_verify(demo_url: str, tmp_path: Path) -> None:
    base = make_settings(demo_url, tmp_path)
    ident = payload.giai("0614141", "AFM-24-000101")
    old = payload.Keyring(keys={"K0": b"an-earlier-tag-key"}, active="K0")
    code = payload.uri(ident, old, base.resolver)
    rotated = msgspec.structs.replace(base, tag_old_keys={"K0": "an-earlier-tag-key"})
    retired = msgspec.structs.replace(rotated, tag_keys_retired=["K0"])
    for settings, status in ((base, 422), (rotated, 201), (retired, 422)):
        async with AsyncTestClient(app=create_app(settings)) as client:
            floor = await bearer(client, "floor")
            response = await client.post("/api/v1/scans", json={"code": code}, headers=floor)
            assert response.status_code == status, (settings.tag_keys_retired, response.text)
            if settings is retired:
                assert_problem(response, 422, "retired")


async def test_crates_and_packages(client: Client) -> None:
    planner = await bearer(client, "planner")
    crate = {
        "serial": "CR-000042",
        "asset_type": "77",
        "length_mm": 12200,
        "width_mm": 2440,
        "height_mm": 2900,
        "tare_kg": 3800.0,
        "description": "40 ft module skid",
    }
    created = await client.post("/api/v1/crates", json=crate, headers=planner)
    assert created.status_code == 201, created.text
    grai = created.json()["grai"]
    assert grai.startswith("(8003)0061414100077") and grai.endswith("CR-000042")
    assert (await client.post("/api/v1/crates", json=crate, headers=planner)).status_code == 409
    settings: Any = client.app.state.settings
    keys = payload.Keyring(keys={settings.tag_key_id: settings.tag_key.encode()}, active=settings.tag_key_id)
    ident = payload.Identifier(payload.AI.GRAI, grai[6:])
    response = await client.post(
        "/api/v1/scans", json={"code": payload.uri(ident, keys, settings.resolver)}, headers=planner
    )
    assert response.status_code == 201, response.text
    assert response.json()["asset"]["kind"] == "crate" and response.json()["recorded"] == []
    assert response.json()["id"] > 0 and response.json()["event"] is None
    package = payload.uri(payload.sscc("0614141", 42), keys, settings.resolver)
    assert_problem(await client.post("/api/v1/scans", json={"code": package}, headers=planner), 404, "SSCC")


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_resolver_opens_the_module_page(client: Client, suffix: str) -> None:
    floor = await bearer(client, "floor")
    module = await _module(client, floor, "in_service")
    uri = await _tag(client, floor, module["serial"])
    path = uri.split("127.0.0.1:8000")[1].replace("?", suffix + "?")
    response = await client.get(path, headers=floor, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/modules/{module['serial']}"
    forged = await client.get(path[:-1] + ("A" if path[-1] != "A" else "B"), headers=floor, follow_redirects=False)
    assert forged.status_code == 422
