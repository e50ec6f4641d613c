"""Use cases of sign-in: users, passwords (argon2), bearer tokens and page sessions."""

from __future__ import annotations

import datetime as dt
import secrets

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.auth.domain import Principal, hash_token, login_throttled, unknown_roles
from app.core.auth.models import Credential, LoginAttempt, User
from app.core.auth.repository import UserRepository
from app.core.config import Settings
from app.core.db import Database, UnitOfWork, utcnow
from app.core.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests

_hasher = PasswordHasher()
# Verifying against a real hash for unknown users keeps the timing the same as for known ones.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_user(
    uow: UnitOfWork,
    username: str,
    password: str,
    roles: list[str],
    full_name: str = "",
    *,
    check_policy: bool = True,
) -> User:
    """Create a user. `check_policy=False` only for the documented demo logins."""
    bad = unknown_roles(roles)
    if bad:
        raise InvalidInput(f"unknown role(s): {', '.join(bad)}", roles=bad)
    if not roles:
        raise InvalidInput("a user needs at least one role")
    if check_policy and len(password) < 8:
        raise InvalidInput("password must be at least 8 characters")
    repo = UserRepository(uow.session)
    if await repo.by_username(username):
        raise Conflict(f"user {username!r} already exists", username=username)
    user = User(username=username, password_hash=hash_password(password), roles=list(roles), full_name=full_name)
    repo.add(user)
    await uow.session.flush()
    return user


async def get_user(uow: UnitOfWork, username: str) -> User:
    user = await UserRepository(uow.session).by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r}", username=username)
    return user


async def check_password(
    uow: UnitOfWork, username: str, password: str, *, client: str, max_failures: int, window_s: int
) -> User | NotAuthenticated | TooManyRequests:
    """Returns the user, or the error to raise *after* the transaction commits (so failures count)."""
    repo = UserRepository(uow.session)
    now = utcnow()
    failures = await repo.recent_failures(username, client, now - dt.timedelta(seconds=window_s))
    if login_throttled(failures, max_failures):
        return TooManyRequests(
            f"too many failed sign-ins; try again in {window_s // 60} minutes", retry_after_s=window_s
        )
    user = await repo.by_username(username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        repo.add(LoginAttempt(username=username, client=client, at=now))
        return NotAuthenticated("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def issue_credential(
    uow: UnitOfWork, user: User, *, kind: str, ttl: dt.timedelta, label: str = ""
) -> tuple[str, Credential]:
    token = secrets.token_urlsafe(32)
    credential = Credential(
        user_id=user.id,
        kind=kind,
        token_hash=hash_token(token),
        label=label,
        csrf_token=secrets.token_urlsafe(24) if kind == "session" else "",
        expires_at=utcnow() + ttl,
    )
    UserRepository(uow.session).add(credential)
    await uow.session.flush()
    return token, credential


async def resolve(uow: UnitOfWork, token: str, kind: str) -> Principal | None:
    credential = await UserRepository(uow.session).credential(hash_token(token), kind)
    if credential is None or credential.revoked_at is not None or credential.expires_at <= utcnow():
        return None
    user = credential.user
    if not user.active:
        return None
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=tuple(user.roles),
        via=kind,
        csrf_token=credential.csrf_token,
    )


async def revoke(uow: UnitOfWork, token: str, kind: str) -> bool:
    credential = await UserRepository(uow.session).credential(hash_token(token), kind)
    if credential is None or credential.revoked_at is not None:
        return False
    credential.revoked_at = utcnow()
    return True


class SignIn(msgspec.Struct):
    """The outcome of a sign-in: a new credential, or the error to raise after committing (so that
    the failed attempt is counted for throttling)."""

    token: str = ""
    expires_at: dt.datetime | None = None
    error: NotAuthenticated | TooManyRequests | None = None


async def sign_in(db: Database, username: str, password: str, *, client: str, kind: str, settings: Settings) -> SignIn:
    """Check the password and issue an API token (kind "api") or a page session (kind "session")."""
    ttl = (
        dt.timedelta(days=settings.api_token_ttl_days)
        if kind == "api"
        else dt.timedelta(hours=settings.session_ttl_hours)
    )
    async with db.write() as uow:
        outcome = await check_password(
            uow,
            username,
            password,
            client=client,
            max_failures=settings.login_max_failures,
            window_s=settings.login_window_s,
        )
        if not isinstance(outcome, User):
            return SignIn(error=outcome)
        token, credential = await issue_credential(uow, outcome, kind=kind, ttl=ttl, label=kind)
    return SignIn(token=token, expires_at=credential.expires_at)
