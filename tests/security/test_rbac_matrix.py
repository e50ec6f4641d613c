"""Every route × every role and anonymous, checked against the running app.

The matrix comes from the route table and each route's declaration (tests/security/matrix.py), so a
new route is covered the moment it exists, and a route that declares nobody fails here."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select

from app.asgi import create_app
from app.core.auth.domain import hash_token
from app.core.auth.models import Credential, User
from app.core.db import utcnow
from tests.conftest import make_settings
from tests.security.matrix import (
    DOC,
    PRINCIPALS,
    Entry,
    Expect,
    UndeclaredRoute,
    entries,
    markdown,
    route_table,
)

_PARAM = re.compile(r"\{(\w+):(\w+)\}")
# Path parameters: well-typed values that name nothing, so an allowed request reaches the handler
# (the guard runs first) and ends in 404/400/422 without changing demo data.
_DUMMY = {"int": "999999", "str": "zz-none", "path": "zz/none.txt", "uuid": "00000000-0000-0000-0000-000000000000"}


def concrete(path: str) -> str:
    return _PARAM.sub(lambda m: _DUMMY.get(m.group(2), "zz-none"), path)


class _Sent(Exception):
    """Stops the app once the response has started (streams such as Server-Sent Events never end)."""


def _stopped_by_us(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, _Sent):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(_stopped_by_us(inner) for inner in exc.exceptions)
        exc = exc.__cause__ or exc.__context__
    return False


async def call(app: Litestar, method: str, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app; the body only for 401/403 (small problem details)."""
    headers = [(b"host", b"testserver"), (b"accept", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    answered = False

    async def receive() -> dict[str, Any]:
        nonlocal answered
        if not answered:
            answered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects; _Sent ends the call first
        return {"type": "http.disconnect"}

    status = 0
    response_headers: dict[str, str] = {}
    body = bytearray()

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update({k.decode().lower(): v.decode() for k, v in message.get("headers", [])})
            if status not in (401, 403):
                raise _Sent
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                raise _Sent

    try:
        await asyncio.wait_for(app(scope, receive, send), timeout=60)  # type: ignore[arg-type]
    except Exception as exc:  # _Sent itself, or wrapped by Litestar or a stream's task group
        if not _stopped_by_us(exc):
            raise
    assert status, f"{method} {path}: no response"
    return status, response_headers, bytes(body)


def mismatch(entry: Entry, who: str, status: int, headers: dict[str, str], body: bytes) -> str | None:
    expected = entry.expect(who)
    where = f"{entry.method} {entry.path} as {who}: expected {expected}, got {status}"
    problem = headers.get("content-type", "").startswith("application/problem+json")
    if expected is Expect.ALLOW:
        if status in (401, 403):
            return f"{where} {body[:200]!r}"
        if status in (302, 303, 307) and headers.get("location", "").startswith("/login?next="):
            return f"{where} (the guard sent it to the login page)"
        return None
    if expected is Expect.LOGIN:
        ok = status in (302, 303, 307) and headers.get("location", "").startswith("/login?next=")
        return None if ok else where
    if not problem:
        return f"{where} (not problem details)"
    detail = msgspec.json.decode(body)
    if expected is Expect.UNAUTHENTICATED:
        return None if status == 401 and detail["type"].endswith("/not-authenticated") else where
    # 403 from the guard names the roles that are allowed.
    if status != 403 or sorted(detail.get("allowed_roles", [])) != sorted(entry.roles):
        return f"{where} {detail}"
    return None


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite only: the guard does not depend on the dialect, and 1,500 requests twice would cost CI
    half a minute; token resolution on PostgreSQL is covered by the API tests."""
    return str(request.param)


@pytest.fixture(scope="session")
def matrix_route_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix-route-cache")


async def _tokens(app: Litestar, count: int) -> dict[str, list[str]]:
    """`count` fresh API tokens per demo login, written directly (no password hashing), so that a
    request that revokes its own token (DELETE /api/v1/auth/token) cannot spoil the next one."""
    db = app.state.db
    tokens: dict[str, list[str]] = {}
    async with db.write() as uow:
        users = {u.username: u for u in await uow.session.scalars(select(User))}
        for who in PRINCIPALS[1:]:
            user = users[who]
            assert user.roles == [who], "each demo login holds exactly its own role"
            tokens[who] = [secrets.token_urlsafe(32) for _ in range(count)]
            uow.session.add_all(
                Credential(
                    user_id=user.id,
                    kind="api",
                    token_hash=hash_token(t),
                    label="rbac-matrix",
                    expires_at=utcnow() + dt.timedelta(hours=1),
                )
                for t in tokens[who]
            )
    return tokens


async def test_every_route_answers_every_role_as_declared(
    demo_url: str, tmp_path: Path, matrix_route_cache: Path
) -> None:
    app = create_app(make_settings(demo_url, tmp_path, cache_dir=matrix_route_cache))
    rows = entries(app)
    assert len(rows) == len(route_table(app)) > 100  # every (method, path) of the route table, none skipped
    tokens = await _tokens(app, len(rows))
    failures: list[str] = []
    checked = 0
    try:
        for index, entry in enumerate(rows):
            path = concrete(entry.path)
            for who in PRINCIPALS:
                token = None if who == PRINCIPALS[0] else tokens[who][index]
                status, headers, body = await call(app, entry.method, path, token)
                checked += 1
                if problem := mismatch(entry, who, status, headers, body):
                    failures.append(problem)
    finally:
        await app.state.db.dispose()
    assert not failures, f"{len(failures)} cells differ from the declarations:\n" + "\n".join(failures)
    assert checked == len(route_table(app)) * len(PRINCIPALS)


def test_a_route_without_a_declaration_fails_the_matrix(tmp_path: Path) -> None:
    from litestar import get

    @get("/undeclared", sync_to_thread=False)
    def undeclared() -> str:
        return "who may call this?"

    app = Litestar(route_handlers=[undeclared])
    with pytest.raises(UndeclaredRoute, match="GET /undeclared"):
        entries(app)


def test_the_committed_matrix_is_current() -> None:
    from tests.security.matrix import build_app

    current = markdown(entries(build_app()))
    assert DOC.exists() and DOC.read_text(encoding="utf-8") == current, (
        "docs/rbac-matrix.md is out of date: run `python -m tests.security.matrix`"
    )
