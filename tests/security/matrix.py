"""The RBAC matrix: every (method, path) of the app's route table × every role and anonymous, with
what the route's declaration (`opt=allow(...)`, `page(...)`, `PUBLIC`) says should happen.

`python -m tests.security.matrix` writes docs/rbac-matrix.md; tests/security checks it is current and
that the running app answers as the matrix says.
"""

from __future__ import annotations

import enum
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute

from app.core.auth.domain import ALL_ROLES

ANONYMOUS = "anonymous"
PRINCIPALS: tuple[str, ...] = (ANONYMOUS, *ALL_ROLES)
DOC = Path(__file__).resolve().parents[2] / "docs" / "rbac-matrix.md"


class Expect(enum.StrEnum):
    ALLOW = "allow"  # the guard lets it through: anything but 401/403 from the guard
    LOGIN = "login"  # a page: redirect to /login
    UNAUTHENTICATED = "401"
    FORBIDDEN = "403"


class Kind(enum.StrEnum):
    PUBLIC = "public"
    API = "api"
    PAGE = "page"
    PREFLIGHT = "preflight"  # Litestar's automatic OPTIONS answer, exempt in access_guard


@dataclass(frozen=True)
class Entry:
    method: str
    path: str  # as declared, with typed parameters: /api/v1/modules/{serial:str}
    kind: Kind
    roles: tuple[str, ...]  # who may call it (every role for public routes)
    handler: str

    def expect(self, who: str) -> Expect:
        if self.kind in (Kind.PUBLIC, Kind.PREFLIGHT):
            return Expect.ALLOW
        if who == ANONYMOUS:
            return Expect.LOGIN if self.kind is Kind.PAGE else Expect.UNAUTHENTICATED
        return Expect.ALLOW if who in self.roles else Expect.FORBIDDEN


class UndeclaredRoute(Exception):
    """A route handler without `opt=allow(...)`, `page(...)` or `PUBLIC`."""


def _is_automatic_options(handler: HTTPRouteHandler) -> bool:
    return handler.http_methods == {"OPTIONS"} and getattr(handler.fn, "__name__", "") == "options_handler"


def _handler_name(handler: HTTPRouteHandler) -> str:
    fn = handler.fn
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def route_table(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """Every (method, path, handler) the app serves, straight from its routes. Non-HTTP routes are
    refused: the matrix would not know how to check them."""
    table: list[tuple[str, str, HTTPRouteHandler]] = []
    for route in app.routes:
        if isinstance(route, (WebSocketRoute, ASGIRoute)):
            raise UndeclaredRoute(f"{route.path}: {type(route).__name__} routes are not covered by the matrix")
        assert isinstance(route, HTTPRoute)
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                table.append((method, route.path, handler))
    return sorted(table, key=lambda row: (row[1], row[0]))


def entries(app: Litestar) -> list[Entry]:
    """The matrix rows; raises UndeclaredRoute naming every route that declares nobody."""
    rows: list[Entry] = []
    undeclared: list[str] = []
    for method, path, handler in route_table(app):
        opt: dict[str, Any] = dict(handler.opt)
        if _is_automatic_options(handler):
            rows.append(Entry(method, path, Kind.PREFLIGHT, ALL_ROLES, "litestar: automatic OPTIONS"))
        elif opt.get("public"):
            rows.append(Entry(method, path, Kind.PUBLIC, ALL_ROLES, _handler_name(handler)))
        elif opt.get("roles"):
            roles = tuple(str(r) for r in opt["roles"])
            kind = Kind.PAGE if opt.get("page") else Kind.API
            rows.append(Entry(method, path, kind, roles, _handler_name(handler)))
        else:
            undeclared.append(f"{method} {path} ({_handler_name(handler)})")
    if undeclared:
        raise UndeclaredRoute("routes without an access declaration: " + "; ".join(undeclared))
    return rows


_MARK = {Expect.ALLOW: "✓", Expect.LOGIN: "→ login", Expect.UNAUTHENTICATED: "401", Expect.FORBIDDEN: "403"}


def markdown(rows: list[Entry]) -> str:
    preflight = sum(1 for e in rows if e.kind is Kind.PREFLIGHT)
    head = (
        "# RBAC matrix\n\n"
        "Generated from the route table and each route's declaration by `python -m tests.security.matrix`;\n"
        "`tests/security/test_rbac_matrix.py` checks this file is current and that the app answers every\n"
        "cell as shown. ✓ allowed (the guard lets the request through), 401 problem details (not signed in),\n"
        "403 problem details (signed in, role not allowed), → login (a page redirects to the sign-in form).\n"
        f"{len(rows)} (method, path) pairs × {len(PRINCIPALS)} principals; the {preflight} automatic OPTIONS\n"
        "rows (✓ for everyone) are checked by the test and left out below.\n\n"
    )
    header = "| Method | Path | Kind | " + " | ".join(PRINCIPALS) + " |\n"
    rule = "|---|---|---|" + "---|" * len(PRINCIPALS) + "\n"
    lines = [
        f"| {e.method} | `{e.path}` | {e.kind} | " + " | ".join(_MARK[e.expect(p)] for p in PRINCIPALS) + " |\n"
        for e in rows
        if e.kind is not Kind.PREFLIGHT
    ]
    return head + header + rule + "".join(lines)


def build_app() -> Litestar:
    """The app as configured for tests, without a database connection (routes only)."""
    from app.asgi import create_app
    from app.core.config import load_settings

    var = tempfile.mkdtemp(prefix="afm-matrix-")
    settings = load_settings(
        environ={
            "AFM_VAR_DIR": var,
            "AFM_DATABASE_URL": f"sqlite+aiosqlite:///{var}/unused.db",
            "AFM_SECRET_KEY": "matrix",
            "AFM_TAG_KEY": "matrix",
            "AFM_LOG_LEVEL": "warning",
        },
        config_file=Path(var) / "none.toml",
    )
    return create_app(settings)


def main() -> int:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(markdown(entries(build_app())), encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
