"""Fresh demo databases for fuzzing, one per role: fuzzing writes, and one role's writes must not
decide what another role's requests find."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from litestar import Litestar

from app.asgi import create_app
from tests.conftest import _load_demo, _migrate, _pg_admin, _pg_url, make_settings


@dataclass
class DemoDatabases:
    """Copies of one demo template (a file on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL)."""

    dialect: str
    template: str  # a file path on SQLite, a database name on PostgreSQL
    work: Path
    created: list[str] = field(default_factory=list)

    def url(self) -> str:
        if self.dialect == "sqlite":
            target = self.work / f"{uuid.uuid4().hex}.db"
            shutil.copy(self.template, target)
            return f"sqlite+aiosqlite:///{target}"
        name = f"afm_fuzz_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin([f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"']))
        self.created.append(name)
        return _pg_url(name)

    def app(self, role: str) -> Litestar:
        """The app on a fresh demo database; the route network is built once and shared."""
        settings = make_settings(self.url(), self.work / role, cache_dir=self.work / "route-cache", log_level="error")
        return create_app(settings)  # log level error: the fuzz provokes refusals on purpose, the table reports


@contextmanager
def demo_databases(dialect: str, work: Path, template: str | Path | None = None) -> Iterator[DemoDatabases]:
    """`sqlite` or `postgres` (AFM_TEST_POSTGRES_URL) copies of `template` (a demo database file, or
    database name), or of one built here when none is given; PostgreSQL copies are dropped at the end."""
    if dialect == "sqlite":
        if template is None:
            template = work / "demo-template.db"
            url = f"sqlite+aiosqlite:///{template}"
            _migrate(url)
            _load_demo(url)
        yield DemoDatabases("sqlite", str(template), work)
        return
    built = template is None
    name = str(template) if template is not None else f"afm_fuzz_tpl_{uuid.uuid4().hex[:8]}"
    databases = DemoDatabases("postgresql", name, work)
    try:
        if built:
            asyncio.run(_pg_admin([f'CREATE DATABASE "{name}"']))
            databases.created.append(name)
            _migrate(_pg_url(name))
            _load_demo(_pg_url(name))
        yield databases
    finally:
        if databases.created:
            # copies before the template they were made from
            drops = [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in reversed(databases.created)]
            asyncio.run(_pg_admin(drops))
