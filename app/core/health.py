from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException

from app import __version__
from app.core.auth.guards import PUBLIC
from app.core.db import Database


class HealthController(Controller):
    tags = ["health"]
    include_in_schema = True

    @get("/healthz", opt=PUBLIC, operation_id="Health")
    async def healthz(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @get("/readyz", opt=PUBLIC, operation_id="Ready")
    async def readyz(self, db: NamedDependency[Database]) -> dict[str, str]:
        """The database answers."""
        try:
            await db.ping()
        except Exception as exc:
            raise HTTPException(status_code=503, detail=f"database not reachable: {type(exc).__name__}") from exc
        return {"status": "ready", "database": db.dialect}
