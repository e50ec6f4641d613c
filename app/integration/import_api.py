"""Imports (CSV or XLSX, a dry run first) and exports of sites, specs, modules and parts."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.config import Settings
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.errors import NotFound, PermissionDenied
from app.core.openapi import consumes
from app.integration import exports, import_service, imports
from app.integration.import_service import ImportResult

IMPORT_MAX_BYTES = 32 * 1024 * 1024  # a 100,000-row parts CSV is about 10 MB

# Who may import a table: those who may create its rows one by one through the API.
IMPORT_ROLES: dict[str, tuple[str, ...]] = {
    "sites": (Role.ADMIN, Role.PLANNER),  # POST /api/v1/sites
    "specs": (Role.ADMIN,),  # POST /api/v1/specs
    "modules": (Role.ADMIN, Role.FLOOR, Role.PLANNER),  # POST /api/v1/modules
    "parts": (Role.ADMIN, Role.FLOOR),  # POST /api/v1/modules/{serial}/parts
}
ANY_IMPORTER = tuple(dict.fromkeys(r for roles in IMPORT_ROLES.values() for r in roles))


def check_importer(principal: Principal, table: str) -> None:
    if table not in imports.TABLES:
        raise NotFound(f"no import for {table!r}; tables: {', '.join(imports.TABLES)}", table=table)
    allowed = IMPORT_ROLES[table]
    if not set(principal.roles) & set(allowed):
        raise PermissionDenied(
            f"role(s) {', '.join(principal.roles)} may not import {table}; allowed: {', '.join(allowed)}",
            allowed_roles=list(allowed),
        )


class ImportController(Controller):
    path = "/api/v1"
    tags = ["imports"]

    @post(
        "/imports/{table:str}",
        opt=allow(*ANY_IMPORTER),
        operation_id="ImportTable",
        operation_class=consumes("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        status_code=200,
        request_max_body_size=IMPORT_MAX_BYTES,
    )
    async def import_table(
        self,
        table: FromPath[str],
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        dry_run: FromQuery[bool] = True,
    ) -> ImportResult:
        """Import `sites`, `specs`, `modules` or `parts` from a CSV (text/csv, UTF-8) or XLSX body.

        `dry_run=true` (the default) writes nothing and says row by row what applying would do: create,
        change (with each field's from and to), unchanged, or refused with the reason. `dry_run=false`
        applies the file in one transaction, or refuses all of it (422, the refused rows listed) when any
        row is refused. Columns are found by header name; quantities name their unit (`power_kw`,
        `weight (t)`); a file whose header breaks a rule is refused whole (422, `faults`)."""
        check_importer(principal, table)
        body = await request.body()
        return await import_service.run_import(
            db,
            lifecycle,
            table,
            body,
            request.headers.get("content-type", ""),
            principal,
            apply=not dry_run,
            company_prefix=settings.gs1_company_prefix,
        )

    @get("/exports/{name:str}", opt=allow(*ALL_ROLES), operation_id="ExportTable")
    async def export_table(
        self, name: FromPath[str], db: NamedDependency[Database], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        """`sites`, `specs`, `modules` or `parts` as `.csv` or `.xlsx`, in exactly the columns the import reads
        (an export imports back unchanged)."""
        table, _, fmt = name.rpartition(".")
        if table not in imports.TABLES or fmt not in ("csv", "xlsx"):
            names = ", ".join(f"{t}.csv, {t}.xlsx" for t in imports.TABLES)
            raise NotFound(f"no export {name!r}; exports: {names}", export=name)
        async with db.read() as uow:
            df = await exports.export(uow, table, settings.gs1_company_prefix)
        body = await asyncio.to_thread(exports.render, table, df, fmt)
        media = exports.CSV_MEDIA_TYPE if fmt == "csv" else exports.XLSX_MEDIA_TYPE
        return Response(
            body, media_type=media, headers={"Content-Disposition": f'attachment; filename="afm-{table}.{fmt}"'}
        )
