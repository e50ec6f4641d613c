"""The single map from errors to RFC 9457 problem details (and, for pages, to a login redirect)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect
from sqlalchemy.exc import IntegrityError

from app.core.errors import PROBLEM_BASE, DomainError, NotAuthenticated
from app.core.observability import current_request_id, log

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


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    IntegrityError: handle_integrity_error,
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_internal_error,
}
