"""Domain errors, raised by pure code and mapped once to RFC 9457 problem details at the edge.

Statuses follow the contract: 400 malformed input, 401/403 auth, 404 unknown, 409 version or state
conflict, 413 too large, 422 a rule refused (the rule is named in `detail`).
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://afm.dev/problems/"


class DomainError(Exception):
    status: ClassVar[int] = 422
    slug: ClassVar[str] = "rule-refused"
    title: ClassVar[str] = "A rule refused the request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


class InvalidInput(DomainError):
    status = 400
    slug = "invalid-input"
    title = "Malformed input"


class NotAuthenticated(DomainError):
    status = 401
    slug = "not-authenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    status = 403
    slug = "permission-denied"
    title = "Permission denied"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class RuleRefused(DomainError):
    status = 422
    slug = "rule-refused"
    title = "A rule refused the request"


class TooLarge(DomainError):
    status = 413
    slug = "too-large"
    title = "Request too large"


class TooManyRequests(DomainError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class UnsupportedMediaType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"
