"""`python -m tests.badinput`: the bad input corpus against a fresh SQLite demo fleet; prints
`kind | tried | refused | stored` and exits 1 if any case was accepted or stored something."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from litestar.testing import AsyncTestClient


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="afm-badinput-") as tmp:
        root = Path(tmp)
        os.environ["AFM_VAR_DIR"] = str(root / "var")
        from app import demo
        from app.asgi import create_app
        from app.core import migrate
        from app.core.config import load_settings
        from app.core.db import Database, import_all_models
        from tests.badinput.corpus import run_corpus, table
        from tests.badinput.test_corpus import LIMITS

        import_all_models()
        url = f"sqlite+aiosqlite:///{root / 'afm.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url, pool_size=2)
        try:
            await demo.load(db)
        finally:
            await db.dispose()
        env = {
            "AFM_DATABASE_URL": url,
            "AFM_VAR_DIR": str(root / "var"),
            "AFM_LOG_LEVEL": "error",
            **{f"AFM_{k.upper()}": str(v) for k, v in LIMITS.items()},
        }
        settings = load_settings(environ=env, config_file=root / "none.toml")
        db = Database(url, pool_size=2)  # on this loop; the app's own runs in the test client's
        try:
            async with AsyncTestClient(app=create_app(settings)) as client:
                rows = await run_corpus(client, db)
        finally:
            await db.dispose()
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
