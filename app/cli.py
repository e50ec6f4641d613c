"""The `afm` command line. Errors print as one clear line and exit non-zero."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
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
    os.environ.setdefault("AFM_ROUTES_PRELOAD", "1")  # workers load the route network at start, not on a request
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

        prefix = _settings().gs1_company_prefix
        report = _run(lambda db: demo_fleet.load(db, fleet, progress, company_prefix=prefix))
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
    from app.core.audit import cli_actor
    from app.core.auth import service

    read = (lambda: sys.stdin.readline().rstrip("\n")) if password_stdin else None
    password = read() if read else getpass.getpass(f"password for {username}: ")

    async def create(db: Any) -> None:
        async with db.write() as uow:
            await service.create_user(uow, username, password, list(roles), full_name, actor=cli_actor())

    _run(create)
    click.echo(f"created user {username} ({', '.join(roles)})")


@users.command("token")
@click.argument("username")
@click.option("--days", default=None, type=int, help="Lifetime in days (default AFM_API_TOKEN_TTL_DAYS).")
@click.option("--label", default="cli", show_default=True)
def users_token(username: str, days: int | None, label: str) -> None:
    """Print a new API token for USERNAME (shown once; only its hash is stored)."""
    import datetime as dt

    from app.core.audit import cli_actor
    from app.core.auth import service

    settings = _settings()

    async def issue(db: Any) -> str:
        async with db.write() as uow:
            user = await service.get_user(uow, username)
            token, _ = await service.issue_credential(
                uow,
                user,
                kind="api",
                ttl=dt.timedelta(days=days or settings.api_token_ttl_days),
                label=label,
                issued_by=cli_actor(),
            )
        return token

    click.echo(_run(issue))


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Lift a sign-in lockout (too many failed sign-ins) before it times out."""
    from app.core.audit import cli_actor
    from app.core.auth import service

    async def unlock(db: Any) -> bool:
        async with db.write() as uow:
            return (await service.unlock(uow, username, cli_actor())).was_locked

    click.echo(f"{username} unlocked" if _run(unlock) else f"{username} was not locked")


@users.command("revoke")
@click.argument("username")
def users_revoke(username: str) -> None:
    """Revoke every API token and page session of USERNAME at once."""
    from app.core.audit import cli_actor
    from app.core.auth import service

    async def revoke(db: Any) -> int:
        async with db.write() as uow:
            return await service.revoke_all_credentials(uow, username, cli_actor())

    click.echo(f"revoked {_run(revoke)} token(s) and session(s) of {username}")


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
def validation() -> None:
    """Hardware validation at a site."""


@validation.command("import")
@click.option("--server", required=True, help="afm base URL, e.g. https://afm.example.net")
@click.option("--token", default=None, help="API token (default: $AFM_TOKEN); see `afm users token`.")
@click.argument("serial")
@click.argument("results", nargs=-1, required=True, metavar="STEP=FILE...")
def validation_import(server: str, token: str | None, serial: str, results: tuple[str, ...]) -> None:
    """Import result files for SERIAL's validation run (started if there is none), e.g.
    `afm validation import AFM-26-000109 nccl-all-reduce=all_reduce.txt dcgm-diag=diag.json`; prints each
    step's verdict and exits 1 unless the run passes."""
    from app.burnin.agent import AgentError, Server, token_from_env

    token = token or token_from_env()
    if not token:
        raise click.ClickException("no API token: pass --token or set AFM_TOKEN (afm users token NAME)")
    pairs = []
    for item in results:
        step, sep, name = item.partition("=")
        if not sep or not step or not name:
            raise click.UsageError(f"{item!r}: give STEP=FILE")
        path = Path(name)
        if not path.is_file():
            raise click.ClickException(f"{name}: no such file")
        pairs.append((step, path))
    api = Server(server, token)
    try:
        status = api.call("GET", f"/api/v1/modules/{serial}/commissioning")
        run = status.get("validation") or api.call("POST", f"/api/v1/modules/{serial}/validation-runs")
        for step, path in pairs:
            url = f"/api/v1/validation-runs/{run['id']}/results/{step}"
            run = api.call("POST", url, path.read_bytes(), "application/octet-stream")
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    suite = f"{run['suite']} {run['suite_version']}"
    click.echo(f"validation run {run['id']} of {serial} (suite {suite}): {run['verdict']}")
    for step in run["steps"]:
        click.echo(f"  {step['step']}: {step['verdict']}")
        for reason in step["reasons"]:
            click.echo(f"    {reason}")
    sys.exit(0 if run["verdict"] == "pass" else 1)


@main.group()
def workflows() -> None:
    """Definitions in workflows/."""


@workflows.command("check")
def workflows_check() -> None:
    """Decode and check every definition and label template; exit 1 with file:line: message for each fault."""
    from app.core.definitions import check_all
    from app.tags.labels import check_templates

    ok, faults = check_all()
    label_ok, label_faults = check_templates()
    for line in faults + label_faults:
        click.echo(line, err=True)
    if faults or label_faults:
        click.echo(f"{len(faults) + len(label_faults)} fault(s) in workflows/ and labels/", err=True)
        sys.exit(1)
    for line in ok + label_ok:
        click.echo(f"ok: {line}")


@main.group()
def tags() -> None:
    """Asset tags: signing keys and the URI a tag holds."""


@tags.command("show")
@click.argument("serial")
def tags_show(serial: str) -> None:
    """Print the signed GS1 Digital Link URI of a module's or part's tag."""
    from app.tags.service import TagSetup

    setup = TagSetup.from_settings(_settings())
    try:
        tag = setup.tag(setup.for_serial(serial))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(tag.uri)
    click.echo(f"  {tag.identifier}   key {tag.key_id}", err=True)


@tags.command("rotate-key")
def tags_rotate_key() -> None:
    """Sign new tags with a new key; tags printed with the old one still verify.

    The key ring lives in var/secrets.toml; restart the service (every worker) to use the new key."""
    from app.core.audit import cli_actor, record_admin_action
    from app.core.config import rotate_tag_key

    settings = _settings()
    if "AFM_TAG_KEY" in __import__("os").environ:
        raise click.ClickException("AFM_TAG_KEY is set: rotate the key where that variable is managed")

    async def rotate(db: Any) -> tuple[str, str]:
        # The key file changes inside the audit row's transaction: no row unless the rotation happened.
        async with db.write() as uow:
            old, new = rotate_tag_key(settings.var_path)
            record_admin_action(uow, cli_actor(), "tag_key.rotate", new, client="cli", previous=old)
        return old, new

    try:
        old, new = _run(rotate)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"new tags are signed with {new}; tags signed with {old} still verify. Restart afm to apply.")


@tags.command("retire-key")
@click.argument("key_id")
def tags_retire_key(key_id: str) -> None:
    """Refuse every tag signed with KEY_ID from now on (a lost or leaked key): reprint those tags."""
    from app.core.audit import cli_actor, record_admin_action
    from app.core.config import retire_tag_key

    async def retire(db: Any) -> None:
        async with db.write() as uow:
            retire_tag_key(_settings().var_path, key_id.upper())
            record_admin_action(uow, cli_actor(), "tag_key.retire", key_id.upper(), client="cli")

    try:
        _run(retire)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"tags signed with {key_id.upper()} are refused once afm restarts.")


@main.group()
def routes() -> None:
    """The route network and the route planner."""


@routes.command("plan")
@click.argument("origin")
@click.argument("destination")
@click.option(
    "--criterion", default="distance", show_default=True, type=click.Choice(["distance", "time", "cost", "co2"])
)
@click.option(
    "--mode", "modes", multiple=True, type=click.Choice(["road", "rail", "sea", "air"]), help="Allowed modes (repeat)."
)
@click.option("--avoid-country", "avoid_countries", multiple=True, help="ISO 3166 alpha-2 (repeat).")
@click.option("--avoid", "avoid_passages", multiple=True, help="A passage: suez, panama, malacca… (repeat).")
@click.option("--module", default=None, help="A module serial: its weight and height limit the lanes.")
@click.option("-k", "k", default=3, show_default=True, type=click.IntRange(1, 5), help="Alternatives.")
def routes_plan(
    origin: str,
    destination: str,
    criterion: str,
    modes: tuple[str, ...],
    avoid_countries: tuple[str, ...],
    avoid_passages: tuple[str, ...],
    module: str | None,
    k: int,
) -> None:
    """Plan routes from ORIGIN to DESTINATION (NLRTM, air:AMS, factory:CODE, site:CODE); print a table."""
    import msgspec
    from rich.console import Console
    from rich.table import Table

    from app.routes import service as route_service
    from app.routes.schemas import PlanIn

    settings = _settings()
    holder = route_service.NetworkHolder(settings.cache_path)
    try:
        request = msgspec.convert(
            {
                "origin": origin,
                "destination": destination,
                "criterion": criterion,
                "modes": list(modes) or None,
                "avoid_countries": list(avoid_countries),
                "avoid_passages": list(avoid_passages),
                "module": module,
                "k": k,
            },
            PlanIn,
        )
    except msgspec.ValidationError as exc:
        raise click.UsageError(str(exc)) from exc

    async def plan(db: Any) -> Any:
        network = await holder.get()
        async with db.read() as uow:
            return await route_service.plan(uow, network, request)

    result = _run(plan)
    console = Console()
    table = Table(title=f"{result.origin.name} → {result.destination.name}, best by {criterion}")
    for column in ("#", "km", "days", "USD", "CO2 t", "passages", "legs"):
        table.add_column(column, justify="right" if column in ("km", "days", "USD", "CO2 t") else "left")
    for i, r in enumerate(result.routes, start=1):
        legs = ", ".join(f"{leg.mode} to {leg.destination.code}" for leg in r.legs)
        table.add_row(
            str(i),
            f"{r.distance_km:,.0f}",
            f"{r.duration_h / 24:,.1f}",
            f"{r.cost:,.0f}",
            f"{r.co2_kg / 1000:,.1f}",
            ", ".join(r.passages) or "-",
            legs,
        )
    console.print(table)
    if result.export is not None:
        e = result.export
        console.print(f"export: {e.status.replace('_', ' ')} — {e.rule}; {e.citation} (rules {e.rules_version})")


@main.group()
def shipments() -> None:
    """Shipments: late ones first, and their documents."""


@shipments.command("list")
@click.option("--status", type=click.Choice(["planned", "in_transit", "delivered"]), default=None)
def shipments_list(status: str | None) -> None:
    """Shipments, late ones first (most hours late at the top), then by ETA."""
    from rich.console import Console
    from rich.table import Table

    from app.logistics import shipments as shipment_service

    async def gather(db: Any) -> Any:
        async with db.read() as uow:
            return await shipment_service.list_shipments(uow, status=status, site=None, limit=500, offset=0)

    items, total = _run(gather)
    table = Table(title=f"{total} shipment(s)")
    for column in ("shipment", "status", "from", "to", "modules", "ETA (UTC)", "late h", "flags"):
        table.add_column(column)
    for s in items:
        late = f"{s.late_hours:,.0f}" if s.late_hours > 0 else "-"
        table.add_row(
            s.id, s.status, s.origin, s.destination, str(s.modules), f"{s.eta:%Y-%m-%d %H:%M}", late, str(len(s.flags))
        )
    Console().print(table)


@shipments.command("document")
@click.argument("ref")
@click.argument("kind", type=click.Choice(["manifest", "packing-list", "commercial-invoice", "dg-note"]))
@click.option("--version", type=int, default=None, help="An earlier version (default: the latest).")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True, help="PDF file to write.")
def shipments_document(ref: str, kind: str, version: int | None, out: str) -> None:
    """Write an issued shipping document of shipment REF to a file (issue it with the API first)."""
    from app.logistics import shipments as shipment_service

    async def fetch(db: Any) -> Any:
        async with db.read() as uow:
            return await shipment_service.document_pdf(uow, ref, kind, version)

    row = _run(fetch)
    if row is None:
        raise click.ClickException(f"no {kind} of {ref} was issued" + (f" in version {version}" if version else ""))
    target = Path(out)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(row.pdf)
    tmp.replace(target)  # atomic: a reader never sees half a PDF
    click.echo(f"{row.number} version {row.version} -> {target} (sha256 {row.sha256})")


@main.group()
def labels() -> None:
    """Label templates in labels/ and printing labels."""


@labels.command("list")
def labels_list() -> None:
    """The label templates and their sizes."""
    from app.tags.labels import check_templates

    ok, faults = check_templates()
    for line in faults:
        click.echo(line, err=True)
    for line in ok:
        click.echo(line)
    if faults:
        sys.exit(1)


def _serials(serials: tuple[str, ...], serials_file: str | None) -> list[str]:
    found = [s.strip() for chunk in serials for s in chunk.split(",") if s.strip()]
    if serials_file:
        from pathlib import Path

        handle = sys.stdin if serials_file == "-" else Path(serials_file).open(encoding="utf-8")  # noqa: SIM115
        with handle:
            found += [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise click.UsageError("give --serials A,B,C or --serials-file FILE (one serial per line, - for stdin)")
    return found


@labels.command("print")
@click.option("--template", "template_name", required=True, help="A template name (afm labels list).")
@click.option("--serials", multiple=True, help="Serials, comma-separated; repeatable.")
@click.option("--serials-file", default=None, help="A file with one serial per line; - reads stdin.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True), help="Output file.")
@click.option("--format", "fmt", default=None, type=click.Choice(["pdf", "png", "zpl"]), help="Default: from --out.")
@click.option("--dpi", default=300, type=click.Choice([203, 300]), show_default=True, help="ZPL printer / PNG.")
def labels_print(
    template_name: str, serials: tuple[str, ...], serials_file: str | None, out: str, fmt: str | None, dpi: int
) -> None:
    """Print labels for assets into one file: PDF (labels or sheets), ZPL for thermal printers, or PNG."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.core.definitions import DefinitionError
    from app.tags import labelling
    from app.tags.labels import load_templates
    from app.tags.service import TagSetup

    wanted = _serials(serials, serials_file)
    target = Path(out)
    chosen = fmt or target.suffix.lstrip(".").lower()
    if chosen not in ("pdf", "png", "zpl"):
        raise click.UsageError(f"cannot tell the format from {out!r}: add --format pdf|png|zpl")
    try:
        templates = load_templates()
    except DefinitionError as exc:
        raise click.ClickException("\n".join(exc.faults)) from exc
    template = templates.get(template_name)
    if template is None:
        raise click.ClickException(f"no label template {template_name!r}; known: {', '.join(sorted(templates))}")
    settings = _settings()
    setup = TagSetup.from_settings(settings)

    async def gather(db: Any) -> list[Any]:
        async with db.read() as uow:
            return await labelling.label_data(uow, setup, template, wanted)

    data = _run(gather) if len(wanted) <= labelling.MAX_LABELS else _run_batches(gather, wanted)
    columns = (TextColumn("labels"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("labels", total=len(data))

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        try:
            output = labelling.render(template, data, chosen, dpi=dpi, progress=advance)  # type: ignore[arg-type]
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
    temp = target.with_name(target.name + ".part")
    temp.write_bytes(output)
    temp.replace(target)  # a reader never sees half a file
    click.echo(f"{len(data):,} {template.asset} label(s) -> {target} ({len(output):,} bytes, {chosen})")


def _run_batches(gather: Callable[[Any], Awaitable[list[Any]]], wanted: list[str]) -> list[Any]:
    raise click.UsageError(f"{len(wanted):,} serials: print at most 5,000 labels per file")


if __name__ == "__main__":
    main()


def _register_generate() -> None:
    from app.fleet.generate import generate_command

    demo.add_command(generate_command)  # afm demo generate --modules N


_register_generate()


def _register_import() -> None:
    from app.integration.import_cli import import_command

    main.add_command(import_command)  # afm import TABLE FILE [--apply]


_register_import()
