"""Send every case of tests/data/bad/corpus.toml and check it was refused and left nothing behind.

A case is refused when the status is exactly the one the manifest names and the body is RFC 9457
problem details (`application/problem+json` with type, title, status, detail). Nothing is stored when,
after the case, every table has the same rows as before (row counts everywhere, plus a digest of the
content of every table small enough to read each time, so an update in place shows too) and the file
store holds the same files (temporary uploads included). Definition files (TOML) are decoded by their
loader and must raise DefinitionError with one `file:line: message` per fault at the manifest's line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Base, Database
from app.core.definitions import DefinitionError
from tests.badinput.generate import GENERATORS

CORPUS_DIR: Final = Path(__file__).resolve().parents[1] / "data" / "bad"
MANIFEST: Final = CORPUS_DIR / "corpus.toml"
ROLES: Final = ("admin", "floor", "planner", "engineer", "auditor")
PROBLEM_KEYS: Final = ("type", "title", "status", "detail")
DIGEST_MAX_ROWS: Final = 2000  # larger tables are compared by row count and highest key only
# Tables a request may touch without storing anything of its input: sign-in bookkeeping and the fleet
# summaries (caches brought up to date when a report is read). Their row counts are still compared.
UNDIGESTED: Final = frozenset(
    {"users", "credentials", "login_attempts", "fleet_summary_stats", "fleet_summary_watermarks", "outbox"}
)
UNDIGESTED_PREFIXES: Final = ("dispatch_",)  # the outbox dispatcher's own leases and cursors, updated as it runs

Client = AsyncTestClient[Litestar]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    reason: str
    status: int = 0
    method: str = ""
    path: str = ""
    role: str = "admin"
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    text: str | None = None
    json: Any = None
    generate: str | None = None
    decoder: str | None = None
    line: int | None = None

    def body(self, settings: Settings) -> bytes:
        if self.file is not None:
            return (CORPUS_DIR / self.file).read_bytes()
        if self.generate is not None:
            return GENERATORS[self.generate](settings)
        if self.json is not None:
            return json.dumps(self.json).encode()
        return (self.text or "").encode("utf-8", "surrogatepass")


@dataclass
class Row:
    kind: str
    case: str
    expected: int | str
    got: int | str
    refused: bool  # the expected status, as problem details (TOML: DefinitionError at the right line)
    stored: list[str]  # what the case left behind: tables that changed, files added
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.refused and not self.stored


def load_cases(path: Path = MANIFEST) -> list[Case]:
    cases = [Case(**raw) for raw in tomllib.loads(path.read_text())["case"]]
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: case ids used twice: {duplicates}")
    return cases


# --- what is stored ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, tuple[int, str]]  # table -> (rows, digest of content or highest key)
    files: frozenset[str]

    def changes(self, after: Snapshot) -> list[str]:
        changed = [
            f"{name} {self.tables[name][0]}->{after.tables[name][0]} rows"
            if self.tables[name][0] != after.tables[name][0]
            else f"{name} changed"
            for name in sorted(self.tables)
            if self.tables[name] != after.tables.get(name)
        ]
        added = sorted(after.files - self.files)
        return changed + ([f"{len(added)} file(s): {', '.join(added[:3])}"] if added else [])


async def snapshot(db: Database, files_root: Path) -> Snapshot:
    tables: dict[str, tuple[int, str]] = {}
    async with db.read() as uow:
        for table in Base.metadata.sorted_tables:
            count = int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)
            keys = list(table.primary_key.columns)
            if table.name in UNDIGESTED or table.name.startswith(UNDIGESTED_PREFIXES) or count > DIGEST_MAX_ROWS:
                top = await uow.session.scalar(select(func.max(keys[0]))) if len(keys) == 1 else None
                tables[table.name] = (count, repr(top))
                continue
            digest = hashlib.sha256()
            for row in await uow.session.execute(select(table).order_by(*keys)):
                digest.update(repr(tuple(row)).encode())
            tables[table.name] = (count, digest.hexdigest())
    files = await asyncio.to_thread(_files, files_root)
    return Snapshot(tables, files)


def _files(root: Path) -> frozenset[str]:
    if not root.exists():
        return frozenset()
    return frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- the scene the cases are played in --------------------------------------------------------------


async def _login(client: Client, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": "demo"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _first(client: Client, headers: dict[str, str], state: str) -> str:
    response = await client.get(f"/api/v1/modules?state={state}&limit=1", headers=headers)
    response.raise_for_status()
    return str(response.json()["items"][0]["serial"])


async def _scene(client: Client, tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    """Placeholders for the cases' paths: a running burn-in run, an assembled module, a validation run
    and a checklist run (made here, before the first snapshot) and a site."""
    admin, floor, engineer = tokens["admin"], tokens["floor"], tokens["engineer"]
    burn_in = await _first(client, admin, "assembled")
    started = await client.post(
        f"/api/v1/modules/{burn_in}/burn-in-runs", json={"station": "TWKHH1-BRN-01"}, headers=floor
    )
    assert started.status_code == 201, started.text
    serial = await _first(client, admin, "assembled")  # the other assembled module
    commissioning = await _first(client, admin, "commissioning")
    vrun = await client.post(f"/api/v1/modules/{commissioning}/validation-runs", headers=engineer)
    assert vrun.status_code in (200, 201), vrun.text
    crun = await client.post(
        f"/api/v1/modules/{commissioning}/checklists", json={"template": "delivery-inspection"}, headers=engineer
    )
    assert crun.status_code in (200, 201), crun.text
    sites = await client.get("/api/v1/sites?limit=1", headers=admin)
    sites.raise_for_status()
    return {
        "run": str(started.json()["id"]),
        "serial": serial,
        "vrun": str(vrun.json()["id"]),
        "crun": str(crun.json()["id"]),
        "site": str(sites.json()["items"][0]["code"]),
    }


# --- one case ---------------------------------------------------------------------------------------


def _problem_fault(response: Any, expected: int) -> str:
    """'' when the response is the expected status as problem details, else what is wrong."""
    if response.status_code != expected:
        return f"status {response.status_code}: {response.text[:200]}"
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {response.headers.get('content-type')!r}, not application/problem+json"
    try:
        body = response.json()
    except ValueError:
        return "problem body is not JSON"
    missing = [k for k in PROBLEM_KEYS if k not in body]
    if missing:
        return f"problem details without {', '.join(missing)}"
    if body["status"] != expected:
        return f"problem status {body['status']} in a {expected} response"
    return ""


async def _http(client: Client, case: Case, scene: dict[str, str], tokens: dict[str, dict[str, str]]) -> Row:
    settings: Settings = client.app.state.settings
    body = case.body(settings) if case.method not in ("GET", "HEAD") else b""
    headers = {**tokens[case.role], **case.headers}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    response = await client.request(case.method, case.path.format(**scene), content=body, headers=headers)
    fault = _problem_fault(response, case.status)
    return Row(case.kind, case.id, case.status, response.status_code, not fault, [], fault)


def _decoders() -> dict[str, Callable[[bytes, str], object]]:
    from app.burnin.domain import decode_rules
    from app.commissioning.checklists import decode_template as decode_checklist
    from app.commissioning.validation import decode_suite
    from app.core.definitions import decode_lifecycle
    from app.tags.labels import decode_template as decode_label

    return {
        "burn_in_rules": decode_rules,
        "label": decode_label,
        "checklist": decode_checklist,
        "validation_suite": decode_suite,
        "lifecycle": decode_lifecycle,
    }


def _toml(case: Case, settings: Settings) -> Row:
    source = case.file or f"{case.generate}.toml"
    expected = f"DefinitionError at {source}:{case.line}"
    try:
        _decoders()[case.decoder or ""](case.body(settings), source)
    except DefinitionError as exc:
        wrong = [f for f in exc.faults if not f.startswith(f"{source}:{case.line}: ")]
        got = exc.faults[0] if exc.faults else "DefinitionError without faults"
        return Row(case.kind, case.id, expected, got[:120], not wrong and bool(exc.faults), [], "; ".join(wrong))
    except Exception as exc:  # anything else escapes the loader: a crash at start-up, no file:line
        return Row(case.kind, case.id, expected, type(exc).__name__, False, [], f"{type(exc).__name__}: {exc}"[:200])
    return Row(case.kind, case.id, expected, "accepted", False, [], "the loader accepted it")


async def run_corpus(client: Client, db: Database, cases: list[Case] | None = None) -> list[Row]:
    """Every case, in manifest order, then the export checks; one Row each. `db` is the app's database,
    opened on the caller's event loop (the test client runs the app on a loop of its own)."""
    from tests.badinput.exports import check_exports

    settings: Settings = client.app.state.settings
    files_root = settings.var_path / "files"
    tokens = {role: await _login(client, role) for role in ROLES}
    scene = await _scene(client, tokens)
    cases = load_cases() if cases is None else cases
    rows: list[Row] = []
    before = await snapshot(db, files_root)
    for case in cases:
        if case.decoder is not None:
            rows.append(_toml(case, settings))
            continue
        row = await _http(client, case, scene, tokens)
        after = await snapshot(db, files_root)
        row.stored = before.changes(after)
        before = after  # the next case is judged on its own
        rows.append(row)
    rows += await check_exports(client, tokens)
    return rows


def summary(rows: list[Row]) -> list[tuple[str, int, int, int]]:
    """(kind, tried, refused, stored) per kind, in first-seen order."""
    kinds: dict[str, list[int]] = {}
    for row in rows:
        counts = kinds.setdefault(row.kind, [0, 0, 0])
        counts[0] += 1
        counts[1] += row.refused
        counts[2] += bool(row.stored)
    return [(kind, *counts) for kind, counts in kinds.items()]  # type: ignore[misc]


def table(rows: list[Row]) -> str:
    lines = ["kind     | tried | refused | stored", "---------|-------|---------|-------"]
    lines += [f"{kind:<8} | {tried:>5} | {refused:>7} | {stored:>6}" for kind, tried, refused, stored in summary(rows)]
    tried, refused, stored = (sum(r[i] for r in summary(rows)) for i in (1, 2, 3))
    lines.append(f"{'total':<8} | {tried:>5} | {refused:>7} | {stored:>6}")
    failures = [r for r in rows if not r.ok]
    for r in failures:
        stored_text = f" stored: {'; '.join(r.stored)}" if r.stored else ""
        lines.append(f"FAIL {r.case}: expected {r.expected}, got {r.got}. {r.detail}{stored_text}")
    return "\n".join(lines)
