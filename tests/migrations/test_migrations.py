"""Migrations build the schema the models describe, on both dialects, and guard the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core import migrate
from app.core.db import Base, Database


def test_single_head() -> None:
    assert len(migrate.current_heads()) == 1, "merge migration heads before landing"


async def test_no_drift_between_models_and_migrations(empty_db: Database) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with empty_db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert changes == [], f"models and migrations differ; run alembic revision --autogenerate: {changes}"
    assert version == migrate.current_heads()[0]


async def test_upgrade_is_idempotent(empty_url: str) -> None:
    import asyncio

    await asyncio.to_thread(migrate.upgrade, empty_url)  # already at head: nothing to do, no error


async def test_database_refuses_to_edit_or_delete_events(db: Database) -> None:
    for statement in ("UPDATE events SET actor = 'mallory' WHERE seq = 1", "DELETE FROM events WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM events WHERE actor = 'mallory'"))).scalar_one() == 0
