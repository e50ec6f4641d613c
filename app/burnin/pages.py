"""The burn-in run page: live per-GPU status while the run is going (htmx polling), then the verdict."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from app.burnin import domain, service
from app.burnin.domain import load_summary
from app.burnin.report import build_report
from app.core.auth.domain import ALL_ROLES, Principal
from app.core.auth.guards import page
from app.core.db import Database

POLL_SECONDS = 5


class BurnInPages(Controller):
    include_in_schema = False

    @get("/burn-in-runs/{run_id:int}", opt=page(*ALL_ROLES))
    async def run_page(
        self,
        run_id: FromPath[int],
        request: HTMXRequest,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        burn_in_rules: NamedDependency[domain.AcceptanceRules],
    ) -> Template:
        async with db.read() as uow:
            run = await service.get_run(uow, run_id)
            report = build_report(run, base_url=str(request.base_url).rstrip("/"))
            read = service.run_read(run)
        live: list[dict[str, Any]] = []
        if run.status == "running" and run.summary:
            # A provisional judgement, so the floor sees trouble before the run ends.
            provisional = domain.judge(
                load_summary(run.summary),
                None,
                [],
                burn_in_rules,
                expected_gpus=run.module.spec.gpu_count,
            )
            live = [msgspec.structs.asdict(g) for g in provisional.gpus]
        context = {
            "principal": principal,
            "run": read,
            "report": report,
            "live": live,
            "poll": POLL_SECONDS if run.status == "running" else None,
        }
        name = "burnin/_run_status.html" if request.htmx else "burnin/run.html"
        return Template(template_name=name, context=context)
