"""What the fuzzing found, pinned: values the database cannot store are malformed input (400 problem
details), never a 500; and the OpenAPI says what the API really answers, which the fuzzing relies on."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem

Client = AsyncTestClient[Litestar]
BEYOND_INT64 = 10**30


async def test_integers_beyond_64_bits_are_malformed_input(client: Client, admin: dict[str, str]) -> None:
    """SQLite's driver raised OverflowError, asyncpg a DataError: both were 500s."""
    signature = {"name": "A. Witness", "kind": "engineer"}
    answers = [
        await client.post(f"/api/v1/checklist-runs/{BEYOND_INT64}/signatures", json=signature, headers=admin),
        await client.get(f"/api/v1/burn-in-runs/{BEYOND_INT64}", headers=admin),
        await client.get(f"/api/v1/modules?offset={BEYOND_INT64}", headers=admin),
    ]
    for response in answers:
        assert_problem(response, 400, "outside what can be stored")


async def test_nul_characters_are_refused_or_not_found(client: Client, admin: dict[str, str]) -> None:
    """PostgreSQL refuses NUL in text (SQLite stores it): a 400 there, a plain 404 here, never a 500."""
    response = await client.get("/api/v1/parts", params={"module": "AFM\x00-24"}, headers=admin)
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_openapi_declares_errors_security_and_media_types(client: Client) -> None:
    schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert "security" not in schema  # per operation: the open ones declare none
    for name in ("GET /healthz", "GET /readyz", "POST /api/v1/auth/token"):
        assert not operations[name].get("security"), name
    for name, operation in operations.items():
        if not name.split(" ")[1].startswith("/api/"):
            continue
        if name != "POST /api/v1/auth/token":
            assert operation["security"] == [{"bearer": []}], name
            assert "403" in operation["responses"], name
        unauthorised = operation["responses"]["401"]["content"]
        assert list(unauthorised) == ["application/problem+json"], name
        assert unauthorised["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}
    assert "429" in operations["POST /api/v1/auth/token"]["responses"]
    assert "422" in operations["GET /api/v1/modules"]["responses"]  # an unknown state is a rule refusal
    tag = operations["GET /api/v1/modules/{serial}/tag"]["responses"]["200"]["content"]
    assert {"image/png", "application/pdf", "application/vnd.zebra-zpl", "text/plain"} <= set(tag)
    report = operations["GET /api/v1/burn-in-runs/{run_id}/report.pdf"]["responses"]["200"]["content"]
    assert list(report) == ["application/pdf"]
