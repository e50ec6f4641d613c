"""Engines, sessions and the unit of work.

SQLite: WAL, foreign keys, busy timeout, and BEGIN issued by us — IMMEDIATE for every write unit of
work, chosen before its first statement (a deferred transaction that reads then writes gets
SQLITE_BUSY at once, without waiting; see ../shared/reference/stack-notes.md §B11).
PostgreSQL: asyncpg with a pool; row locks where a use case needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import DateTime, MetaData, Text, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; afm stores UTC-aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class CanonicalJSON(TypeDecorator[Any]):
    """JSON stored as its canonical text (sorted keys, compact) in a TEXT column, on every dialect.

    The ledger hashes these exact bytes; a JSON column would let the driver re-serialise them
    (asyncpg writes `json.dumps` text with spaces and insertion order)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else _json_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else msgspec.json.decode(value)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def import_all_models() -> None:
    """The single list of model modules: mappers and Alembic need every table imported."""
    import app.burnin.models
    import app.commissioning.models
    import app.core.auth.models
    import app.core.idempotency
    import app.core.ledger.models
    import app.factory.models
    import app.fleet.models
    import app.fleet.summary_models
    import app.integration.models
    import app.logistics.models
    import app.sites.models
    import app.tags.models  # noqa: F401


def _json_text(value: Any) -> str:
    """JSON columns hold canonical JSON (sorted keys, compact): the ledger hashes these exact bytes."""
    return msgspec.json.encode(value, order="sorted").decode()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    json_options: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": msgspec.json.decode}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"timeout": 30},
            **json_options,
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class UnitOfWork:
    """One use case's transaction. Services receive it and never commit; the edge does."""

    def __init__(self, session: AsyncSession, *, writable: bool) -> None:
        self.session = session
        self.writable = writable


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        self.dialect = self.engine.dialect.name
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _write_turn(self) -> asyncio.Lock | None:
        """SQLite has one writer at a time. Writers of this process queue here, in order, instead of in
        SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and makes latency spiky."""
        if self.dialect != "sqlite":
            return None
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, asyncio.Lock())
        return self._writer[1]

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        # Closing (not rolling back) ends the transaction and leaves loaded objects readable.
        async with self.sessionmaker() as session:
            yield UnitOfWork(session, writable=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        """A write transaction: committed when the block ends cleanly, rolled back otherwise."""
        turn = self._write_turn()
        async with contextlib.AsyncExitStack() as stack:
            if turn is not None:
                await stack.enter_async_context(turn)
            session = await stack.enter_async_context(self.sessionmaker())
            if self.dialect == "sqlite":
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield UnitOfWork(session, writable=True)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> bool:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
