"""Administrative SQL on a PostgreSQL server (CREATE/DROP DATABASE), outside any transaction: shared by
the test fixtures, the benchmarks and the reliability harness."""

from __future__ import annotations


async def run_admin(url: str, statements: list[str]) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
