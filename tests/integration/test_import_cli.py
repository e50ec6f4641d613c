"""`afm import` on a copy of the demo database: the committed samples under
fixtures/import/ import cleanly, a refused row prints as FILE:LINE: reason, and --apply writes all or nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "import"


@pytest.fixture
def env(sqlite_templates: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A copy of the demo database; the command runs in this process (as `afm import …` would), which keeps
    the test fast on a busy CI machine."""
    db_file = tmp_path / "afm.db"
    shutil.copy(sqlite_templates["demo"], db_file)
    environ = {"AFM_VAR_DIR": str(tmp_path / "var"), "AFM_DATABASE_URL": f"sqlite+aiosqlite:///{db_file}"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


def afm(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _count(env: dict[str, str], table: str) -> int:
    with sqlite3.connect(env["AFM_DATABASE_URL"].split(":///", 1)[1]) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_the_committed_samples_import_cleanly_and_the_ledger_verifies(env: dict[str, str]) -> None:
    for table in ("sites", "specs", "modules", "parts"):
        sample = str(SAMPLES / f"{table}.csv")
        dry = afm(env, "import", table, sample)
        assert dry.exit_code == 0, dry.output
        assert "0 refused; dry run, nothing written" in dry.stdout
        applied = afm(env, "import", table, sample, "--apply", "--as", "floor" if table == "parts" else "admin")
        assert applied.exit_code == 0, applied.output
        assert "applied in one transaction" in applied.stdout
        if table == "specs":
            assert "converted to kg" in dry.stderr and "converted to mm" in dry.stderr
    again = afm(env, "import", "parts", str(SAMPLES / "parts.csv"), "-v")
    assert again.exit_code == 0 and "0 create, 0 change, 10 unchanged" in again.stdout, again.stdout
    verify = afm(env, "audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_a_refused_row_prints_file_and_line_and_apply_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "parts.csv"
    lines = (SAMPLES / "parts.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("PX3-5902V", "PX3-NOT-QUALIFIED")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = _count(env, "parts")
    dry = afm(env, "import", "parts", str(bad))
    assert dry.exit_code == 1
    assert f"{bad}:4: qualified_part: part number 'PX3-NOT-QUALIFIED'" in dry.stdout
    applied = afm(env, "import", "parts", str(bad), "--apply", "--as", "floor")
    assert applied.exit_code == 1
    assert f"{bad}:4: qualified_part" in applied.stdout
    assert "1 row(s) refused: nothing was imported" in applied.stderr
    assert _count(env, "parts") == before


def test_a_role_that_may_not_import_a_table_is_refused(env: dict[str, str]) -> None:
    done = afm(env, "import", "specs", str(SAMPLES / "specs.csv"), "--as", "floor")
    assert done.exit_code == 1 and "may not import specs" in done.stderr
