from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
RoleName = Literal["admin", "floor", "planner", "engineer", "auditor"]


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime | None = None


class UserRead(msgspec.Struct):
    username: str
    full_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=512)]
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1)]
    full_name: str = ""


class Me(msgspec.Struct):
    username: str
    roles: list[str]
    via: str


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Fields left out stay as they are. `active: false` also revokes every token and session."""

    active: bool | None = None
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1)] | None = None
    full_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class CredentialsRevoked(msgspec.Struct):
    username: str
    revoked: int


class Unlocked(msgspec.Struct):
    username: str
    was_locked: bool
