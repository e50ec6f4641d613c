"""Use cases of sites."""

from __future__ import annotations

import msgspec

from app.core.db import UnitOfWork
from app.core.errors import Conflict, NotFound
from app.core.schemas import Page
from app.sites import domain
from app.sites.models import Site
from app.sites.repository import SiteRepository
from app.sites.schemas import SiteCreate, SiteRead


def site_read(site: Site) -> SiteRead:
    return msgspec.convert(site, SiteRead, from_attributes=True)


async def list_sites(
    uow: UnitOfWork, *, country: str | None, security_level: str | None, limit: int, offset: int
) -> Page[SiteRead]:
    rows, total = await SiteRepository(uow.session).sites(
        country=country, security_level=security_level, limit=limit, offset=offset
    )
    return Page(items=[site_read(s) for s in rows], total=total, limit=limit, offset=offset)


async def get_site(uow: UnitOfWork, code: str) -> SiteRead:
    site = await SiteRepository(uow.session).site(code)
    if site is None:
        raise NotFound(f"no site {code!r}", site=code)
    return site_read(site)


async def create_site(uow: UnitOfWork, data: SiteCreate) -> SiteRead:
    country = domain.check_country(data.country)
    repo = SiteRepository(uow.session)
    if await repo.site(data.code):
        raise Conflict(f"site {data.code!r} already exists", site=data.code)
    site = Site(**{**msgspec.structs.asdict(data), "country": country})
    repo.add(site)
    await uow.session.flush()
    return site_read(site)
