"""Every case of the bad input corpus is refused with the right problem details and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.core.db import Database
from tests.badinput.corpus import CORPUS_DIR, load_cases, run_corpus, table
from tests.badinput.generate import GENERATORS
from tests.conftest import make_settings

# Small limits keep the oversized cases cheap; the 10 MiB CSV line still fits under the upload limit.
LIMITS = {"max_body_bytes": 1 << 20, "max_photo_bytes": 1 << 20, "max_upload_bytes": 16 << 20}


@pytest.fixture
def app(demo_url: str, tmp_path: Path) -> Litestar:
    return create_app(make_settings(demo_url, tmp_path, **LIMITS))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def test_manifest_names_real_files_and_generators() -> None:
    cases = load_cases()
    assert len(cases) >= 100
    for case in cases:
        sources = [case.file, case.text, case.json, case.generate]
        assert sum(s is not None for s in sources) <= 1, case.id
        if case.file is not None:
            assert (CORPUS_DIR / case.file).is_file(), case.id
        if case.generate is not None:
            assert case.generate in GENERATORS, case.id
        if case.decoder is None:
            assert case.method and case.path and 400 <= case.status < 500, case.id
        else:
            assert case.line is not None, case.id


async def test_every_bad_input_is_refused_and_nothing_is_stored(
    client: AsyncTestClient[Litestar], db: Database
) -> None:
    rows = await run_corpus(client, db)  # db: the same database, on this test's event loop
    report = table(rows)
    assert all(row.ok for row in rows), report
    assert len(rows) >= 100, report
