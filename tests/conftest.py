"""Shared fixtures. Every database test runs on SQLite and on PostgreSQL (marker `postgres`).

Templates are built once per session (migrated, and migrated + demo fleet); each test gets its
own copy: a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Settings and secrets of the test process live in a throwaway folder, never in the repo's var/.
os.environ["AFM_VAR_DIR"] = tempfile.mkdtemp(prefix="afm-test-var-")
os.environ.setdefault("AFM_LOG_LEVEL", "warning")

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from app.asgi import create_app
from app.core.config import Settings, load_settings
from app.core.db import Database, import_all_models
from tests.pg_admin import run_admin

PG_URL = os.environ.get("AFM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
import_all_models()


def _migrate(url: str) -> None:
    from app.core import migrate

    migrate.upgrade(url)


def _load_demo(url: str) -> None:
    from app import demo

    async def run() -> None:
        db = Database(url, pool_size=2)
        try:
            await demo.load(db)
        finally:
            await db.dispose()

    asyncio.run(run())


# --- SQLite -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sqlite-templates")
    empty = base / "empty.db"
    _migrate(f"sqlite+aiosqlite:///{empty}")
    demo = base / "demo.db"
    shutil.copy(empty, demo)
    _load_demo(f"sqlite+aiosqlite:///{demo}")
    return {"empty": empty, "demo": demo}


def _sqlite_copy(template: Path, target_dir: Path) -> str:
    target = target_dir / f"{uuid.uuid4().hex}.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


# --- PostgreSQL -------------------------------------------------------------------------------


async def _pg_admin(sql: list[str], url: str = PG_URL) -> None:
    await run_admin(url, sql)


def _pg_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[dict[str, str]]:
    try:
        asyncio.run(_pg_admin(["SELECT 1"]))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(PG_URL).render_as_string()}: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires PostgreSQL: {reason}")
        pytest.skip(reason)
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    names = {"empty": f"afm_tpl_empty_{suffix}", "demo": f"afm_tpl_demo_{suffix}"}
    asyncio.run(_pg_admin([f'CREATE DATABASE "{n}"' for n in names.values()]))
    try:
        _migrate(_pg_url(names["empty"]))
        _migrate(_pg_url(names["demo"]))
        _load_demo(_pg_url(names["demo"]))
        yield names
    finally:
        asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()]))


# --- per-test databases -----------------------------------------------------------------------

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _fresh_url(request: pytest.FixtureRequest, dialect: str, kind: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_templates")[kind], tmp_path)
        return
    templates = request.getfixturevalue("pg_templates")
    name = f"afm_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin([f'CREATE DATABASE "{name}" TEMPLATE "{templates[kind]}"']))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of the test's dialect."""
    yield from _fresh_url(request, dialect, "empty", tmp_path)


@pytest.fixture
def demo_url(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database holding the demo fleet."""
    yield from _fresh_url(request, dialect, "demo", tmp_path)


def make_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    env = {
        "AFM_DATABASE_URL": url,
        "AFM_VAR_DIR": str(tmp_path / "var"),
        "AFM_SECRET_KEY": "test-secret-key",
        "AFM_TAG_KEY": "test-tag-key",
        "AFM_LOG_LEVEL": "warning",
        "AFM_DB_POOL_SIZE": "5",
        "AFM_DISPATCHER": "0",  # tests that need the outbox dispatcher start it themselves
    }
    env.update({f"AFM_{k.upper()}": str(v) for k, v in overrides.items()})
    return load_settings(environ=env, config_file=tmp_path / "none.toml")


@pytest.fixture
async def db(demo_url: str) -> AsyncIterator[Database]:
    database = Database(demo_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
async def empty_db(empty_url: str) -> AsyncIterator[Database]:
    database = Database(empty_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
def app(demo_url: str, tmp_path: Path) -> Litestar:
    return create_app(make_settings(demo_url, tmp_path, login_max_failures=5))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def bearer(client: AsyncTestClient[Litestar], username: str, password: str = "demo") -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    return await bearer(client, "admin")


def assert_problem(response: Any, status: int, *needles: str) -> dict[str, Any]:
    """The response is RFC 9457 problem details with this status, mentioning each needle."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    for needle in needles:
        assert needle in body["detail"], (needle, body)
    return body


def assert_broken_file_fault(path: Path, decode: Callable[[bytes, str], object]) -> None:
    """A broken definition file whose first line is `# expect: LINE: fragment` is refused with exactly
    one fault, at that line of that file, saying that."""
    from app.core.definitions import DefinitionError

    expect = re.match(r"# expect: (\d+): (.+)", path.read_text().splitlines()[0])
    assert expect, f"{path.name} must start with '# expect: LINE: message'"
    line, fragment = int(expect.group(1)), expect.group(2)
    with pytest.raises(DefinitionError) as caught:
        decode(path.read_bytes(), path.name)
    assert len(caught.value.faults) == 1, caught.value.faults
    fault = caught.value.faults[0]
    assert fault.startswith(f"{path.name}:{line}: "), fault
    assert fragment in fault, fault
