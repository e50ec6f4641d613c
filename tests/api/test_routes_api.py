"""Route planning through the API: places by name, routes that agree with known sea distances,
constraints that change the route or refuse it with the constraint named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]


@pytest.fixture(scope="session")
def route_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("route-cache")  # built once for the session, then loaded from disk


@pytest.fixture
async def client(demo_url: str, tmp_path: Path, route_cache: Path) -> AsyncIterator[Client]:
    app = create_app(make_settings(demo_url, tmp_path, cache_dir=route_cache))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_places_search(client: Client) -> None:
    planner = await bearer(client, "planner")
    found = (await client.get("/api/v1/places?q=rotterdam", headers=planner)).json()
    assert any(p["code"] == "NLRTM" and p["kind"] == "port" and p["country"] == "NL" for p in found)
    factories = (await client.get("/api/v1/places?q=TWKHH1", headers=planner)).json()
    assert factories[0]["code"] == "factory:TWKHH1" and factories[0]["kind"] == "factory"
    assert (await client.get("/api/v1/places?q=", headers=planner)).json() == []


async def test_sea_route_and_suez_barred(client: Client) -> None:
    planner = await bearer(client, "planner")
    body = {"origin": "NLRTM", "destination": "SGSIN", "criterion": "distance", "modes": ["sea"], "k": 1}
    best = (await client.post("/api/v1/routes/plan", json=body, headers=planner)).json()["routes"][0]
    assert "suez" in best["passages"]
    assert best["distance_km"] == pytest.approx(15_500, rel=0.01)  # searoute: 15,498 km
    assert best["geometry"]["type"] in ("LineString", "MultiLineString")
    around = await client.post("/api/v1/routes/plan", json={**body, "avoid_passages": ["suez"]}, headers=planner)
    assert around.status_code == 200, around.text
    cape = around.json()["routes"][0]
    assert "suez" not in cape["passages"] and "cape-of-good-hope" in cape["passages"]
    assert cape["distance_km"] > best["distance_km"] * 1.3


async def test_factory_to_site_door_to_door(client: Client) -> None:
    planner = await bearer(client, "planner")
    sites = (await client.get("/api/v1/sites?limit=50", headers=planner)).json()["items"]
    site = next(s for s in sites if s["country"] not in ("TW",))
    body = {"origin": "factory:TWKHH1", "destination": f"site:{site['code']}", "criterion": "cost", "k": 2}
    response = await client.post("/api/v1/routes/plan", json=body, headers=planner)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["origin"]["kind"] == "factory" and plan["destination"]["kind"] == "site"
    route = plan["routes"][0]
    assert route["legs"][0]["origin"]["code"] == "factory:TWKHH1"
    assert route["legs"][-1]["destination"]["code"] == f"site:{site['code']}"
    assert sum(leg["distance_km"] for leg in route["legs"]) == pytest.approx(route["distance_km"], rel=0.01)
    costs = [r["cost"] for r in plan["routes"]]
    assert costs == sorted(costs)  # best first by the criterion


async def test_constraints_refuse_with_the_constraint_named(client: Client) -> None:
    planner = await bearer(client, "planner")
    module = (await client.get("/api/v1/modules?limit=1", headers=planner)).json()["items"][0]["serial"]
    # A 2.5+ m high module does not fit an aircraft's main deck: air only is refused, naming the height.
    refused = await client.post(
        "/api/v1/routes/plan",
        json={"origin": "air:FRA", "destination": "air:SIN", "modes": ["air"], "module": module},
        headers=planner,
    )
    body = assert_problem(refused, 422, "cuts the last one")
    assert body["refused_by"].startswith("height_mm")
    assert_problem(
        await client.post("/api/v1/routes/plan", json={"origin": "XXYYY", "destination": "SGSIN"}, headers=planner),
        404,
        "XXYYY",
    )
    assert_problem(
        await client.post("/api/v1/routes/plan", json={"origin": "site:NOPE", "destination": "SGSIN"}, headers=planner),
        404,
    )
    assert (
        await client.post(
            "/api/v1/routes/plan", json={"origin": "NLRTM", "destination": "SGSIN", "k": 9}, headers=planner
        )
    ).status_code == 400


async def test_avoided_country_is_not_crossed(client: Client) -> None:
    planner = await bearer(client, "planner")
    body = {"origin": "NLRTM", "destination": "SGSIN", "modes": ["sea"], "avoid_countries": ["EG"], "k": 2}
    response = await client.post("/api/v1/routes/plan", json=body, headers=planner)
    assert response.status_code == 200, response.text
    for route in response.json()["routes"]:
        assert "EG" not in route["countries"] and "suez" not in route["passages"]
        assert all("EG" not in leg["countries"] for leg in route["legs"])


async def test_export_rules_refuse_a_barred_destination_and_keep_routes_out_of_barred_countries(client: Client) -> None:
    planner = await bearer(client, "planner")
    modules = (await client.get("/api/v1/modules?limit=100", headers=planner)).json()["items"]
    listed = (await client.get("/api/v1/specs", headers=planner)).json()
    specs = {s["code"]: s for s in (listed["items"] if isinstance(listed, dict) else listed)}
    module = next(m["serial"] for m in modules if specs[m["spec"]]["export_class"].startswith("4A090"))
    refused = await client.post(
        "/api/v1/routes/plan", json={"origin": "NLRTM", "destination": "CNSHA", "module": module}, headers=planner
    )
    body = assert_problem(refused, 422, "presumption of denial", "15 CFR", "export rules 2026.11-2")
    assert body["export"]["status"] == "denied" and body["export"]["destination"] == "CN"
    allowed = await client.post(
        "/api/v1/routes/plan",
        json={"origin": "NLRTM", "destination": "JPTYO", "module": module, "modes": ["sea"], "k": 2},
        headers=planner,
    )
    assert allowed.status_code == 200, allowed.text
    plan = allowed.json()
    assert plan["export"]["status"] == "allowed" and plan["export"]["eccn"].startswith("4A090")
    barred = set(plan["export"]["transit_barred"])
    assert {"CN", "RU"} <= barred
    for route in plan["routes"]:
        # no port call, landing or land crossing in a barred country; passing a strait in its waters
        # (Bab-el-Mandeb: ER) is innocent passage and stays open
        for leg in route["legs"]:
            assert leg["origin"]["country"] not in barred and leg["destination"]["country"] not in barred
            if leg["mode"] in ("road", "rail"):
                assert not barred & set(leg["countries"])
