from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from app.core.auth.domain import Role
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.ledger import service
from app.core.ledger.service import VerifyResult


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]

    @get("/verify", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="VerifyLedger")
    async def verify(self, db: NamedDependency[Database], module: FromQuery[str | None] = None) -> VerifyResult:
        """Recompute every module's hash chain (or one module's) and name the first broken event."""
        async with db.read() as uow:
            return await service.verify(uow, module)
