"""Health, readiness, metrics, OpenAPI and request ids."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def test_health_and_ready(client: Client) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_openapi_served_and_complete(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in ("/api/v1/modules", "/api/v1/modules/{serial}", "/api/v1/auth/token", "/api/v1/sites"):
        assert path in paths, sorted(paths)
    assert "/login" not in paths  # pages are not part of the API
    assert "bearer" in schema["components"]["securitySchemes"]


async def test_metrics_count_requests(client: Client) -> None:
    await client.get("/healthz")
    body = (await client.get("/metrics")).text
    assert "afm_requests_total" in body
    assert 'path="/healthz"' in body


async def test_request_id_echoed_or_made(client: Client) -> None:
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    given = await client.get("/healthz", headers={"X-Request-ID": "scanner-7.42"})
    assert given.headers["x-request-id"] == "scanner-7.42"
    problem = await client.get("/api/v1/modules", headers={"X-Request-ID": "trace-1"})
    assert problem.json()["request_id"] == "trace-1"
