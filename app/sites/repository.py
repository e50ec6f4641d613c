from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.sites.models import Site


class SiteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def site(self, code: str) -> Site | None:
        return await self.session.scalar(select(Site).where(Site.code == code))

    async def sites(
        self, *, country: str | None, security_level: str | None, limit: int, offset: int
    ) -> tuple[list[Site], int]:
        query = select(Site)
        count = select(func.count(Site.id))
        if country:
            query = query.where(Site.country == country.upper())
            count = count.where(Site.country == country.upper())
        if security_level:
            query = query.where(Site.security_level == security_level)
            count = count.where(Site.security_level == security_level)
        total = int(await self.session.scalar(count) or 0)
        rows = await self.session.scalars(query.order_by(Site.code).limit(limit).offset(offset))
        return list(rows), total

    def add(self, site: Site) -> None:
        self.session.add(site)
