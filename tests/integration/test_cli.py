"""The `afm` command line, run as a user would, against a SQLite file."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

AFM = str(Path(sys.executable).parent / "afm")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    var = tmp_path_factory.mktemp("cli-var")
    environ = {**os.environ, "AFM_VAR_DIR": str(var), "AFM_LOG_LEVEL": "warning"}
    environ.pop("AFM_DATABASE_URL", None)
    for args in (["db", "upgrade"], ["demo", "load"]):
        done = subprocess.run([AFM, *args], env=environ, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return environ


def afm(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AFM, *args], env=env, capture_output=True, text=True, input=stdin, timeout=120)


def test_demo_load_twice_adds_nothing(env: dict[str, str]) -> None:
    again = afm(env, "demo", "load")
    assert again.returncode == 0
    assert "already loaded, nothing added" in again.stdout


def test_users_create_and_token(env: dict[str, str]) -> None:
    created = afm(env, "users", "create", "olga", "--role", "planner", "--password-stdin", stdin="s3cret-pass\n")
    assert created.returncode == 0, created.stderr
    token = afm(env, "users", "token", "olga")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40
    unknown = afm(env, "users", "token", "nobody")
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr
    bad_role = afm(env, "users", "create", "x", "--role", "root", "--password-stdin", stdin="s3cret-pass\n")
    assert bad_role.returncode == 1 and "unknown role" in bad_role.stderr


def test_workflows_check(env: dict[str, str]) -> None:
    checked = afm(env, "workflows", "check")
    assert checked.returncode == 0 and "17 states" in checked.stdout


def test_audit_verify_exit_codes(env: dict[str, str]) -> None:
    ok = afm(env, "audit", "verify")
    assert ok.returncode == 0
    assert re.search(r"ok: \d+ events in 60 module chains verify", ok.stdout), ok.stdout
    db_file = Path(env["AFM_VAR_DIR"]) / "afm.db"
    with sqlite3.connect(db_file) as conn:
        serial = conn.execute("SELECT serial FROM modules ORDER BY serial LIMIT 1 OFFSET 7").fetchone()[0]
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(
            "UPDATE events SET payload = json_set(payload, '$.state', 'retired') "
            "WHERE module_id = (SELECT id FROM modules WHERE serial = ?)",
            (serial,),
        )
    broken = afm(env, "audit", "verify")
    assert broken.returncode == 1
    assert f"module {serial} event seq 1" in broken.stderr
    assert afm(env, "audit", "verify", "--module", serial).returncode == 1


def test_bad_configuration_is_one_clear_line(env: dict[str, str]) -> None:
    result = afm({**env, "AFM_PORT": "eighty"}, "audit", "verify")
    assert result.returncode == 1
    assert "configuration error: AFM_PORT" in result.stderr
    assert "Traceback" not in result.stderr
