"""Sign-in pages: a server-side session in the database, a cookie, and a CSRF token per session."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Response, Template

from app.core.auth import service
from app.core.auth.domain import ALL_ROLES, Principal
from app.core.auth.guards import PUBLIC, SESSION_COOKIE, page
from app.core.config import Settings
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.security import client_address
from app.web.diagram import render_svg

LOGIN_CSRF_COOKIE = "afm_login_csrf"


class LoginForm(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(max_length=64)] = ""
    password: Annotated[str, msgspec.Meta(max_length=512)] = ""
    next: str = "/modules"
    csrf: str = ""


def safe_next(target: str) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/modules"
    return target


def _login_page(next_url: str, error: str = "", username: str = "", status: int = 200) -> Template:
    token = secrets.token_urlsafe(24)
    response = Template(
        template_name="login.html",
        context={"next": safe_next(next_url), "error": error, "username": username, "login_csrf": token},
        status_code=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


class SessionPages(Controller):
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def home(self) -> Redirect:
        return Redirect(path="/modules")

    @get("/login", opt=PUBLIC)
    async def login_form(self, next: FromQuery[str] = "/modules") -> Template:
        return _login_page(next)

    @post("/login", opt=PUBLIC, status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[LoginForm],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, data.csrf):
            return _login_page(data.next, "Your sign-in form expired; please try again.", data.username, 400)
        client = client_address(request.scope, settings.behind_proxy)
        result = await service.sign_in(
            db, data.username, data.password, client=client, kind="session", settings=settings
        )
        if result.error is not None:
            page = _login_page(data.next, result.error.detail, data.username, result.error.status)
            if "retry_after_s" in result.error.extra:  # throttled or locked, as on the API
                page.headers["Retry-After"] = str(result.error.extra["retry_after_s"])
            return page
        token = result.token
        response: Response[Any] = Redirect(path=safe_next(data.next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
            max_age=settings.session_ttl_hours * 3600,
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @post("/logout", opt=page(*ALL_ROLES), status_code=200)
    async def logout(
        self, request: HTMXRequest, db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> Response[Any]:
        async with db.write() as uow:
            await service.revoke(uow, request.cookies.get(SESSION_COOKIE, ""), "session")
        response: Response[Any] = ClientRedirect("/login") if request.htmx else Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


class LifecyclePages(Controller):
    include_in_schema = False

    @get("/lifecycle", opt=page(*ALL_ROLES))
    async def lifecycle_page(
        self, lifecycle: NamedDependency[Lifecycle], principal: NamedDependency[Principal]
    ) -> Template:
        """The lifecycle as a diagram drawn on the server from the definition."""
        return Template(
            template_name="lifecycle.html",
            context={"principal": principal, "lifecycle": lifecycle, "svg": render_svg(lifecycle)},
        )
