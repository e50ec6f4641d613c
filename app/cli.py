"""The `afm` command line. Errors print as one clear line and exit non-zero."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from app.core.config import ConfigError, Settings, load_settings
from app.core.errors import DomainError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


def _run(fn: Callable[[Any], Awaitable[T]]) -> T:
    from app.core.db import Database, import_all_models

    settings = _settings()
    import_all_models()

    async def main() -> T:
        db = Database(settings.database_url, pool_size=2)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc


@click.group()
@click.version_option(package_name="afm")
def main() -> None:
    """afm — lifecycle service for containerised AI Factory modules."""


@main.command()
@click.option("--host", default=None, help="Bind address (AFM_HOST, default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (AFM_PORT, default 8000).")
@click.option("--workers", default=None, type=int, help="Worker processes (AFM_WORKERS, default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API and pages with granian."""
    import os

    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = settings.var_path / "prometheus"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from app.core.db import import_all_models
    from app.core.definitions import DefinitionError, load_lifecycle

    import_all_models()
    try:
        load_lifecycle()  # a bad definition stops here, before any worker starts
    except DefinitionError as exc:
        for line in exc.faults:
            click.echo(line, err=True)
        raise click.ClickException("the service refuses to start on a faulty definition") from exc
    click.echo(f"afm listening on http://{host}:{port}")
    click.echo(f"  database: {_redact(settings.database_url)}   workers: {workers}")
    sys.stdout.flush()
    Granian(
        "app.asgi:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=workers,
        log_access=False,
    ).serve()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from app.core import migrate

    settings = _settings()
    migrate.upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}: {_redact(settings.database_url)}")


@main.group()
def demo() -> None:
    """The demo fleet."""


@demo.command("load")
def demo_load() -> None:
    """Load fixtures/demo (idempotent) and print what was added."""
    from app import demo as demo_fleet

    fleet = demo_fleet.read_fleet()
    with click.progressbar(length=len(fleet.modules), label="modules", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        report = _run(lambda db: demo_fleet.load(db, fleet, progress))
    added = ", ".join(f"{k} {v}" for k, v in _items(report) if v)
    click.echo(f"demo fleet: {'added ' + added if added else 'already loaded, nothing added'}")
    click.echo("demo logins: admin, floor, planner, engineer, auditor — password: demo")


def _items(report: Any) -> list[tuple[str, int]]:
    return [(name, getattr(report, name)) for name in report.__struct_fields__]


@main.group()
def users() -> None:
    """Users and API tokens."""


@users.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="admin, floor, planner, engineer, auditor")
@click.option("--full-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, roles: tuple[str, ...], full_name: str, password_stdin: bool) -> None:
    """Create a user with one or more roles."""
    from app.core.auth import service

    read = (lambda: sys.stdin.readline().rstrip("\n")) if password_stdin else None
    password = read() if read else getpass.getpass(f"password for {username}: ")

    async def create(db: Any) -> None:
        async with db.write() as uow:
            await service.create_user(uow, username, password, list(roles), full_name)

    _run(create)
    click.echo(f"created user {username} ({', '.join(roles)})")


@users.command("token")
@click.argument("username")
@click.option("--days", default=None, type=int, help="Lifetime in days (default AFM_API_TOKEN_TTL_DAYS).")
@click.option("--label", default="cli", show_default=True)
def users_token(username: str, days: int | None, label: str) -> None:
    """Print a new API token for USERNAME (shown once; only its hash is stored)."""
    import datetime as dt

    from app.core.auth import service

    settings = _settings()

    async def issue(db: Any) -> str:
        async with db.write() as uow:
            user = await service.get_user(uow, username)
            token, _ = await service.issue_credential(
                uow, user, kind="api", ttl=dt.timedelta(days=days or settings.api_token_ttl_days), label=label
            )
        return token

    click.echo(_run(issue))


@main.group()
def audit() -> None:
    """The tamper-evident ledger."""


@audit.command("verify")
@click.option("--module", "serial", default=None, help="Verify one module's chain only.")
def audit_verify(serial: str | None) -> None:
    """Recompute every hash chain; exit 1 naming the first broken event."""
    from app.core.ledger import service

    async def verify(db: Any) -> Any:
        async with db.read() as uow:
            return await service.verify(uow, serial)

    result = _run(verify)
    if result.ok:
        click.echo(f"ok: {result.events_checked} events in {result.modules_checked} module chains verify")
        return
    broken = result.first_broken
    click.echo(f"BROKEN: module {broken.module} event seq {broken.seq}: {broken.reason}", err=True)
    sys.exit(1)


@main.group("burn-in")
def burn_in() -> None:
    """GPU burn-in."""


@burn_in.command("agent")
@click.option("--server", required=True, help="afm base URL, e.g. http://afm.factory.local:8000")
@click.option("--module", "serial", required=True, help="Serial of the module under test.")
@click.option("--token", default=None, help="API token (default: $AFM_TOKEN); see `afm users token`.")
@click.option("--duration", default=14400.0, show_default=True, help="Soak length in seconds.")
@click.option("--interval", default=1.0, show_default=True, help="Sampling interval in seconds.")
@click.option("--chunk", default=60.0, show_default=True, help="Seconds of telemetry per upload.")
@click.option("--station", default=None, help="Station code, e.g. TWKHH1-BRN-01.")
@click.option("--dcgm-level", default=3, show_default=True, type=click.IntRange(1, 4))
@click.option("--load", default="auto", type=click.Choice(["auto", "gpu-burn", "dcgmproftester", "torch", "none"]))
def burn_in_agent(
    server: str,
    serial: str,
    token: str | None,
    duration: float,
    interval: float,
    chunk: float,
    station: str | None,
    dcgm_level: int,
    load: str,
) -> None:
    """Run a burn-in on this machine and report to afm; exit 1 when the run fails."""
    from app.burnin.agent import AgentError, Server, run_agent, token_from_env

    token = token or token_from_env()
    if not token:
        raise click.ClickException("no API token: pass --token or set AFM_TOKEN (afm users token NAME)")
    try:
        with click.progressbar(length=int(duration), label="soak", file=sys.stderr) as bar:
            done = [0]

            def progress(elapsed: float) -> None:
                bar.update(int(elapsed) - done[0])
                done[0] = int(elapsed)

            verdict = run_agent(
                Server(server, token),
                serial,
                duration_s=duration,
                interval_s=interval,
                chunk_s=chunk,
                station=station,
                dcgm_level=dcgm_level,
                load=load,
                progress=progress,
                say=lambda text: click.echo(text, err=True),
            )
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"run {verdict['run']}: {verdict['verdict'].upper()} (rules {verdict['rules_version']})")
    for reason in verdict.get("reasons", []):
        click.echo(f"  {reason}")
    for gpu in verdict.get("gpus", []):
        click.echo(f"  GPU {gpu['index']} {gpu['uuid']}: {gpu['verdict']}")
        for reason in gpu["reasons"]:
            click.echo(f"    {reason}")
    sys.exit(0 if verdict["verdict"] == "pass" else 1)


@main.group()
def workflows() -> None:
    """Definitions in workflows/."""


@workflows.command("check")
def workflows_check() -> None:
    """Decode and check every definition; exit 1 with file:line: message for each fault."""
    from app.core.definitions import check_all

    ok, faults = check_all()
    for line in faults:
        click.echo(line, err=True)
    if faults:
        click.echo(f"{len(faults)} fault(s) in workflows/", err=True)
        sys.exit(1)
    for line in ok:
        click.echo(f"ok: {line}")


if __name__ == "__main__":
    main()
