"""A demo redeployment through the API: demand shifts from one site to another, the planner picks the
module, and it goes through decommissioning (checklist, drives sanitised), a new shipment and
commissioning at the new site, with its whole history in one unbroken ledger."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from tests.api.test_commissioning_api import _complete, _photo, _sign_all, _transition, _validate
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]
SPEC = "HGX-H200-40"


@pytest.fixture(scope="session")
def route_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("route-cache")


@pytest.fixture
async def client(demo_url: str, tmp_path: Path, route_cache: Path) -> AsyncIterator[Client]:
    app = create_app(make_settings(demo_url, tmp_path, cache_dir=route_cache))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def _capacity(client: Client, code: str, headers: dict[str, str]) -> dict[str, Any]:
    return (await client.get(f"/api/v1/sites/{code}/capacity", headers=headers)).json()


async def test_demand_shift_moves_a_module_through_the_whole_lifecycle(client: Client) -> None:
    planner, engineer, floor = [await bearer(client, u) for u in ("planner", "engineer", "floor")]
    source, target = await _capacity(client, "CABHS1", planner), await _capacity(client, "ISKEF1", planner)
    have_source, have_target = source["installed"].get(SPEC, 0), target["installed"].get(SPEC, 0)
    assert have_source >= 1
    shrink = {"demand": [{"spec": SPEC, "modules": have_source - 1}]}
    grow = {"demand": [{"spec": SPEC, "modules": have_target + 1, "note": "new inference tenant"}]}
    assert (await client.put("/api/v1/sites/CABHS1/demand", json=shrink, headers=planner)).status_code == 200
    assert (await client.put("/api/v1/sites/ISKEF1/demand", json=grow, headers=planner)).status_code == 200

    plan = (await client.post("/api/v1/redeployment/plan", json={"criterion": "cost"}, headers=planner)).json()
    move = next(m for m in plan["moves"] if m["to_site"] == "ISKEF1")
    assert move["from_site"] == "CABHS1" and move["cost_usd"] > 0 and move["route"]
    serial = move["serial"]
    before = (await client.get(f"/api/v1/modules/{serial}/events", headers=planner)).json()

    accepted = await client.post(
        "/api/v1/redeployment/accept",
        json={
            "moves": [{"serial": serial, "to_site": "ISKEF1"}],
            "planned_departure": "2026-12-10T08:00:00Z",
            "values": {SPEC: 4_100_000},
        },
        headers=planner,
    )
    assert accepted.status_code == 201, accepted.text
    ref = accepted.json()["moves"][0]["shipment"]
    module = (await client.get(f"/api/v1/modules/{serial}", headers=planner)).json()
    assert module["state"] == "decommissioning"

    # decommissioning: the checklist, and every drive purged and verified (NIST SP 800-88)
    assert_problem(await _transition(client, serial, "complete_decommissioning", engineer), 422, "decommissioning")
    run = await client.post(
        f"/api/v1/modules/{serial}/checklists", json={"template": "decommissioning"}, headers=engineer
    )
    assert run.status_code == 201, run.text
    await _complete(client, run.json()["id"], engineer, await _photo(client, engineer))
    signed = await client.post(
        f"/api/v1/checklist-runs/{run.json()['id']}/signatures",
        json={"kind": "engineer", "name": "Erin Engineer"},
        headers=engineer,
    )
    assert signed.json()["status"] == "signed"
    drives = [
        p["serial"]
        for p in (await client.get(f"/api/v1/parts?module={serial}&limit=500", headers=engineer)).json()["items"]
        if p["kind"] == "ssd"
    ]
    assert drives, "an HGX module has NVMe drives"
    refused = assert_problem(
        await _transition(client, serial, "complete_decommissioning", engineer), 422, "not sanitised"
    )
    assert drives[0] in refused["detail"]
    wiped = {
        "drives": [
            {
                "drive": d,
                "method": "purge",
                "technique": "NVMe Sanitize (crypto erase)",
                "tool": "nvme-cli 2.9",
                "verified": True,
            }
            for d in drives
        ],
        "certificate": "SAN-2026-0042",
    }
    recorded = await client.post(f"/api/v1/modules/{serial}/sanitisation", json=wiped, headers=engineer)
    assert recorded.status_code == 201 and recorded.json()["remaining"] == []
    assert (await _transition(client, serial, "complete_decommissioning", engineer)).status_code == 200

    # the new shipment: redeploy into it, documents, hand-offs, delivery at the new site
    packed = await client.post(f"/api/v1/shipments/{ref}/pack", json={}, headers=floor)
    assert packed.status_code == 200, packed.text
    assert packed.json()["modules"][0]["state"] == "packed"
    assert (await client.get(f"/api/v1/shipments/{ref}/manifest.pdf", headers=planner)).status_code == 200
    tag = (await client.get(f"/api/v1/modules/{serial}/tag?format=uri", headers=floor)).text.strip().strip('"')
    shipment = (await client.get(f"/api/v1/shipments/{ref}", headers=planner)).json()
    seal = [{"container": c["number"], "seal": c["seal"]} for c in shipment["containers"]]
    for i, leg in enumerate(shipment["legs"], start=1):
        kind = "pickup" if i == 1 else "handover"
        body = {
            "codes": [tag],
            "kind": kind,
            "leg": i,
            "party": f"Carrier {i}",
            "organisation": f"Leg {i} Ltd",
            "place": leg["origin"],
            "seals": seal,
        }
        response = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=body, headers=floor)
        assert response.status_code == 201, response.text
    delivery = {
        "codes": [tag],
        "kind": "delivery",
        "party": "Site lead",
        "organisation": "Nordic Sovereign Cloud hf.",
        "place": "ISKEF1",
        "seals": seal,
    }
    delivered = await client.post(f"/api/v1/shipments/{ref}/handoffs", json=delivery, headers=engineer)
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["modules"][0]["state"] == "delivered"

    # commissioning at the new site, then service
    assert (await _transition(client, serial, "start_commissioning", engineer)).status_code == 200
    await _sign_all(client, serial, engineer, await _photo(client, engineer))
    assert (await _transition(client, serial, "start_validation", engineer)).status_code == 200
    assert (await _validate(client, serial, engineer, "pass"))["verdict"] == "pass"
    entered = await _transition(client, serial, "enter_service", engineer)
    assert entered.status_code == 200, entered.text
    module = entered.json()
    assert module["state"] == "in_service"

    events = (await client.get(f"/api/v1/modules/{serial}/events", headers=planner)).json()
    assert events[: len(before)] == before  # the first deployment's history is intact
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events[len(before) :]]
    for expected in (
        "lifecycle.start_decommissioning",
        "sanitisation.recorded",
        "lifecycle.complete_decommissioning",
        "lifecycle.redeploy",
        "custody.handoff",
        "lifecycle.deliver",
        "certificate.issued",
    ):
        assert expected in types, expected
    verify = (await client.get(f"/api/v1/audit/verify?module={serial}", headers=await bearer(client, "auditor"))).json()
    assert verify["ok"] is True
    after = await _capacity(client, "ISKEF1", planner)
    assert after["installed"][SPEC] == have_target + 1


async def test_bad_demand_and_capacity_are_refused(client: Client) -> None:
    planner = await bearer(client, "planner")
    for body, needle in (
        ({"demand": [{"spec": "NOPE", "modules": 1}]}, "unknown spec"),
        ({"demand": [{"spec": SPEC}]}, "modules or gpus"),
        ({"demand": [{"gpus": 64}]}, "names the spec"),
    ):
        assert_problem(await client.put("/api/v1/sites/ISKEF1/demand", json=body, headers=planner), 400, needle)
    assert_problem(
        await client.put("/api/v1/sites/NOPE/capacity", json={"power_kw": 1, "module_slots": 1}, headers=planner), 404
    )
    floor = await bearer(client, "floor")
    assert (
        await client.put("/api/v1/sites/ISKEF1/capacity", json={"power_kw": 1, "module_slots": 1}, headers=floor)
    ).status_code == 403
    capped = await client.put(
        "/api/v1/sites/ISKEF1/capacity", json={"power_kw": 9000, "module_slots": 30}, headers=planner
    )
    assert capped.status_code == 200 and capped.json()["module_slots"] == 30
    assert (await _capacity(client, "ISKEF1", planner))["demand"] == []
    edit = {"demand": [{"spec": SPEC, "gpus": 64, "from_date": "2027-01-01", "note": uuid.uuid4().hex[:8]}]}
    stored = (await client.put("/api/v1/sites/ISKEF1/demand", json=edit, headers=planner)).json()["demand"]
    assert stored[0]["gpus"] == 64 and stored[0]["from_date"] == "2027-01-01"
