from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.burnin.models import BurnInRun
from app.core.ledger.models import Event
from app.factory.models import Module, Spec


class BurnInRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, run: BurnInRun) -> None:
        self.session.add(run)

    async def run(self, run_id: int, *, for_update: bool = False) -> BurnInRun | None:
        query = (
            select(BurnInRun)
            .options(
                joinedload(BurnInRun.module).joinedload(Module.spec),
                joinedload(BurnInRun.module).joinedload(Module.factory),
            )
            .where(BurnInRun.id == run_id)
        )
        if for_update:
            query = query.with_for_update(of=BurnInRun)
        return await self.session.scalar(query)

    async def running_for(self, module_id: int) -> BurnInRun | None:
        return await self.session.scalar(
            select(BurnInRun).where(BurnInRun.module_id == module_id, BurnInRun.status == "running")
        )

    async def runs_of(self, module_id: int) -> list[BurnInRun]:
        query = (
            select(BurnInRun)
            .options(joinedload(BurnInRun.module))
            .where(BurnInRun.module_id == module_id)
            .order_by(BurnInRun.id.desc())
        )
        return list(await self.session.scalars(query))

    async def entered_burn_in_at(self, module_id: int) -> dt.datetime | None:
        """When the module last started burn-in: runs before that belong to an earlier build."""
        return await self.session.scalar(
            select(Event.at)
            .where(Event.module_id == module_id, Event.type == "lifecycle.start_burn_in")
            .order_by(Event.seq.desc())
            .limit(1)
        )

    async def latest_verdict(self, module_id: int, since: dt.datetime | None) -> str | None:
        query = select(BurnInRun.verdict).where(BurnInRun.module_id == module_id, BurnInRun.status == "finished")
        if since is not None:
            query = query.where(BurnInRun.started_at >= since)
        return await self.session.scalar(query.order_by(BurnInRun.finished_at.desc(), BurnInRun.id.desc()).limit(1))

    async def fleet_clock_history(self, gpu_model: str, limit: int = 50) -> list[float]:
        """Median SM clocks of GPUs of this model in recent passed runs."""
        rows = await self.session.scalars(
            select(BurnInRun.result)
            .join(Module, Module.id == BurnInRun.module_id)
            .join(Spec, Spec.id == Module.spec_id)
            .where(Spec.gpu_model == gpu_model, BurnInRun.verdict == "pass")
            .order_by(BurnInRun.id.desc())
            .limit(limit)
        )
        return [
            g["median_sm_clock_mhz"]
            for result in rows
            if result
            for g in result.get("gpus", [])
            if g.get("median_sm_clock_mhz")
        ]
