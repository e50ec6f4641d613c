"""The security controls, one by one: CSRF on cookie sessions, sign-in throttling and lockout,
hashed and revocable credentials, security headers, inline-script-free templates, and the admin
audit trail (written in the action's own transaction, nothing for a refused action)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from app.asgi import create_app
from app.core.audit import AdminAction
from app.core.auth import service
from app.core.auth.models import LoginLockout
from app.core.db import Database, utcnow
from app.core.security import (
    CONTENT_SECURITY_POLICY,
    CSP_DIRECTIVES,
    HTMX_INDICATOR_STYLE,
    INLINE_STYLES,
    style_hash,
)
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]
WEB = Path(__file__).resolve().parents[2] / "app" / "web"


@asynccontextmanager
async def _own_db(app: Litestar) -> AsyncIterator[Database]:
    """The app's database from the test's own event loop (the test client runs the app in another
    loop, and asyncpg connections belong to one loop)."""
    database = Database(app.state.settings.database_url, pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def _actions(app: Litestar, action: str | None = None) -> list[AdminAction]:
    query = select(AdminAction).order_by(AdminAction.id)
    if action:
        query = query.where(AdminAction.action == action)
    async with _own_db(app) as db, db.read() as uow:
        return list(await uow.session.scalars(query))


async def _sign_in_page(client: Client, username: str = "admin", password: str = "demo") -> Any:
    await client.get("/login")
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf": client.cookies.get("afm_login_csrf") or ""},
        follow_redirects=False,
    )


# --- CSRF on cookie sessions -------------------------------------------------------------------


async def test_cookie_session_writes_need_the_sessions_csrf_token(client: Client) -> None:
    assert (await _sign_in_page(client)).status_code == 303
    page = await client.get("/modules")
    found = re.search(r'"X-CSRFToken": "([^"]+)"', page.text)
    assert found, "pages carry the session's CSRF token for htmx"
    token = found.group(1)
    spec = {"spec": "L4-EDGE-20"}
    assert_problem(await client.post("/api/v1/modules", json=spec), 403, "CSRF")
    assert_problem(await client.post("/api/v1/modules", json=spec, headers={"X-CSRFToken": token + "x"}), 403, "CSRF")
    before = (await client.get("/api/v1/modules?limit=1")).json()["total"]
    created = await client.post("/api/v1/modules", json=spec, headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.text
    assert (await client.get("/api/v1/modules?limit=1")).json()["total"] == before + 1


async def test_bearer_requests_need_no_csrf_token(client: Client) -> None:
    floor = await bearer(client, "floor")
    assert (await client.post("/api/v1/modules", json={"spec": "L4-EDGE-20"}, headers=floor)).status_code == 201


# --- sign-in throttling and account lockout ----------------------------------------------------


@pytest.fixture
async def lockable(demo_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    """Three failures for one name, from any addresses, lock it; the per-address throttle is out of
    the way. Behind a proxy, so each request can come from its own address (X-Forwarded-For)."""
    settings = make_settings(
        demo_url,
        tmp_path,
        login_max_failures=100,
        login_lockout_failures=3,
        login_lockout_window_s=600,
        login_lockout_s=600,
        behind_proxy="true",
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.250, {address}"}


async def _try(client: Client, username: str, password: str, address: str) -> Any:
    body = {"username": username, "password": password}
    return await client.post("/api/v1/auth/token", json=body, headers=_from(address))


async def test_failures_from_many_addresses_lock_the_account(lockable: Client) -> None:
    for n in (1, 2):
        assert_problem(await _try(lockable, "planner", "guess", f"198.51.100.{n}"), 401, "wrong username")
    third = await _try(lockable, "planner", "guess", "198.51.100.3")
    body = assert_problem(third, 429, "locked")
    assert body["type"].endswith("/account-locked") and 500 <= int(third.headers["retry-after"]) <= 600
    # The right password from a fresh address is refused too, without a password check.
    assert_problem(await _try(lockable, "planner", "demo", "198.51.100.4"), 429, "locked")
    # Other accounts are untouched.
    assert (await _try(lockable, "floor", "demo", "198.51.100.5")).status_code == 200
    # The page sign-in form honours the same lock.
    await lockable.get("/login")
    form = {"username": "planner", "password": "demo", "csrf": lockable.cookies.get("afm_login_csrf") or ""}
    page = await lockable.post("/login", data=form, headers=_from("198.51.100.6"), follow_redirects=False)
    assert page.status_code == 429 and "locked" in page.text and "retry-after" in page.headers
    assert not lockable.cookies.get("afm_session")


async def test_an_unknown_name_locks_like_a_real_one(lockable: Client) -> None:
    """A lock says nothing about whether the account exists."""
    answers = [await _try(lockable, "mallory", "guess", f"198.51.100.{n}") for n in (1, 2, 3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[-1].json()["type"].endswith("/account-locked")


async def test_admin_unlock_is_audited_and_lets_the_user_in(lockable: Client) -> None:
    for n in (1, 2, 3):
        await _try(lockable, "engineer", "guess", f"198.51.100.{n}")
    assert (await _try(lockable, "engineer", "demo", "198.51.100.9")).status_code == 429
    admin = await bearer(lockable, "admin")
    floor = await bearer(lockable, "floor")
    assert_problem(await lockable.post("/api/v1/users/engineer/unlock", headers=floor), 403)
    unlocked = await lockable.post("/api/v1/users/engineer/unlock", headers={**admin, **_from("192.0.2.7")})
    assert unlocked.json() == {"username": "engineer", "was_locked": True}
    assert (await _try(lockable, "engineer", "demo", "198.51.100.9")).status_code == 200
    rows = await _actions(lockable.app, "user.unlock")
    assert [(r.actor, r.target, r.detail, r.client) for r in rows] == [
        ("admin", "engineer", {"was_locked": True}, "192.0.2.7")
    ]
    # Unlocking starts the count again: one more failure does not re-lock.
    assert (await _try(lockable, "engineer", "guess", "198.51.100.1")).status_code == 401


async def test_a_lock_times_out(lockable: Client) -> None:
    for n in (1, 2, 3):
        await _try(lockable, "auditor", "guess", f"198.51.100.{n}")
    assert (await _try(lockable, "auditor", "demo", "198.51.100.4")).status_code == 429
    async with _own_db(lockable.app) as db, db.write() as uow:  # the lock's time passes
        await uow.session.execute(update(LoginLockout).values(locked_until=utcnow()))
    assert (await _try(lockable, "auditor", "demo", "198.51.100.4")).status_code == 200


async def test_per_address_throttle_counts_every_name_tried(client: Client) -> None:
    """Spraying one password over many names from one address is throttled (5 in the fixture)."""
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert (await client.post("/api/v1/auth/token", json={"username": name, "password": "x"})).status_code == 401
    response = await client.post("/api/v1/auth/token", json={"username": "admin", "password": "demo"})
    body = assert_problem(response, 429, "this address")
    assert body["type"].endswith("/too-many-requests")


# --- credentials: hashed at rest, revocable ----------------------------------------------------


async def test_tokens_and_sessions_are_stored_only_as_hashes(client: Client) -> None:
    token = (await client.post("/api/v1/auth/token", json={"username": "floor", "password": "demo"})).json()[
        "access_token"
    ]
    assert (await _sign_in_page(client, "planner")).status_code == 303
    session = client.cookies.get("afm_session")
    assert session
    async with _own_db(client.app) as db, db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM credentials"))).all()
    dump = repr(rows)
    assert token not in dump and session not in dump
    hashes = {row.token_hash for row in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert hashlib.sha256(session.encode()).hexdigest() in hashes


async def test_revoke_all_credentials_of_a_user(client: Client, admin: dict[str, str]) -> None:
    floor_api = await bearer(client, "floor")
    floor_api_2 = await bearer(client, "floor")
    planner = await bearer(client, "planner")
    revoked = await client.post("/api/v1/users/floor/revoke-credentials", headers=admin)
    assert revoked.json() == {"username": "floor", "revoked": 2}
    for headers in (floor_api, floor_api_2):
        assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401, "revoked")
    assert (await client.get("/api/v1/auth/me", headers=planner)).status_code == 200
    assert await bearer(client, "floor")  # a fresh sign-in still works: revoking is not deactivating
    [row] = await _actions(client.app, "user.revoke_credentials")
    assert (row.actor, row.target, row.detail) == ("admin", "floor", {"revoked": 2})
    assert row.request_id == revoked.headers["x-request-id"]


async def test_deactivating_a_user_revokes_everything_and_refuses_sign_in(
    client: Client, admin: dict[str, str]
) -> None:
    engineer = await bearer(client, "engineer")
    changed = await client.patch("/api/v1/users/engineer", json={"active": False}, headers=admin)
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert_problem(await client.get("/api/v1/auth/me", headers=engineer), 401)
    refused = await client.post("/api/v1/auth/token", json={"username": "engineer", "password": "demo"})
    assert_problem(refused, 401, "wrong username or password")  # the same answer as a wrong password
    [row] = await _actions(client.app, "user.deactivate")
    assert row.detail == {"revoked": 1}
    await client.patch("/api/v1/users/engineer", json={"active": True}, headers=admin)
    assert await bearer(client, "engineer")


async def test_the_last_admin_cannot_be_removed(client: Client, admin: dict[str, str]) -> None:
    for change in ({"active": False}, {"roles": ["auditor"]}):
        assert_problem(await client.patch("/api/v1/users/admin", json=change, headers=admin), 409, "no active admin")
    assert await _actions(client.app) == []  # refused: nothing audited
    second = {"username": "root2", "password": "longenough1", "roles": ["admin"]}
    assert (await client.post("/api/v1/users", json=second, headers=admin)).status_code == 201
    assert (await client.patch("/api/v1/users/admin", json={"roles": ["auditor"]}, headers=admin)).status_code == 200


# --- security headers --------------------------------------------------------------------------


async def test_security_headers_on_pages_api_errors_and_static(client: Client) -> None:
    admin = await bearer(client, "admin")
    answers = [
        await client.get("/login"),
        await client.get("/modules", headers=admin),
        await client.get("/api/v1/modules?limit=1", headers=admin),
        await client.get("/api/v1/modules"),  # 401 problem
        await client.get("/no/such/path"),  # the router's 404
        await client.get("/static/css/afm.css"),
        await client.get("/schema/openapi.json"),
        await client.get("/healthz"),
    ]
    for response in answers:
        h = response.headers
        assert h["content-security-policy"] == CONTENT_SECURITY_POLICY, response.url
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert "camera=(self)" in h["permissions-policy"]
        assert "strict-transport-security" not in h  # plain http: HSTS would be ignored or wrong


def test_the_policy_allows_no_inline_or_evaluated_script() -> None:
    assert CSP_DIRECTIVES["script-src"] == "'self'"
    assert "unsafe" not in CSP_DIRECTIVES["style-src-elem"]
    assert CSP_DIRECTIVES["frame-ancestors"] == "'none'" and CSP_DIRECTIVES["object-src"] == "'none'"
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY


async def test_hsts_only_over_https_behind_a_trusted_proxy(demo_url: str, tmp_path: Path) -> None:
    plain = create_app(make_settings(demo_url, tmp_path))
    proxied = create_app(make_settings(demo_url, tmp_path, behind_proxy="true"))
    https = {"X-Forwarded-Proto": "https"}
    async with AsyncTestClient(app=plain) as client:
        assert "strict-transport-security" not in (await client.get("/healthz", headers=https)).headers
    async with AsyncTestClient(app=proxied) as client:
        assert "strict-transport-security" not in (await client.get("/healthz")).headers
        assert "max-age=" in (await client.get("/healthz", headers=https)).headers["strict-transport-security"]


def test_templates_carry_no_inline_script() -> None:
    """Scripts come from /static only (a JSON data block is data, not script)."""
    faults = []
    for path in sorted((WEB / "templates").rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(WEB)
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", source, re.S):
            attrs, body = match.groups()
            if "src=" not in attrs and "application/json" not in attrs and body.strip():
                faults.append(f"{name}: inline <script>")
        faults += [f"{name}: inline handler {m}" for m in re.findall(r"\s(on[a-z]+)\s*=", source)]
        faults += [f"{name}: javascript: URL" for _ in re.findall(r"javascript:", source, re.I)]
        faults += [f"{name}: evaluated htmx attribute" for _ in re.findall(r"hx-on|['\"]js:", source)]
    assert faults == []


def test_vendored_htmx_injects_the_style_the_policy_allows() -> None:
    """The CSP allows htmx's indicator <style> by its hash: an htmx upgrade that changes it must
    update app.core.security.HTMX_INDICATOR_STYLE."""
    [htmx] = list((WEB / "static" / "vendor").glob("htmx-*.min.js"))
    source = htmx.read_text(encoding="utf-8")
    assert ".${t}{opacity:0;visibility: hidden} " in source
    assert ".${n} .${t}, .${n}.${t}{opacity:1;visibility: visible;transition: opacity 200ms ease-in}" in source
    assert HTMX_INDICATOR_STYLE.startswith(".htmx-indicator{opacity:0;visibility: hidden} ")


def test_chart_svgs_hold_only_styles_the_policy_allows() -> None:
    """The fleet dashboard inlines matplotlib's SVG, whose <style> the CSP allows by hash."""
    import pandas as pd

    from app.fleet.charts import cycle_time_chart

    styles = re.findall(r"<style[^>]*>(.*?)</style>", cycle_time_chart(pd.DataFrame()), re.S)
    assert styles and set(styles) <= set(INLINE_STYLES)
    assert all(style_hash(text) in CSP_DIRECTIVES["style-src-elem"] for text in INLINE_STYLES)


# --- the admin audit trail ---------------------------------------------------------------------


async def test_admin_actions_are_audited_and_listed(client: Client, admin: dict[str, str]) -> None:
    user = {"username": "kim", "password": "longenough1", "roles": ["engineer"], "full_name": "Kim Lee"}
    created = await client.post("/api/v1/users", json=user, headers={**admin, "X-Request-ID": "req-create-kim"})
    assert created.status_code == 201
    await client.patch("/api/v1/users/kim", json={"roles": ["engineer", "auditor"]}, headers=admin)
    listed = await client.get("/api/v1/audit/admin-actions?limit=1", headers=await bearer(client, "auditor"))
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 2 and len(body["items"]) == 1
    assert body["items"][0]["action"] == "user.roles"
    assert body["items"][0]["detail"] == {"before": ["engineer"], "after": ["engineer", "auditor"]}
    [first] = (await client.get("/api/v1/audit/admin-actions?action=user.create", headers=admin)).json()["items"]
    assert first["actor"] == "admin" and first["target"] == "kim" and first["request_id"] == "req-create-kim"
    assert first["detail"] == {"roles": ["engineer"], "full_name": "Kim Lee"}
    assert "longenough1" not in listed.text + str(first)
    floor = await bearer(client, "floor")
    assert_problem(await client.get("/api/v1/audit/admin-actions", headers=floor), 403)


async def test_refused_admin_actions_write_no_audit_row(client: Client, admin: dict[str, str]) -> None:
    user = {"username": "kim", "password": "longenough1", "roles": ["engineer"]}
    floor = await bearer(client, "floor")
    assert_problem(await client.post("/api/v1/users", json=user, headers=floor), 403)
    assert_problem(await client.post("/api/v1/users", json={**user, "username": "admin"}, headers=admin), 409)
    assert_problem(await client.post("/api/v1/users/nobody/revoke-credentials", headers=admin), 404)
    assert await _actions(client.app) == []


async def _create_then_fail(db: Database) -> None:
    async with db.write() as uow:
        await service.create_user(uow, "ghost", "longenough1", ["floor"], actor="admin")
        raise RuntimeError("the action fails after the row was added")


async def test_audit_row_commits_or_rolls_back_with_its_action(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await _create_then_fail(db)
    async with db.read() as uow:
        assert list(await uow.session.scalars(select(AdminAction))) == []
        assert await service.UserRepository(uow.session).by_username("ghost") is None
    async with db.write() as uow:
        await service.create_user(uow, "ghost", "longenough1", ["floor"], actor="admin")
    async with db.read() as uow:
        [row] = list(await uow.session.scalars(select(AdminAction)))
    assert (row.actor, row.action, row.target) == ("admin", "user.create", "ghost")


async def test_the_audit_trail_is_append_only(db: Database) -> None:
    async with db.write() as uow:
        await service.create_user(uow, "ghost", "longenough1", ["floor"], actor="admin")
    for statement in ("UPDATE admin_actions SET actor = 'mallory'", "DELETE FROM admin_actions"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))


async def test_spec_creation_is_audited(client: Client, admin: dict[str, str]) -> None:
    spec = (await client.get("/api/v1/specs/L4-EDGE-20", headers=admin)).json()
    new = {k: v for k, v in spec.items() if k not in ("id",)} | {"code": "L4-EDGE-21"}
    created = await client.post("/api/v1/specs", json=new, headers=admin)
    assert created.status_code == 201, created.text
    [row] = await _actions(client.app, "spec.create")
    assert (row.actor, row.target) == ("admin", "L4-EDGE-21")


def test_cli_admin_actions_are_audited(empty_url: str, tmp_path: Path) -> None:
    if not empty_url.startswith("sqlite"):
        pytest.skip("the CLI check runs once, on SQLite")
    from app.cli import main

    env = {
        "AFM_DATABASE_URL": empty_url,
        "AFM_VAR_DIR": str(tmp_path / "var"),
        "AFM_CONFIG": str(tmp_path / "none.toml"),
        "AFM_TAG_KEY": None,
        "AFM_SECRET_KEY": None,
    }
    runner = CliRunner(env=env)

    def afm(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(main, list(args), input=stdin, catch_exceptions=False)

    assert afm("users", "create", "olga", "--role", "admin", "--password-stdin", stdin="s3cret-pass\n").exit_code == 0
    assert afm("users", "token", "olga").exit_code == 0
    assert afm("tags", "rotate-key").exit_code == 0
    assert afm("tags", "retire-key", "K2").exit_code == 1  # the active key: refused, not audited
    assert afm("tags", "retire-key", "K1").exit_code == 0
    assert afm("users", "unlock", "olga").exit_code == 0
    assert afm("users", "revoke", "olga").exit_code == 0

    import asyncio

    async def rows() -> list[tuple[str, str, str, str]]:
        database = Database(empty_url, pool_size=1)
        try:
            async with database.read() as uow:
                found = await uow.session.scalars(select(AdminAction).order_by(AdminAction.id))
                return [(r.action, r.target, r.client, r.actor.split(":")[0]) for r in found]
        finally:
            await database.dispose()

    assert asyncio.run(rows()) == [
        ("user.create", "olga", "cli", "cli"),
        ("token.issue", "olga", "cli", "cli"),
        ("tag_key.rotate", "K2", "cli", "cli"),
        ("tag_key.retire", "K1", "cli", "cli"),
        ("user.unlock", "olga", "cli", "cli"),
        ("user.revoke_credentials", "olga", "cli", "cli"),
    ]
