"""What every reliability part shares: table rows, throwaway databases, real servers, HTTP helpers.

Servers are `python -m app serve` (granian, as `make run` starts it) in their own process group, so one
`killpg` takes the main process and every worker; every server started here is killed at exit.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from tests.pg_admin import run_admin

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("AFM_RELIABILITY_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
DB_PREFIX = "afm_reliability"
# Fixed keys for every server of a run: the tags a part read from one server must verify on the next.
SERVER_ENV = {
    "AFM_SECRET_KEY": "reliability-secret-key",
    "AFM_TAG_KEY": "reliability-tag-key",
    "AFM_LOG_LEVEL": "warning",
    "AFM_ROUTES_PRELOAD": "0",  # the route network plays no part here; restarts stay quick
    "AFM_HOST": "127.0.0.1",
    # Tags name their resolver; by default the server's own address, which changes with each free port.
    "AFM_TAG_RESOLVER": "https://id.afm.example",
}
SCAN_STATION = "TWKHH1-INS-01"  # an inspection station that records scans and moves nothing


# --- the table ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. `ok` None: informational, or skipped (the reason is in `result`)."""

    part: str
    database: str
    check: str
    result: str
    goal: str = ""
    ok: bool | None = None


def table(rows: list[Row]) -> str:
    header = ("part", "database", "check", "result", "goal", "")
    cells = [
        (r.part, r.database, r.check, r.result, r.goal, {True: "ok", False: "MISSED", None: "-"}[r.ok]) for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *cells, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- databases ------------------------------------------------------------------------------------


@dataclass
class Target:
    """One database kind: a migrated demo-fleet template, and fresh copies of it for each part."""

    name: str  # "sqlite" | "postgresql"
    work: Path
    unavailable: str = ""  # why the parts skip it
    template: str = ""  # SQLite: the template file; PostgreSQL: the template database name
    copies: list[str] = field(default_factory=list)

    def fresh(self, label: str) -> str:
        """A database URL holding a copy of the template, for one part."""
        if self.name == "sqlite":
            target = self.work / f"{label}.db"
            shutil.copy(self.template, target)
            return f"sqlite+aiosqlite:///{target}"
        name = f"{DB_PREFIX}_{label}_{uuid.uuid4().hex[:6]}"
        _pg_admin([f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'])
        self.copies.append(name)
        return _pg_url(name)

    def cleanup(self) -> None:
        if self.name == "postgresql" and not self.unavailable:
            _pg_admin([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in [*self.copies, self.template]])


def _pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def _pg_admin(statements: list[str]) -> None:
    asyncio.run(run_admin(PG_ADMIN_URL, statements))


def afm(url: str, var_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`python -m app …`) against a database."""
    env = {**os.environ, **SERVER_ENV, "AFM_DATABASE_URL": url, "AFM_VAR_DIR": str(var_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"afm {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def prepare_targets(work: Path, wanted: list[str]) -> list[Target]:
    """Migrate and load the demo fleet once per database kind; parts copy from there."""
    targets = []
    for name in wanted:
        target = Target(name=name, work=work)
        var = work / "var-template"
        if name == "sqlite":
            target.template = str(work / "template.db")
            url = f"sqlite+aiosqlite:///{target.template}"
        else:
            try:
                _pg_admin(["SELECT 1"])
            except Exception as exc:
                target.unavailable = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc!r}"
                say(f"skipping PostgreSQL: {target.unavailable}")
                targets.append(target)
                continue
            target.template = f"{DB_PREFIX}_template_{uuid.uuid4().hex[:6]}"
            _pg_admin([f'CREATE DATABASE "{target.template}"'])
            url = _pg_url(target.template)
        say(f"{name}: migrating and loading the demo fleet…")
        afm(url, var, "db", "upgrade")
        afm(url, var, "demo", "load")
        targets.append(target)
    return targets


# --- servers --------------------------------------------------------------------------------------

_live: dict[int, subprocess.Popen[bytes]] = {}


def _kill_all() -> None:
    for pid in list(_live):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _live.pop(pid, None)


atexit.register(_kill_all)


def install_signal_handlers() -> None:
    """Ctrl-C or a TERM from make: kill the servers, then exit."""

    def handler(signum: int, _frame: Any) -> None:
        _kill_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m app serve` on a free port, in its own process group."""

    def __init__(self, url: str, var_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.var_dir = var_dir
        self.workers = workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = var_dir / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60, *, all_workers: bool = True) -> None:
        """Start and wait until it answers; with `all_workers`, until every worker has started too."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {
            **os.environ,
            **SERVER_ENV,
            "AFM_DATABASE_URL": self.url,
            "AFM_VAR_DIR": str(self.var_dir),
            "AFM_PORT": str(self.port),
            "AFM_WORKERS": str(self.workers),
            **self.extra_env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `afm serve` sets its own for several workers
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _live[self.proc.pid] = self.proc
        try:
            self._wait_ready(timeout, self.workers if all_workers else 1)
        except BaseException:
            self.kill()  # a server that never came up is not left behind
            raise

    def _wait_ready(self, timeout: float, workers: int) -> None:
        """Healthy, and `workers` workers started (granian logs each one), so load spreads from the start."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        offset = self.log.stat().st_size if self.log.exists() else 0
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    lines = self.log.read_text(errors="replace").strip().splitlines()
                    tail = [line for line in lines if not line.startswith("[INFO]")][-2:]  # the error, not the goodbyes
                    raise RuntimeError(f"server exited {self.proc.returncode}: {' | '.join(tail)}")
                with contextlib.suppress(httpx.TransportError):
                    started = self.log.read_bytes()[offset:].count(b"Started worker-")
                    if started >= workers and client.get(f"{self.base}/healthz").status_code == 200:
                        return
                time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and every worker, mid-request."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _live.pop(self.proc.pid, None)
        self.proc = None

    def stop(self) -> None:
        """A clean stop (TERM), then KILL for anything left."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.kill()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --- HTTP -----------------------------------------------------------------------------------------


def token(base: str, username: str, password: str = "demo") -> dict[str, str]:
    response = httpx.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password}, timeout=30)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def tag_codes(base: str, headers: dict[str, str], limit: int = 60) -> list[str]:
    """The signed tag URIs of the demo modules: what a scanner reads."""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        modules = client.get("/api/v1/modules", params={"limit": limit}).raise_for_status().json()["items"]
        return [client.get(f"/api/v1/modules/{m['serial']}/tag", params={"format": "uri"}).text for m in modules]


def spec_code(base: str, headers: dict[str, str]) -> str:
    specs = httpx.get(f"{base}/api/v1/specs", headers=headers, timeout=30).raise_for_status().json()
    items = specs["items"] if isinstance(specs, dict) else specs
    return str(items[0]["code"])


def new_module(client: httpx.Client, spec: str) -> tuple[str, int]:
    """A fresh module (state planned): its serial and version."""
    body = client.post("/api/v1/modules", json={"spec": spec}).raise_for_status().json()
    return str(body["serial"]), int(body["version"])


def is_problem(response: httpx.Response) -> bool:
    """RFC 9457 problem details, as the contract promises for every error."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    body = response.json()
    return all(k in body for k in ("type", "title", "status", "detail"))


def request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Part:
    """One part of the harness: a name for --only, and a function from the context to its rows."""

    name: str
    run: Callable[[Context], list[Row]]
    summary: str


@dataclass
class Context:
    work: Path
    targets: list[Target]
    rng: random.Random
    options: dict[str, Any]

    def each_target(self, part: str) -> Iterator[Target | Row]:
        """The available targets; a skip row for each unavailable one."""
        for target in self.targets:
            if target.unavailable:
                yield Row(part, target.name, "skipped", target.unavailable)
            else:
                yield target
