from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.core.auth.models import Credential, LoginAttempt, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def list(self) -> list[User]:
        return list(await self.session.scalars(select(User).order_by(User.username)))

    def add(self, obj: User | Credential | LoginAttempt) -> None:
        self.session.add(obj)

    async def credential(self, token_hash: str, kind: str) -> Credential | None:
        return await self.session.scalar(
            select(Credential)
            .options(joinedload(Credential.user))
            .where(Credential.token_hash == token_hash, Credential.kind == kind)
        )

    async def recent_failures(self, username: str, client: str, since: dt.datetime) -> int:
        count = await self.session.scalar(
            select(func.count(LoginAttempt.id)).where(
                LoginAttempt.at >= since,
                (LoginAttempt.username == username) | (LoginAttempt.client == client),
            )
        )
        return int(count or 0)
