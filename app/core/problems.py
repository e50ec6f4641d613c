"""The single map from errors to RFC 9457 problem details (and, for pages, to a login redirect)."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins import ReceiveRoutePlugin
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect
from litestar.routes import BaseRoute, HTTPRoute
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core.errors import PROBLEM_BASE, DomainError, NotAuthenticated
from app.core.observability import current_request_id, log

if TYPE_CHECKING:
    from litestar._kwargs import KwargsModel

_SLUGS = {
    400: "invalid-input",
    401: "not-authenticated",
    403: "permission-denied",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "rule-refused",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


def _type_for(status: int) -> str:
    return PROBLEM_BASE + _SLUGS.get(status, str(status))


def domain_to_problem(exc: DomainError) -> ProblemDetailsException:
    headers = None
    if "retry_after_s" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after_s"])}
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="afm"'}
    return ProblemDetailsException(
        status_code=exc.status,
        type_=exc.type_uri,
        title=exc.title,
        detail=exc.detail,
        extra={**exc.extra, "request_id": current_request_id()},
        headers=headers,
    )


def http_to_problem(exc: HTTPException) -> ProblemDetailsException:
    status = exc.status_code
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if exc.detail and exc.detail != title else title
    extra: dict[str, Any] = {"request_id": current_request_id()}
    if isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = exc.extra
        messages = "; ".join(
            f"{e.get('key') or e.get('source', 'body')}: {e.get('message')}" for e in exc.extra if isinstance(e, dict)
        )
        if messages:
            detail = f"{detail}: {messages}"
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    return ProblemDetailsException(
        status_code=status,
        type_=_type_for(status),
        title=title,
        detail=detail,
        extra=extra,
        headers=exc.headers,
    )


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if isinstance(exc, NotAuthenticated) and request.route_handler.opt.get("page"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(path=f"/login?next={quote(target)}")
    return domain_to_problem(exc).to_response(request)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ProblemDetailsException):
        return exc.to_response(request)
    return http_to_problem(exc).to_response(request)


def handle_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    problem = ProblemDetailsException(
        status_code=500,
        type_=_type_for(500),
        title="Internal Server Error",
        detail="the server failed to handle this request; quote the request id when reporting it",
        extra={"request_id": current_request_id()},
    )
    return problem.to_response(request)


def handle_integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    """A uniqueness race lost to a concurrent writer: the client may retry."""
    log.warning("integrity conflict", path=request.url.path, error=str(exc.orig))
    problem = ProblemDetailsException(
        status_code=409,
        type_=_type_for(409),
        title="Conflict with the current state",
        detail="a concurrent change conflicted with this one; nothing was written, retry",
        extra={"request_id": current_request_id()},
    )
    return problem.to_response(request)


def _is_data_error(exc: BaseException) -> bool:
    """A value the database cannot take: SQLSTATE class 22 (a NUL in text, a number out of range, …),
    asyncpg refusing to encode a parameter, or sqlite3 an integer beyond 64 bits."""
    if isinstance(exc, OverflowError):
        return True
    if isinstance(exc, DBAPIError):
        if str(getattr(exc.orig, "sqlstate", None) or "").startswith("22"):
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return isinstance(cause, ValueError | OverflowError)  # asyncpg's client-side DataError is a ValueError
    return False


def handle_data_error(request: Request[Any, Any, Any], exc: DBAPIError | OverflowError) -> Response[Any]:
    """Input the schema let through but the database cannot store is malformed input, not a server fault."""
    if not _is_data_error(exc):
        return handle_internal_error(request, exc)
    log.warning("value refused by the database", path=request.url.path, error=str(exc).splitlines()[0][:200])
    problem = ProblemDetailsException(
        status_code=400,
        type_=_type_for(400),
        title="Malformed input",
        detail="a value in the request is outside what can be stored (too large a number, a NUL character, …)",
        extra={"request_id": current_request_id()},
    )
    return problem.to_response(request)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    IntegrityError: handle_integrity_error,
    DBAPIError: handle_data_error,
    OverflowError: handle_data_error,
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_internal_error,
}


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details: how every API error answers (rule-specific members may follow)."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed input (problem details)",
    401: "Authentication required or failed (problem details)",
    403: "The caller's role may not do this (problem details)",
    404: "Something named in the request does not exist (problem details)",
    409: "Version or state conflict (problem details)",
    413: "Request body too large (problem details)",
    415: "Unsupported request media type (problem details)",
    422: "A rule refused the request; the rule is named in detail (problem details)",
    429: "Too many requests; see Retry-After (problem details)",
}
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _problem_statuses(route: HTTPRoute, handler: HTTPRouteHandler, params: KwargsModel) -> set[int]:
    """The error statuses an API operation can answer, from what it is (method, input, roles)."""
    statuses = {401}  # a missing, bad or revoked token; on the token endpoint, wrong credentials
    if not handler.opt.get("public"):
        statuses.add(403)
    unsafe = bool(handler.http_methods & _UNSAFE)
    if route.path_parameters or params.expected_query_params or unsafe:
        # input can be malformed, name something that does not exist, or be refused by a rule
        statuses |= {400, 404, 422}
    if unsafe:
        statuses |= {409, 413, 415}
        if handler.opt.get("public"):
            statuses.add(429)  # the token endpoint: a locked account or too many failed sign-ins
    return statuses


class ProblemResponses(ReceiveRoutePlugin):
    """Declares in the OpenAPI what every API operation answers on error, and who may call it.

    Litestar documents only a 400 of its own shape; clients (and the API fuzzing) need the statuses and
    the `application/problem+json` body the handlers really send. A handler's own `responses=` entries
    win over these defaults. The bearer requirement goes on each operation that is not public, so that
    `/healthz`, `/readyz` and the token endpoint are documented as open (a global one cannot be lifted).
    """

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler, params in route.route_handler_map.values():
            if not handler.opt.get("public") and not handler.security:
                handler.security = [{"bearer": []}]
            if not route.path.startswith("/api/"):
                continue
            declared = dict(handler.responses or {})
            for status in sorted(_problem_statuses(route, handler, params)):
                declared.setdefault(
                    status,
                    ResponseSpec(
                        data_container=Problem,
                        description=_PROBLEM_DESCRIPTIONS[status],
                        media_type="application/problem+json",
                        generate_examples=False,
                    ),
                )
            handler.responses = declared
