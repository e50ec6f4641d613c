from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.core.auth.models import Credential, LoginAttempt, LoginLockout, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def list(self) -> list[User]:
        return list(await self.session.scalars(select(User).order_by(User.username)))

    def add(self, obj: User | Credential | LoginAttempt | LoginLockout) -> None:
        self.session.add(obj)

    async def credential(self, token_hash: str, kind: str) -> Credential | None:
        return await self.session.scalar(
            select(Credential)
            .options(joinedload(Credential.user))
            .where(Credential.token_hash == token_hash, Credential.kind == kind)
        )

    async def revoke_all(self, user_id: int, at: dt.datetime) -> int:
        """Revoke every live token and session of a user; returns how many."""
        result = await self.session.execute(
            update(Credential)
            .where(Credential.user_id == user_id, Credential.revoked_at.is_(None), Credential.expires_at > at)
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def active_admins(self) -> list[User]:
        # Roles are a JSON list; filtered here rather than with dialect-specific JSON operators.
        users = await self.session.scalars(select(User).where(User.active.is_(True)))
        return [u for u in users if "admin" in u.roles]

    async def client_failures(self, client: str, since: dt.datetime) -> int:
        count = await self.session.scalar(
            select(func.count(LoginAttempt.id)).where(LoginAttempt.at >= since, LoginAttempt.client == client)
        )
        return int(count or 0)

    async def username_failures(self, username: str, since: dt.datetime) -> int:
        count = await self.session.scalar(
            select(func.count(LoginAttempt.id)).where(LoginAttempt.at >= since, LoginAttempt.username == username)
        )
        return int(count or 0)

    async def lockout(self, username: str, *, for_update: bool = False) -> LoginLockout | None:
        query = select(LoginLockout).where(LoginLockout.username == username)
        if for_update:
            query = query.with_for_update()  # PostgreSQL: concurrent failures of one name queue here
        return await self.session.scalar(query)
