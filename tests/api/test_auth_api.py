"""Sign-in, tokens, roles and CSRF through the HTTP API."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem, bearer

Client = AsyncTestClient[Litestar]


async def test_token_for_each_demo_login(client: Client) -> None:
    for username in ("admin", "floor", "planner", "engineer", "auditor"):
        headers = await bearer(client, username)
        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json() == {"username": username, "roles": [username], "via": "api"}


async def test_token_response_shape(client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "admin", "password": "demo"})
    body = response.json()
    assert body["token_type"] == "bearer"
    assert len(body["access_token"]) >= 40


async def test_wrong_password_is_401_problem(client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "admin", "password": "nope"})
    assert_problem(response, 401, "wrong username or password")


async def test_unknown_user_is_same_401(client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "mallory", "password": "x"})
    assert_problem(response, 401, "wrong username or password")


async def test_missing_token_is_401(client: Client) -> None:
    assert_problem(await client.get("/api/v1/modules"), 401, "sign in first")


async def test_bad_scheme_and_unknown_token_are_401(client: Client) -> None:
    response = await client.get("/api/v1/modules", headers={"Authorization": "Basic YWRtaW46ZGVtbw=="})
    assert_problem(response, 401, "Bearer")
    response = await client.get("/api/v1/modules", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "unknown, expired or revoked")


async def test_revoked_token_stops_working(client: Client) -> None:
    headers = await bearer(client, "floor")
    assert (await client.get("/api/v1/modules", headers=headers)).status_code == 200
    assert (await client.delete("/api/v1/auth/token", headers=headers)).status_code == 204
    assert_problem(await client.get("/api/v1/modules", headers=headers), 401, "revoked")


async def test_malformed_json_is_400(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/token",
        content=b'{"username": "admin", "pass',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_missing_field_is_400(client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "admin"})
    body = assert_problem(response, 400, "password")
    assert body["errors"]


async def test_login_throttled_after_repeated_failures(client: Client) -> None:
    # The app fixture allows 5 failures per window.
    for _ in range(5):
        response = await client.post("/api/v1/auth/token", json={"username": "planner", "password": "guess"})
        assert response.status_code == 401
    response = await client.post("/api/v1/auth/token", json={"username": "planner", "password": "demo"})
    assert_problem(response, 429, "too many failed sign-ins")
    assert "retry-after" in response.headers


async def test_role_not_allowed_is_403_and_writes_nothing(client: Client, admin: dict[str, str]) -> None:
    floor = await bearer(client, "floor")
    new_user = {"username": "intruder", "password": "longenough1", "roles": ["admin"]}
    body = assert_problem(await client.post("/api/v1/users", json=new_user, headers=floor), 403, "may not")
    assert body["allowed_roles"] == ["admin"]
    assert (await client.get("/api/v1/users/intruder", headers=admin)).status_code == 404


async def test_unknown_role_is_400(client: Client, admin: dict[str, str]) -> None:
    user = {"username": "newbie", "password": "longenough1", "roles": ["floorr"]}
    assert_problem(await client.post("/api/v1/users", json=user, headers=admin), 400, "floorr")
    assert (await client.get("/api/v1/users/newbie", headers=admin)).status_code == 404


async def test_admin_creates_user_who_can_sign_in(client: Client, admin: dict[str, str]) -> None:
    user = {"username": "kim", "password": "longenough1", "roles": ["engineer"], "full_name": "Kim Lee"}
    created = await client.post("/api/v1/users", json=user, headers=admin)
    assert created.status_code == 201, created.text
    assert "password" not in created.text
    headers = await bearer(client, "kim", "longenough1")
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["roles"] == ["engineer"]
    duplicate = await client.post("/api/v1/users", json=user, headers=admin)
    assert_problem(duplicate, 409, "already exists")


async def test_session_cookie_needs_csrf_for_writes(client: Client) -> None:
    login_page = await client.get("/login")
    assert login_page.status_code == 200
    csrf = login_page.cookies.get("afm_login_csrf") or client.cookies.get("afm_login_csrf")
    response = await client.post(
        "/login",
        data={"username": "admin", "password": "demo", "csrf": csrf, "next": "/modules"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert client.cookies.get("afm_session")
    # Reads work with the cookie alone.
    assert (await client.get("/api/v1/modules?limit=1")).status_code == 200
    # Writes without the session's CSRF token are refused, and nothing is written.
    response = await client.post("/api/v1/modules", json={"spec": "L4-EDGE-20"})
    assert_problem(response, 403, "CSRF")
    total = (await client.get("/api/v1/modules?limit=1")).json()["total"]
    assert total == 60


async def test_login_form_rejects_missing_csrf(client: Client) -> None:
    response = await client.post(
        "/login", data={"username": "admin", "password": "demo", "csrf": "forged"}, follow_redirects=False
    )
    assert response.status_code == 400
    assert "expired" in response.text
    assert not client.cookies.get("afm_session")


async def test_pages_redirect_to_login(client: Client) -> None:
    response = await client.get("/modules", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"].startswith("/login?next=/modules")
