"""Use cases of sign-in: users, passwords (argon2), bearer tokens and page sessions."""

from __future__ import annotations

import datetime as dt
import secrets

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.audit import record_admin_action
from app.core.auth.domain import (
    AccountLocked,
    Principal,
    check_admins_remain,
    failures_counted_since,
    hash_token,
    locked,
    login_throttled,
    seconds_until,
    unknown_roles,
)
from app.core.auth.models import Credential, LoginAttempt, LoginLockout, User
from app.core.auth.repository import UserRepository
from app.core.config import Settings
from app.core.db import Database, UnitOfWork, utcnow
from app.core.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from app.core.observability import log

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
    actor: Principal | str | None = None,
) -> User:
    """Create a user, audited as done by `actor`. `check_policy=False` and no actor only for the
    documented demo logins."""
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
    if actor is not None:
        record_admin_action(uow, actor, "user.create", username, roles=list(roles), full_name=full_name)
    return user


async def get_user(uow: UnitOfWork, username: str) -> User:
    user = await UserRepository(uow.session).by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r}", username=username)
    return user


class LoginPolicy(msgspec.Struct, frozen=True):
    """The sign-in limits from the settings: a per-client throttle and a per-account lockout."""

    client_max_failures: int
    client_window_s: int
    lockout_failures: int
    lockout_window_s: int
    lockout_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            client_max_failures=settings.login_max_failures,
            client_window_s=settings.login_window_s,
            lockout_failures=settings.login_lockout_failures,
            lockout_window_s=settings.login_lockout_window_s,
            lockout_s=settings.login_lockout_s,
        )


async def check_password(
    uow: UnitOfWork, username: str, password: str, *, client: str, policy: LoginPolicy
) -> User | NotAuthenticated | TooManyRequests:
    """Returns the user, or the error to raise *after* the transaction commits (so failures count).

    Every count lives in the database, so all workers agree. Refusals that come before the password
    check (throttled client, locked account) record nothing and spend no hashing time."""
    repo = UserRepository(uow.session)
    now = utcnow()
    failures = await repo.client_failures(client, now - dt.timedelta(seconds=policy.client_window_s))
    if login_throttled(failures, policy.client_max_failures):
        return TooManyRequests(
            f"too many failed sign-ins from this address; try again in {max(1, policy.client_window_s // 60)} minutes",
            retry_after_s=policy.client_window_s,
        )
    lock = await repo.lockout(username, for_update=True)
    if lock is not None and lock.locked_until is not None and locked(lock.locked_until, now):
        return _account_locked(lock.locked_until, now)
    user = await repo.by_username(username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        repo.add(LoginAttempt(username=username, client=client, at=now))
        since = failures_counted_since(now, policy.lockout_window_s, lock.counted_from if lock else None)
        if await repo.username_failures(username, since) >= policy.lockout_failures:
            return _lock(repo, lock, username, now, policy)
        return NotAuthenticated("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _account_locked(until: dt.datetime, now: dt.datetime) -> AccountLocked:
    wait = seconds_until(until, now)
    return AccountLocked(
        f"too many failed sign-ins for this account; it is locked for {max(1, round(wait / 60))} more minutes "
        "(an admin can unlock it)",
        retry_after_s=wait,
        locked_until=until.isoformat(),
    )


def _lock(
    repo: UserRepository, lock: LoginLockout | None, username: str, now: dt.datetime, policy: LoginPolicy
) -> AccountLocked:
    """Lock the name (whether or not such a user exists, so a lock reveals nothing)."""
    if lock is None:
        lock = LoginLockout(username=username, failures=0)
        repo.add(lock)
    lock.locked_at = now
    lock.locked_until = now + dt.timedelta(seconds=policy.lockout_s)
    lock.counted_from = now  # the failures that caused this lock never count toward the next one
    lock.failures = policy.lockout_failures
    lock.unlocked_at = None
    lock.unlocked_by = ""
    log.warning("account locked", username=username, until=lock.locked_until.isoformat())
    return _account_locked(lock.locked_until, now)


class UnlockResult(msgspec.Struct):
    username: str
    was_locked: bool


async def unlock(uow: UnitOfWork, username: str, actor: Principal | str) -> UnlockResult:
    """An admin lifts an account lock early; failures before now no longer count."""
    repo = UserRepository(uow.session)
    lock = await repo.lockout(username, for_update=True)
    if lock is None and await repo.by_username(username) is None:
        raise NotFound(f"no user {username!r} and no lock on that name", username=username)
    now = utcnow()
    was_locked = lock is not None and locked(lock.locked_until, now)
    if lock is not None:
        lock.locked_until = None
        lock.counted_from = now
        lock.unlocked_at = now
        lock.unlocked_by = actor.username if isinstance(actor, Principal) else actor
    record_admin_action(uow, actor, "user.unlock", username, was_locked=was_locked)
    return UnlockResult(username=username, was_locked=was_locked)


async def revoke_all_credentials(uow: UnitOfWork, username: str, actor: Principal | str) -> int:
    """Revoke every token and session of a user (a lost laptop, a leaver). Returns how many."""
    user = await get_user(uow, username)
    count = await UserRepository(uow.session).revoke_all(user.id, utcnow())
    record_admin_action(uow, actor, "user.revoke_credentials", username, revoked=count)
    return count


async def update_user(
    uow: UnitOfWork,
    username: str,
    actor: Principal | str,
    *,
    active: bool | None = None,
    roles: list[str] | None = None,
    full_name: str | None = None,
) -> User:
    """Change a user's roles, name or whether they may sign in. Deactivating also revokes every
    credential at once; each change is one audit row."""
    repo = UserRepository(uow.session)
    user = await get_user(uow, username)
    if roles is not None:
        bad = unknown_roles(roles)
        if bad or not roles:
            raise InvalidInput(f"unknown role(s): {', '.join(bad)}" if bad else "a user needs at least one role")
    admins_after = [u for u in await repo.active_admins() if u.id != user.id]
    stays_admin = (user.active if active is None else active) and "admin" in (user.roles if roles is None else roles)
    check_admins_remain(len(admins_after) + (1 if stays_admin else 0))
    if roles is not None and list(roles) != list(user.roles):
        record_admin_action(uow, actor, "user.roles", username, before=list(user.roles), after=list(roles))
        user.roles = list(roles)
    if full_name is not None and full_name != user.full_name:
        record_admin_action(uow, actor, "user.rename", username, before=user.full_name, after=full_name)
        user.full_name = full_name
    if active is not None and active != user.active:
        user.active = active
        revoked = 0 if active else await repo.revoke_all(user.id, utcnow())
        action = "user.activate" if active else "user.deactivate"
        record_admin_action(uow, actor, action, username, **({} if active else {"revoked": revoked}))
    await uow.session.flush()
    return user


async def issue_credential(
    uow: UnitOfWork,
    user: User,
    *,
    kind: str,
    ttl: dt.timedelta,
    label: str = "",
    issued_by: Principal | str | None = None,
) -> tuple[str, Credential]:
    """A new random token; only its SHA-256 is stored. `issued_by` (an admin or "cli:<user>") is
    audited: a token made for someone, rather than by signing in, is an admin action."""
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
    if issued_by is not None:
        record_admin_action(
            uow, issued_by, "token.issue", user.username, kind=kind, label=label, expires_at=credential.expires_at
        )
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
            policy=LoginPolicy.from_settings(settings),
        )
        if not isinstance(outcome, User):
            return SignIn(error=outcome)
        token, credential = await issue_credential(uow, outcome, kind=kind, ttl=ttl, label=kind)
    return SignIn(token=token, expires_at=credential.expires_at)
