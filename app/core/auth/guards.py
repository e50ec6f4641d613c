"""Every route declares who may call it (`opt=allow(...)` or `opt=PUBLIC`); one guard enforces it.

Bearer tokens are for the API and scanners. Pages use a server-side session cookie, and any unsafe
request made with that cookie must echo the session's CSRF token in the `X-CSRFToken` header.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.core.auth import service
from app.core.auth.domain import Principal, may_access
from app.core.errors import NotAuthenticated, PermissionDenied

SESSION_COOKIE = "afm_session"
CSRF_HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PUBLIC: dict[str, Any] = {"public": True}


def allow(*roles: str) -> dict[str, Any]:
    if not roles:
        raise ValueError("allow() needs at least one role")
    return {"roles": tuple(roles)}


def page(*roles: str) -> dict[str, Any]:
    """A server-rendered page: unauthenticated visitors are sent to the login page."""
    return {"roles": tuple(roles), "page": True}


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    cached = connection.scope.get("afm_principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    db = connection.app.state.db
    header = connection.headers.get("authorization", "")
    principal: Principal | None = None
    async with db.read() as uow:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
            principal = await service.resolve(uow, token.strip(), "api")
            if principal is None:
                raise NotAuthenticated("the bearer token is unknown, expired or revoked")
        elif cookie := connection.cookies.get(SESSION_COOKIE):
            principal = await service.resolve(uow, cookie, "session")
    if principal is not None:
        connection.scope["afm_principal"] = principal  # type: ignore[typeddict-unknown-key]
    return principal


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    opt = handler.opt
    if opt.get("public") or connection.scope.get("method") == "OPTIONS":
        return  # OPTIONS: Litestar's automatic preflight answer, which reads and writes nothing
    roles = opt.get("roles")
    if not roles:
        # Fail closed: a route that forgot to declare its roles is nobody's.
        raise PermissionDenied(f"route {connection.url.path} declares no roles")
    principal = await principal_of(connection)
    if principal is None:
        raise NotAuthenticated("sign in first: send 'Authorization: Bearer <token>' or a session cookie")
    if principal.via == "session" and connection.scope.get("method", "GET") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, principal.csrf_token):
            raise PermissionDenied("missing or wrong CSRF token (header X-CSRFToken)")
    if not may_access(principal.roles, roles):
        raise PermissionDenied(
            f"role(s) {', '.join(principal.roles)} may not do this; allowed: {', '.join(roles)}",
            allowed_roles=list(roles),
        )


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("afm_principal")
    if principal is None:
        raise NotAuthenticated("sign in first")
    return principal  # type: ignore[no-any-return]
