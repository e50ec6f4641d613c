"""Shipments through the API: a module's whole journey from the factory to the site with every
hand-off scanned; documents read back; seal mismatches flagged; export licences holding a departure."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pypdf import PdfReader

from app.asgi import create_app
from app.tags import payload
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]

CONSIGNOR = {
    "name": "Kaohsiung Module Works",
    "address": ["88 Chenggong 2nd Rd", "Kaohsiung"],
    "country": "TW",
    "contact": "+886 7 555 0100 (24 h dangerous goods line)",
}
CONSIGNEE = {"name": "Tomakomai Compute KK", "address": ["1-1 Akeno", "Tomakomai, Hokkaido"], "country": "JP"}


@pytest.fixture(scope="session")
def route_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("route-cache")


@pytest.fixture
async def client(demo_url: str, tmp_path: Path, route_cache: Path) -> AsyncIterator[Client]:
    app = create_app(make_settings(demo_url, tmp_path, cache_dir=route_cache))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _text(pdf: bytes) -> str:
    """The PDF's text with line breaks and runs of spaces as single spaces (table cells wrap)."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


async def _tag(client: Client, serial: str, headers: dict[str, str]) -> str:
    response = await client.get(f"/api/v1/modules/{serial}/tag?format=uri", headers=headers)
    assert response.status_code == 200, response.text
    return response.text.strip().strip('"')


async def _plan(client: Client, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "origin": "factory:TWKHH1",
        "destination": "site:JPTMK1",
        "modules": ["AFM-26-000124"],
        "planned_departure": "2026-12-01T08:00:00Z",
        "incoterm": "FCA",
        "incoterm_place": "Kaohsiung factory gate",
        "consignor": CONSIGNOR,
        "consignee": CONSIGNEE,
        "values": {"GB200-NVL72-20": 2_950_000, "HGX-H200-40": 4_100_000},
        "containers": [{"number": "CSQU3054383", "seal": "TW-884213", "modules": ["AFM-26-000124"]}],
        "criterion": "cost",
        "carriers": [],
        **overrides,
    }
    response = await client.post("/api/v1/shipments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_factory_to_site_journey_with_every_handoff_scanned(client: Client) -> None:
    planner, floor, engineer = [await bearer(client, u) for u in ("planner", "floor", "engineer")]
    shipment = await _plan(client, planner)
    ref = shipment["id"]
    assert [leg["mode"] for leg in shipment["legs"]] == ["road", "sea", "road"]
    assert shipment["legs"][0]["origin"] == "factory:TWKHH1" and shipment["legs"][-1]["destination"] == "site:JPTMK1"
    (package,) = shipment["packages"]
    assert package["sscc"].startswith("(00) 0") and len(package["sscc"]) == 23
    assert package["container"] == "CSQU3054383" and package["contents"] == ["AFM-26-000124"]

    packed = await client.post(f"/api/v1/shipments/{ref}/pack", json={}, headers=floor)
    assert packed.status_code == 200, packed.text
    assert packed.json()["modules"][0]["state"] == "packed"

    tag = await _tag(client, "AFM-26-000124", floor)
    handoff: dict[str, Any] = {
        "codes": [tag],
        "kind": "pickup",
        "party": "Chen Wei",
        "organisation": "Formosa Trucking",
        "place": "TWKHH1",
        "seals": [{"container": "CSQU3054383", "seal": "TW-884213"}],
    }
    early = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=handoff, headers=floor)
    assert_problem(early, 422, "manifest")  # no manifest issued: the module may not leave
    state = (await client.get("/api/v1/modules/AFM-26-000124", headers=floor)).json()["state"]
    assert state == "packed"  # the refused pickup recorded nothing

    manifest = await client.get(f"/api/v1/shipments/{ref}/manifest.pdf", headers=planner)
    assert manifest.status_code == 200 and manifest.headers["content-type"] == "application/pdf"
    assert manifest.headers["x-document-sha256"] == hashlib.sha256(manifest.content).hexdigest()
    text = _text(manifest.content)
    for needle in ("AFM-26-000124", "847150", "4A090.a", ref, "CSQU3054383"):
        assert needle in text, needle

    picked = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=handoff, headers=floor)
    assert picked.status_code == 201, picked.text
    body = picked.json()
    assert body["status"] == "in_transit" and body["modules"][0]["state"] == "in_transit"
    assert body["legs"][0]["actual_departure"] is not None and body["flags"] == []

    # at the port of loading the terminal receives it: the seal was replaced somewhere on the road
    port = {
        **handoff,
        "kind": "handover",
        "leg": 2,
        "party": "Lin Mei",
        "organisation": "Kaohsiung Port Terminal",
        "place": shipment["legs"][1]["origin"],
        "seals": [{"container": "CSQU3054383", "seal": "TW-999999"}],
    }
    mismatch = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=port, headers=floor)
    assert mismatch.status_code == 201, mismatch.text
    flagged = mismatch.json()
    assert flagged["handoffs"][-1]["seal_ok"] is False
    assert any("TW-999999" in f and "TW-884213" in f for f in flagged["flags"])
    assert flagged["legs"][0]["actual_arrival"] is not None and flagged["legs"][1]["actual_departure"] is not None

    # the port of discharge hands it to the truck for the last leg (seal re-recorded as found)
    discharge = {
        **handoff,
        "kind": "handover",
        "leg": 3,
        "party": "Sato Ken",
        "organisation": "Tomakomai Haulage",
        "place": shipment["legs"][2]["origin"],
        "seals": [{"container": "CSQU3054383", "seal": "TW-999999"}],
    }
    assert (await client.post(f"/api/v1/shipments/{ref}/handoffs", json=discharge, headers=floor)).status_code == 201
    delivery = {
        **handoff,
        "kind": "delivery",
        "party": "Ito Yui",
        "organisation": "Tomakomai Compute KK",
        "place": "JPTMK1",
        "seals": [{"container": "CSQU3054383", "seal": "TW-999999"}],
    }
    delivered = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=delivery, headers=engineer)
    assert delivered.status_code == 201, delivered.text
    final = delivered.json()
    assert final["status"] == "delivered" and final["modules"][0]["state"] == "delivered"
    assert [h["kind"] for h in final["handoffs"]] == ["pickup", "handover", "handover", "delivery"]
    assert all(leg["actual_arrival"] for leg in final["legs"])

    events = (await client.get("/api/v1/modules/AFM-26-000124/events", headers=planner)).json()
    types = [e["type"] for e in events]
    for expected in (
        "shipment.planned",
        "lifecycle.pack",
        "document.issued",
        "lifecycle.depart",
        "custody.handoff",
        "lifecycle.deliver",
    ):
        assert expected in types, expected
    issued = next(e for e in events if e["type"] == "document.issued")
    assert issued["payload"]["sha256"] == manifest.headers["x-document-sha256"]
    custody = [e["payload"] for e in events if e["type"] == "custody.handoff"]
    assert [c["kind"] for c in custody] == ["pickup", "handover", "handover", "delivery"]
    assert custody[1]["seal_ok"] is False
    verify = (await client.get("/api/v1/audit/verify", headers=await bearer(client, "auditor"))).json()
    assert verify["ok"] is True


async def test_documents_are_versioned_and_carry_dg_note_and_control_statement(client: Client) -> None:
    planner = await bearer(client, "planner")
    ref = (await _plan(client, planner))["id"]
    first = await client.post(f"/api/v1/shipments/{ref}/documents", json={"kind": "manifest"}, headers=planner)
    second = await client.post(f"/api/v1/shipments/{ref}/documents", json={"kind": "manifest"}, headers=planner)
    assert first.status_code == second.status_code == 201
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    old = await client.get(f"/api/v1/shipments/{ref}/manifest.pdf?version=1", headers=planner)
    assert hashlib.sha256(old.content).hexdigest() == first.json()["sha256"]
    latest = await client.get(f"/api/v1/shipments/{ref}/manifest.pdf", headers=planner)
    assert latest.headers["x-document-version"] == "2"

    dg = await client.get(f"/api/v1/shipments/{ref}/dg-note.pdf", headers=planner)
    assert dg.status_code == 200, dg.text
    text = _text(dg.content)
    assert "UN3481" in text and "LITHIUM ION BATTERIES CONTAINED IN EQUIPMENT" in text and "AFM-26-000124" in text

    invoice = _text((await client.get(f"/api/v1/shipments/{ref}/commercial-invoice.pdf", headers=planner)).content)
    for needle in ("847150", "4A090.a", "NLR", "TW", "2,950,000.00", "authorized for export only"):
        assert needle in invoice, needle
    packing = _text((await client.get(f"/api/v1/shipments/{ref}/packing-list.pdf", headers=planner)).content)
    sscc = (await client.get(f"/api/v1/shipments/{ref}", headers=planner)).json()["packages"][0]["sscc"]
    assert sscc.removeprefix("(00) ") in packing.replace(" ", "")
    # the package's SSCC label scans to the package and is recorded in the module's ledger
    settings: Any = client.app.state.settings
    keys = payload.Keyring(keys={settings.tag_key_id: settings.tag_key.encode()}, active=settings.tag_key_id)
    label = payload.uri(payload.Identifier(payload.AI.SSCC, sscc.removeprefix("(00) ")), keys, settings.resolver)
    scanned = await client.post("/api/v1/scans", json={"code": label}, headers=await bearer(client, "floor"))
    assert scanned.status_code == 201, scanned.text
    asset = scanned.json()["asset"]
    assert asset["kind"] == "package" and asset["module"] == "AFM-26-000124" and ref in asset["description"]
    assert scanned.json()["event"]["module"] == "AFM-26-000124"
    auditor = await bearer(client, "auditor")
    never = await client.get(f"/api/v1/shipments/{ref}/packing-list.pdf?version=9", headers=auditor)
    assert_problem(never, 404, "version 9")


async def test_a_licence_is_needed_before_an_export_controlled_module_departs(client: Client) -> None:
    planner, floor = await bearer(client, "planner"), await bearer(client, "floor")
    # an H200 module (4A090.a) from the Czech plant to Abu Dhabi: D:4, not A:5/A:6 -> licence required
    shipment = await _plan(
        client,
        planner,
        origin="factory:CZPAR1",
        destination="site:AEAUH1",
        modules=["AFM-26-000127"],
        incoterm="CPT",
        incoterm_place="Abu Dhabi",
        consignor={**CONSIGNOR, "name": "Pardubice Module Works", "country": "CZ"},
        consignee={**CONSIGNEE, "name": "Falcon Compute LLC", "country": "AE"},
        containers=[{"number": "MSCU1234566", "seal": "CZ-1001", "modules": ["AFM-26-000127"]}],
    )
    ref = shipment["id"]
    assert (await client.post(f"/api/v1/shipments/{ref}/pack", json={}, headers=floor)).status_code == 200
    assert (await client.get(f"/api/v1/shipments/{ref}/manifest.pdf", headers=planner)).status_code == 200
    refused = await client.post(f"/api/v1/shipments/{ref}/legs/1/departed", json={}, headers=planner)
    assert_problem(refused, 422, "licence")
    module = (await client.get("/api/v1/modules/AFM-26-000127", headers=planner)).json()
    assert module["state"] == "packed"

    licence = {
        "number": "D1234567",
        "eccn": "4A090",
        "countries": ["AE"],
        "consignee": "Falcon Compute LLC",
        "valid_until": "2027-12-31",
    }
    recorded = await client.post("/api/v1/export-licences", json=licence, headers=planner)
    assert recorded.status_code == 201, recorded.text
    assert_problem(await client.post("/api/v1/export-licences", json=licence, headers=planner), 409, "D1234567")
    departed = await client.post(f"/api/v1/shipments/{ref}/legs/1/departed", json={}, headers=planner)
    assert departed.status_code == 200, departed.text
    assert departed.json()["modules"][0]["state"] == "in_transit"
    invoice = await client.post(
        f"/api/v1/shipments/{ref}/documents", json={"kind": "commercial-invoice"}, headers=planner
    )
    pdf = await client.get(invoice.json()["url"], headers=planner)
    assert "D1234567" in _text(pdf.content)


async def test_late_leg_moves_the_eta_and_late_shipments_come_first(client: Client) -> None:
    planner, floor = await bearer(client, "planner"), await bearer(client, "floor")
    shipment = await _plan(client, planner, planned_departure="2026-11-10T08:00:00Z")
    ref = shipment["id"]
    await client.post(f"/api/v1/shipments/{ref}/pack", json={}, headers=floor)
    await client.get(f"/api/v1/shipments/{ref}/manifest.pdf", headers=planner)
    first = shipment["legs"][0]
    departed = await client.post(
        f"/api/v1/shipments/{ref}/legs/1/departed", json={"at": first["planned_departure"]}, headers=planner
    )
    assert departed.status_code == 200, departed.text
    # the truck arrives three days late: the sea leg cannot leave on time, the ETA moves
    arrival = dt.datetime.fromisoformat(first["planned_arrival"]) + dt.timedelta(days=3)
    arrived = await client.post(
        f"/api/v1/shipments/{ref}/legs/1/arrived", json={"at": arrival.isoformat()}, headers=planner
    )
    assert arrived.status_code == 200, arrived.text
    body = arrived.json()
    assert body["late_hours"] > 48 and body["eta"] > body["planned_arrival"]
    listed = (await client.get("/api/v1/shipments", headers=planner)).json()
    assert listed["items"][0]["id"] == ref and listed["items"][0]["late_hours"] > 48
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    refused = await client.post(f"/api/v1/shipments/{ref}/legs/2/departed", json={"at": future}, headers=planner)
    assert_problem(refused, 400, "future")


async def test_bad_shipments_are_refused_and_change_nothing(client: Client) -> None:
    planner = await bearer(client, "planner")
    bad_container = {"containers": [{"number": "CSQU3054384", "seal": "X", "modules": ["AFM-26-000124"]}]}
    for overrides, status, needle in (
        (bad_container, 400, "check digit"),
        ({"incoterm": "FOB"}, 400, "FCA"),
        ({"values": {}}, 400, "declared customs value"),
        ({"modules": ["AFM-00-NOPE"]}, 404, "AFM-00-NOPE"),
        ({"destination": "site:NOPE"}, 404, "NOPE"),
    ):
        body = {
            "origin": "factory:TWKHH1",
            "destination": "site:JPTMK1",
            "modules": ["AFM-26-000124"],
            "planned_departure": "2026-12-01T08:00:00Z",
            "incoterm": "FCA",
            "incoterm_place": "Kaohsiung",
            "consignor": CONSIGNOR,
            "consignee": CONSIGNEE,
            "values": {"GB200-NVL72-20": 1},
            **overrides,
        }
        assert_problem(await client.post("/api/v1/shipments", json=body, headers=planner), status, needle)
    assert (await client.get("/api/v1/shipments", headers=planner)).json()["total"] == 0
    events = (await client.get("/api/v1/modules/AFM-26-000124/events", headers=planner)).json()
    assert not any(e["type"].startswith("shipment.") for e in events)
    floor = await bearer(client, "floor")
    forbidden = await client.post("/api/v1/shipments", json={}, headers=floor)
    assert forbidden.status_code == 403
