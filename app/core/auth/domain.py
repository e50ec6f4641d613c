"""Roles and the pure rules of access. No I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from enum import StrEnum

import msgspec

from app.core.errors import Conflict, TooManyRequests


class Role(StrEnum):
    ADMIN = "admin"
    FLOOR = "floor"
    PLANNER = "planner"
    ENGINEER = "engineer"
    AUDITOR = "auditor"


ALL_ROLES: tuple[str, ...] = tuple(r.value for r in Role)
STAFF: tuple[str, ...] = (Role.ADMIN, Role.FLOOR, Role.PLANNER, Role.ENGINEER)


class Principal(msgspec.Struct, frozen=True):
    """Who is acting on this request, and how they signed in."""

    user_id: int
    username: str
    roles: tuple[str, ...]
    via: str  # "api" (bearer token) or "session" (page cookie)
    csrf_token: str = ""

    @property
    def role(self) -> str:
        """The role recorded on ledger events: the first of the user's roles."""
        return self.roles[0] if self.roles else ""


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def may_access(user_roles: tuple[str, ...] | list[str], allowed: tuple[str, ...] | list[str]) -> bool:
    return bool(set(user_roles) & set(allowed))


def unknown_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    return [r for r in roles if r not in ALL_ROLES]


def login_throttled(recent_failures: int, max_failures: int) -> bool:
    return recent_failures >= max_failures


class AccountLocked(TooManyRequests):
    """Too many failed sign-ins for one username, from any clients: the account waits (or an admin
    unlocks it). Same 429 as the per-client throttle, with its own problem type."""

    slug = "account-locked"
    title = "Account locked"


def locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and locked_until > now


def seconds_until(until: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds to wait, at least 1 (for Retry-After)."""
    return max(1, math.ceil((until - now).total_seconds()))


def failures_counted_since(now: dt.datetime, window_s: int, counted_from: dt.datetime | None) -> dt.datetime:
    """Failures count toward a lock within the window, and only after the last lock or unlock."""
    start = now - dt.timedelta(seconds=window_s)
    return max(start, counted_from) if counted_from is not None else start


def check_admins_remain(active_admins_after: int) -> None:
    """Never leave the service without an active admin (nobody could then undo the change)."""
    if active_admins_after < 1:
        raise Conflict("this change would leave no active admin", rule="last_admin")
