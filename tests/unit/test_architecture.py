"""The shape of the code: a pure domain, and no route without a role declaration."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from app.asgi import create_app
from app.core.auth.domain import ALL_ROLES
from tests.conftest import make_settings

APP = Path(__file__).resolve().parents[2] / "app"
FORBIDDEN = ("litestar", "sqlalchemy", "advanced_alchemy", "asyncpg", "aiosqlite", "reportlab", "httpx")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# Pure modules: domain rules, and the tag payload and label template code (no I/O, no frameworks).
DOMAIN_FILES = sorted([*APP.glob("**/domain.py"), APP / "tags" / "payload.py", APP / "tags" / "labels.py"])


def test_there_are_domain_modules() -> None:
    assert len(DOMAIN_FILES) >= 4


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(APP)))
def test_domain_is_pure(path: Path) -> None:
    bad = _imports(path) & set(FORBIDDEN)
    assert not bad, f"{path.relative_to(APP)} imports {sorted(bad)}: domain code does no I/O"


@pytest.fixture
def app(tmp_path: Path) -> Litestar:
    # Building the app opens no connection, so no database is needed to walk its routes.
    return create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}", tmp_path))


def test_every_route_declares_who_may_call_it(app: Litestar) -> None:
    undeclared = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's automatic CORS preflight answer; it runs no handler code
            opt = handler.opt
            if opt.get("public"):
                continue
            roles = opt.get("roles")
            if not roles or not set(roles) <= set(ALL_ROLES):
                undeclared.append(f"{sorted(handler.http_methods)} {route.path}")
    assert not undeclared, f"routes without a valid role declaration: {undeclared}"


def test_public_routes_are_few_and_known(app: Litestar) -> None:
    public = {
        route.path
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get("public")
    }
    # /field/sw.js: the field pages' service worker script (static code, served from /field/ for its scope)
    allowed = {"/", "/login", "/healthz", "/readyz", "/metrics", "/api/v1/auth/token", "/field/sw.js"}
    extra = {p for p in public - allowed if not p.startswith(("/static", "/schema"))}
    assert not extra, f"unexpected public routes: {sorted(extra)}"
