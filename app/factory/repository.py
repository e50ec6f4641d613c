"""Every query of the factory area."""

from __future__ import annotations

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.factory.models import Factory, Module, Part, Spec, Station
from app.sites.models import Site


class FactoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # specs
    async def spec(self, code: str) -> Spec | None:
        return await self.session.scalar(select(Spec).where(Spec.code == code))

    async def specs(self) -> list[Spec]:
        return list(await self.session.scalars(select(Spec).order_by(Spec.code)))

    async def spec_codes(self) -> list[str]:
        return list(await self.session.scalars(select(Spec.code).order_by(Spec.code)))

    # factories and stations
    async def factory(self, code: str) -> Factory | None:
        return await self.session.scalar(
            select(Factory).options(selectinload(Factory.stations)).where(Factory.code == code)
        )

    async def factories(self) -> list[Factory]:
        query = select(Factory).options(selectinload(Factory.stations)).order_by(Factory.code)
        return list(await self.session.scalars(query))

    async def stations(self, factory_code: str | None, kind: str | None) -> list[Station]:
        query = select(Station).options(joinedload(Station.factory)).join(Factory).order_by(Station.code)
        if factory_code:
            query = query.where(Factory.code == factory_code)
        if kind:
            query = query.where(Station.kind == kind)
        return list(await self.session.scalars(query))

    # modules
    def _modules(self) -> Select[tuple[Module]]:
        return select(Module).options(joinedload(Module.spec), joinedload(Module.factory), joinedload(Module.site))

    async def module(self, serial: str, *, for_update: bool = False) -> Module | None:
        query = self._modules().where(Module.serial == serial)
        if for_update:
            query = query.with_for_update(of=Module)
        return await self.session.scalar(query)

    async def modules(
        self,
        *,
        state: str | None,
        site: str | None,
        spec: str | None,
        factory: str | None,
        country: str | None,
        q: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Module], int]:
        query = self._modules()
        count = select(func.count(Module.id))
        conditions = []
        if state:
            conditions.append(Module.state == state)
        if site:
            conditions.append(Module.site_id == select(Site.id).where(Site.code == site).scalar_subquery())
        if country:
            conditions.append(Module.site_id.in_(select(Site.id).where(Site.country == country.upper())))
        if spec:
            conditions.append(Module.spec_id == select(Spec.id).where(Spec.code == spec).scalar_subquery())
        if factory:
            conditions.append(Module.factory_id == select(Factory.id).where(Factory.code == factory).scalar_subquery())
        if q:
            conditions.append(Module.serial.contains(q.upper(), autoescape=True))
        for condition in conditions:
            query = query.where(condition)
            count = count.where(condition)
        total = int(await self.session.scalar(count) or 0)
        rows = await self.session.scalars(query.order_by(Module.serial).limit(limit).offset(offset))
        return list(rows), total

    async def lock_serial_allocation(self) -> None:
        """Serialise serial issuing across workers. SQLite's BEGIN IMMEDIATE already does this."""
        if self.session.bind.dialect.name == "postgresql":
            await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('afm.module_serial'))"))

    async def last_serial(self, prefix: str) -> str | None:
        return await self.session.scalar(
            select(func.max(Module.serial)).where(Module.serial.startswith(prefix, autoescape=True))
        )

    async def serial_taken(self, serial: str) -> bool:
        return (await self.session.scalar(select(Module.id).where(Module.serial == serial))) is not None

    def add(self, obj: object) -> None:
        self.session.add(obj)

    # parts
    async def parts(
        self, *, module_id: int | None, kind: str | None, limit: int, offset: int
    ) -> tuple[list[Part], int]:
        query = select(Part).options(joinedload(Part.module))
        count = select(func.count(Part.id))
        if module_id is not None:
            query = query.where(Part.module_id == module_id)
            count = count.where(Part.module_id == module_id)
        if kind:
            query = query.where(Part.kind == kind)
            count = count.where(Part.kind == kind)
        total = int(await self.session.scalar(count) or 0)
        rows = await self.session.scalars(
            query.order_by(Part.kind, Part.position, Part.serial).limit(limit).offset(offset)
        )
        return list(rows), total

    async def part_counts(self, module_id: int) -> dict[str, int]:
        rows = await self.session.execute(
            select(Part.kind, func.count(Part.id)).where(Part.module_id == module_id).group_by(Part.kind)
        )
        return {kind: int(n) for kind, n in rows.all()}

    async def part(self, serial: str) -> Part | None:
        return await self.session.scalar(
            select(Part).options(joinedload(Part.module)).where(Part.serial == serial).with_for_update(of=Part)
        )

    async def positions(self, module_id: int) -> set[str]:
        return set(await self.session.scalars(select(Part.position).where(Part.module_id == module_id)))
