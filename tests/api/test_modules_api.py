"""The module registry through the HTTP API, on the demo fleet."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem, bearer

Client = AsyncTestClient[Litestar]


async def _all_modules(client: Client, headers: dict[str, str]) -> list[dict]:
    items: list[dict] = []
    offset = 0
    while True:
        page = (await client.get(f"/api/v1/modules?limit=25&offset={offset}", headers=headers)).json()
        items += page["items"]
        offset += 25
        if offset >= page["total"]:
            return items


async def test_demo_fleet_is_spread_over_states_and_countries(client: Client, admin: dict[str, str]) -> None:
    modules = await _all_modules(client, admin)
    assert len(modules) >= 60
    assert len({m["state"] for m in modules}) >= 8
    sites = (await client.get("/api/v1/sites", headers=admin)).json()["items"]
    country_of = {s["code"]: s["country"] for s in sites}
    assert len({country_of[m["site"]] for m in modules if m["site"]}) >= 6
    for m in modules:
        assert {"serial", "spec", "state", "version", "location"} <= m.keys()


async def test_list_pagination_and_filters(client: Client, admin: dict[str, str]) -> None:
    first = (await client.get("/api/v1/modules?limit=10", headers=admin)).json()
    second = (await client.get("/api/v1/modules?limit=10&offset=10", headers=admin)).json()
    assert first["total"] == second["total"] == 60
    assert len(first["items"]) == len(second["items"]) == 10
    assert not {m["serial"] for m in first["items"]} & {m["serial"] for m in second["items"]}

    in_service = (await client.get("/api/v1/modules?state=in_service&limit=100", headers=admin)).json()
    assert in_service["total"] == len(in_service["items"]) > 0
    assert {m["state"] for m in in_service["items"]} == {"in_service"}

    site = in_service["items"][0]["site"]
    at_site = (await client.get(f"/api/v1/modules?site={site}&limit=100", headers=admin)).json()
    assert at_site["total"] >= 1 and {m["site"] for m in at_site["items"]} == {site}

    country = in_service["items"][0]["location"]["country"]
    by_country = (await client.get(f"/api/v1/modules?country={country}&limit=100", headers=admin)).json()
    assert by_country["total"] >= 1


async def test_list_rejects_bad_window_and_state(client: Client, admin: dict[str, str]) -> None:
    assert_problem(await client.get("/api/v1/modules?limit=0", headers=admin), 400, "limit")
    assert_problem(await client.get("/api/v1/modules?limit=501", headers=admin), 400, "limit")
    assert_problem(await client.get("/api/v1/modules?offset=-1", headers=admin), 400, "offset")
    assert_problem(await client.get("/api/v1/modules?state=bogus", headers=admin), 422, "unknown state")


async def test_get_module_and_its_ledger(client: Client, admin: dict[str, str]) -> None:
    serial = (await client.get("/api/v1/modules?state=in_service&limit=1", headers=admin)).json()["items"][0]["serial"]
    module = (await client.get(f"/api/v1/modules/{serial}", headers=admin)).json()
    assert module["serial"] == serial and module["state"] == "in_service"
    assert module["location"]["kind"] == "site"
    events = (await client.get(f"/api/v1/modules/{serial}/events", headers=admin)).json()
    assert [e["seq"] for e in events] == list(range(1, module["version"] + 1))
    assert events[0]["prev_hash"] == "0" * 64
    for key in ("seq", "type", "actor", "at", "payload", "prev_hash", "hash"):
        assert key in events[0]


async def test_unknown_module_is_404(client: Client, admin: dict[str, str]) -> None:
    assert_problem(await client.get("/api/v1/modules/AFM-99-999999", headers=admin), 404, "AFM-99-999999")
    assert_problem(await client.get("/api/v1/modules/AFM-99-999999/events", headers=admin), 404)


async def test_register_module_issues_serial_and_opens_ledger(client: Client, admin: dict[str, str]) -> None:
    floor = await bearer(client, "floor")
    before = (await client.get("/api/v1/audit/verify", headers=admin)).json()["events_checked"]
    response = await client.post("/api/v1/modules", json={"spec": "L4-EDGE-20"}, headers=floor)
    assert response.status_code == 201, response.text
    module = response.json()
    assert module["state"] == "planned" and module["version"] == 1
    assert module["serial"].startswith("AFM-")
    events = (await client.get(f"/api/v1/modules/{module['serial']}/events", headers=admin)).json()
    assert [(e["type"], e["actor"], e["role"]) for e in events] == [("module.registered", "floor", "floor")]
    assert response.headers["x-request-id"] == events[0]["request_id"]
    verify = (await client.get("/api/v1/audit/verify", headers=admin)).json()
    assert verify["ok"] is True and verify["events_checked"] == before + 1


async def test_register_with_explicit_serial_then_conflict(client: Client, admin: dict[str, str]) -> None:
    body = {"spec": "HGX-H200-40", "serial": "AFM-27-000001", "factory": "TWKHH1"}
    created = await client.post("/api/v1/modules", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json()["location"]["code"] == "TWKHH1"
    assert_problem(await client.post("/api/v1/modules", json=body, headers=admin), 409, "already exists")


async def test_register_refusals_write_nothing(client: Client, admin: dict[str, str]) -> None:
    before = (await client.get("/api/v1/audit/verify", headers=admin)).json()["events_checked"]
    cases = [
        ({"spec": "NO-SUCH-SPEC"}, 422, "known_spec"),
        ({"spec": "L4-EDGE-20", "factory": "NOWHERE"}, 422, "known_factory"),
        ({"spec": "L4-EDGE-20", "serial": "bad serial!"}, 400, "serial"),
        ({"spec": "L4-EDGE-20", "state": "in_service"}, 400, "state"),
        ({}, 400, "spec"),
    ]
    for body, status, needle in cases:
        assert_problem(await client.post("/api/v1/modules", json=body, headers=admin), status, needle)
    auditor = await bearer(client, "auditor")
    assert_problem(await client.post("/api/v1/modules", json={"spec": "L4-EDGE-20"}, headers=auditor), 403)
    assert (await client.get("/api/v1/modules?limit=1", headers=admin)).json()["total"] == 60
    assert (await client.get("/api/v1/audit/verify", headers=admin)).json()["events_checked"] == before


async def test_no_state_patch_exists(client: Client, admin: dict[str, str]) -> None:
    serial = (await client.get("/api/v1/modules?limit=1", headers=admin)).json()["items"][0]["serial"]
    for method in ("PATCH", "PUT"):
        response = await client.request(method, f"/api/v1/modules/{serial}", json={"state": "retired"}, headers=admin)
        assert response.status_code == 405


async def test_specs_factories_sites_parts(client: Client, admin: dict[str, str]) -> None:
    specs = (await client.get("/api/v1/specs", headers=admin)).json()
    assert specs["total"] == 4
    for spec in specs["items"]:
        assert spec["gpu_count"] == sum(line["quantity"] for line in spec["bom"] if line["kind"] == "gpu")
        assert spec["export_class"] and spec["hs_code"]
    factories = (await client.get("/api/v1/factories", headers=admin)).json()
    assert factories["total"] >= 3
    assert all(f["stations"] for f in factories["items"])
    code = factories["items"][0]["code"]
    assert (await client.get(f"/api/v1/factories/{code}", headers=admin)).json()["code"] == code
    stations = (await client.get(f"/api/v1/stations?factory={code}&kind=burn_in", headers=admin)).json()
    assert stations["total"] >= 1 and {s["kind"] for s in stations["items"]} == {"burn_in"}
    sites = (await client.get("/api/v1/sites", headers=admin)).json()
    assert sites["total"] >= 8
    assert len({s["country"] for s in sites["items"]}) >= 6
    assert {s["security_level"] for s in sites["items"]} == {"commercial", "sovereign", "defence"}
    defence = (await client.get("/api/v1/sites?security_level=defence", headers=admin)).json()
    assert defence["total"] >= 1

    serial = (await client.get("/api/v1/modules?state=in_service&limit=1", headers=admin)).json()["items"][0]["serial"]
    parts = (await client.get(f"/api/v1/parts?module={serial}&limit=500", headers=admin)).json()
    assert parts["total"] > 0 and {p["module"] for p in parts["items"]} == {serial}
    gpus = (await client.get(f"/api/v1/parts?module={serial}&kind=gpu&limit=500", headers=admin)).json()
    module = (await client.get(f"/api/v1/modules/{serial}", headers=admin)).json()
    spec = next(s for s in specs["items"] if s["code"] == module["spec"])
    assert gpus["total"] == spec["gpu_count"]


async def test_create_spec_and_site(client: Client, admin: dict[str, str]) -> None:
    spec = {
        "code": "TEST-1",
        "name": "Test module",
        "gpu_model": "NVIDIA H100",
        "gpu_count": 8,
        "power_kw": 10.2,
        "weight_kg": 9000.0,
        "length_mm": 6058,
        "width_mm": 2438,
        "height_mm": 2591,
        "hs_code": "847150",
        "export_class": "4A090.a",
        "cooling": "air",
        "bom": [{"kind": "gpu", "quantity": 8, "manufacturer": "NVIDIA", "part_numbers": ["935-24287-0001-000"]}],
    }
    assert (await client.post("/api/v1/specs", json=spec, headers=admin)).status_code == 201
    wrong = {**spec, "code": "TEST-2", "gpu_count": 16}
    assert_problem(await client.post("/api/v1/specs", json=wrong, headers=admin), 422, "bom_gpu_count")
    site = {
        "code": "TESTS1",
        "name": "Test site",
        "country": "SE",
        "lat": 65.58,
        "lon": 22.15,
        "power_kw": 5000.0,
        "module_slots": 10,
        "renewable_source": "hydro",
        "cooling": "free_air",
        "security_level": "sovereign",
    }
    assert (await client.post("/api/v1/sites", json=site, headers=admin)).status_code == 201
    bad = {**site, "code": "TESTS2", "country": "XX"}
    assert_problem(await client.post("/api/v1/sites", json=bad, headers=admin), 422, "iso_country")
    assert_problem(await client.post("/api/v1/sites", json=site, headers=admin), 409)
