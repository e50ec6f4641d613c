"""The import page: choose a table and a CSV or XLSX file, see the dry run row by row, then apply it.
The page calls the import API with the session's CSRF token (app/web/static/js/imports.js)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Template

from app.core.auth.domain import Principal
from app.core.auth.guards import page
from app.integration.import_api import ANY_IMPORTER, IMPORT_ROLES


class ImportPages(Controller):
    include_in_schema = False

    @get("/imports", opt=page(*ANY_IMPORTER))
    async def imports(self, principal: NamedDependency[Principal]) -> Template:
        tables = [t for t, roles in IMPORT_ROLES.items() if set(principal.roles) & set(roles)]
        return Template(template_name="integration/imports.html", context={"principal": principal, "tables": tables})
