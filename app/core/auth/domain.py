"""Roles and the pure rules of access. No I/O."""

from __future__ import annotations

import hashlib
from enum import StrEnum

import msgspec


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
