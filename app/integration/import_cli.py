"""`afm import TABLE FILE [--apply]`: a dry run (or, with --apply, the import in one transaction) of a
CSV or XLSX file, on the local database or through a server's API. Refused rows print as `FILE:LINE:
reason`; exit 0 when no row is refused, 1 otherwise (and then --apply wrote nothing)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

# Kept here rather than imported, so `afm --help` loads no domain code (imports.TABLES is the same list).
TABLES = ("sites", "specs", "modules", "parts")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _media_type(path: Path) -> str:
    return XLSX_MEDIA_TYPE if path.suffix.lower() in (".xlsx", ".xlsm") else "text/csv"


def _say_rows(name: str, result: dict[str, Any], verbose: bool) -> None:
    for row in result["rows"]:
        if row["action"] == "refused":
            click.echo(f"{name}:{row['row']}: {row['reason']}")
        elif verbose and row["action"] != "unchanged":
            changes = ", ".join(f"{k}={v['to']!r}" for k, v in row["changes"].items())
            click.echo(f"{name}:{row['row']}: {row['action']} {row['key']} {changes}".rstrip())


def _say_summary(table: str, result: dict[str, Any], applied: bool) -> None:
    s = result["summary"]
    counts = f"{s['create']:,} create, {s['change']:,} change, {s['unchanged']:,} unchanged, {s['refused']:,} refused"
    for note in result.get("notes", []):
        click.echo(f"note: {note}", err=True)
    if applied:
        click.echo(f"{table}: {s['rows']:,} rows: {counts}; applied in one transaction")
    else:
        click.echo(f"{table}: {s['rows']:,} rows: {counts}; dry run, nothing written (--apply to import)")


def _faults(name: str, problem: dict[str, Any]) -> None:
    for fault in problem.get("faults", []):
        click.echo(f"{name}:{fault['line']}: {fault['message']}")
    for row in problem.get("refused", []):
        click.echo(f"{name}:{row['row']}: {row['reason']}")
    more = problem.get("refused_total", 0) - len(problem.get("refused", []))
    if more > 0:
        click.echo(f"… and {more:,} more refused rows", err=True)


def _remote(server: str, token: str, table: str, body: bytes, media: str, apply: bool) -> tuple[int, dict[str, Any]]:
    url = f"{server.rstrip('/')}/api/v1/imports/{table}?dry_run={'false' if apply else 'true'}"
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": media}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {"detail": str(exc.reason)}
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc.reason}") from exc


def _local(table: str, body: bytes, media: str, apply: bool, username: str) -> tuple[int, dict[str, Any]]:
    import asyncio

    import msgspec
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.core.auth import service as auth
    from app.core.auth.domain import Principal
    from app.core.config import load_settings
    from app.core.db import Database, import_all_models
    from app.core.definitions import load_lifecycle
    from app.core.errors import DomainError
    from app.integration import import_service
    from app.integration.import_api import check_importer

    settings = load_settings()
    import_all_models()
    lifecycle = load_lifecycle()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())

    async def main() -> Any:
        db = Database(settings.database_url, pool_size=2)
        try:
            async with db.read() as uow:
                user = await auth.get_user(uow, username)
            actor = Principal(user_id=user.id, username=user.username, roles=tuple(user.roles), via="cli")
            check_importer(actor, table)
            with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress:
                task = progress.add_task("reading", total=None)

                def advance(phase: str, done: int, total: int) -> None:
                    progress.update(task, description=phase, completed=done, total=total)

                return await import_service.run_import(
                    db,
                    lifecycle,
                    table,
                    body,
                    media,
                    actor,
                    apply=apply,
                    company_prefix=settings.gs1_company_prefix,
                    progress=advance,
                )
        finally:
            await db.dispose()

    try:
        result = asyncio.run(main())
    except DomainError as exc:
        return exc.status, {"detail": exc.detail, **msgspec.to_builtins(exc.extra)}
    return 200, msgspec.to_builtins(result)


@click.command("import")
@click.argument("table", type=click.Choice(TABLES))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--apply", is_flag=True, help="Import (one transaction, all rows or none); default: a dry run.")
@click.option("--server", default=None, help="afm base URL; without it, the local database (AFM_DATABASE_URL).")
@click.option("--token", default=None, help="With --server: an API token (default: $AFM_TOKEN).")
@click.option("--as", "username", default="admin", show_default=True, help="Local: the user the ledger records.")
@click.option("-v", "--verbose", is_flag=True, help="Print each row that creates or changes, not only refused ones.")
def import_command(
    table: str, file: Path, apply: bool, server: str | None, token: str | None, username: str, verbose: bool
) -> None:
    """Import TABLE (sites, specs, modules, parts) from a CSV or XLSX FILE: a dry run that says row by row
    what would be created, changed or refused, or with --apply the import itself. Refused rows print as
    FILE:LINE: reason; exit 1 when any row is refused (--apply then writes nothing)."""
    body = file.read_bytes()
    media = _media_type(file)
    if server:
        token = token or os.environ.get("AFM_TOKEN", "")
        if not token:
            raise click.ClickException("no API token: pass --token or set AFM_TOKEN (afm users token NAME)")
        status, result = _remote(server, token, table, body, media, apply)
    else:
        status, result = _local(table, body, media, apply, username)
    name = str(file)
    if status != 200:
        _faults(name, result)
        if "refused_total" in result:
            raise click.ClickException(f"{result['refused_total']:,} row(s) refused: nothing was imported")
        raise click.ClickException(str(result.get("detail") or result.get("title") or f"HTTP {status}"))
    _say_rows(name, result, verbose)
    _say_summary(table, result, apply)
    sys.exit(1 if result["summary"]["refused"] else 0)
