"""CSV and XLSX imports through the API, on SQLite and PostgreSQL: the dry run row by row, apply as one
transaction or nothing, modules and installs with their ledger events, and export -> import unchanged."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.integration import imports
from app.integration.imports import XLSX_MEDIA_TYPE
from tests import import_files
from tests.conftest import assert_problem, bearer

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
XLSX = {"Content-Type": XLSX_MEDIA_TYPE}
BAD_AT = 517  # the one bad row of the 1,000 (index into the rows; the CSV line is BAD_AT + 2)


async def _post(client: Client, table: str, body: bytes, headers: dict[str, str], *, apply: bool = False) -> Any:
    flag = "false" if apply else "true"
    return await client.post(f"/api/v1/imports/{table}?dry_run={flag}", content=body, headers=headers)


async def _parts_total(client: Client, auth: dict[str, str]) -> int:
    return int((await client.get("/api/v1/parts?limit=1", headers=auth)).json()["total"])


def _thousand_with_one_bad_row() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = import_files.parts_rows(1000)
    good = dict(rows[BAD_AT])
    rows[BAD_AT] = {**good, "part_number": "900-2G548-9999-XXX"}  # on no spec's bill of materials
    return rows, good


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_one_bad_row_in_1000_refuses_that_row_in_the_dry_run_and_everything_on_apply(
    client: Client, fmt: str
) -> None:
    admin = await bearer(client, "admin")
    before = await _parts_total(client, admin)
    rows, good = _thousand_with_one_bad_row()
    encode = import_files.to_csv if fmt == "csv" else import_files.to_xlsx
    headers = {**admin, **(CSV if fmt == "csv" else XLSX)}

    dry = await _post(client, "parts", encode(rows), headers)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["table"] == "parts"
    assert body["summary"] == {"rows": 1000, "create": 999, "change": 0, "unchanged": 0, "refused": 1}
    refused = [r for r in body["rows"] if r["action"] == "refused"]
    assert [(r["row"], r["key"]) for r in refused] == [(BAD_AT + 2, rows[BAD_AT]["serial"])]
    assert "qualified_part" in refused[0]["reason"] and "900-2G548-9999-XXX" in refused[0]["reason"]
    first = body["rows"][0]
    assert first["row"] == 2 and first["key"] == rows[0]["serial"]
    assert first["changes"]["part_number"] == {"from": None, "to": rows[0]["part_number"]}
    assert await _parts_total(client, admin) == before, "a dry run writes nothing"

    applied = await _post(client, "parts", encode(rows), headers, apply=True)
    problem = assert_problem(applied, 422, "import_refused", "1 of 1000")
    assert [(r["row"], r["key"]) for r in problem["refused"]] == [(BAD_AT + 2, rows[BAD_AT]["serial"])]
    assert await _parts_total(client, admin) == before, "a refused apply writes nothing at all"

    rows[BAD_AT] = good
    fixed = await _post(client, "parts", encode(rows), headers, apply=True)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["summary"]["create"] == 1000
    assert await _parts_total(client, admin) == before + 1000
    again = await _post(client, "parts", encode(rows), headers)
    assert again.json()["summary"]["unchanged"] == 1000, "importing the same file twice changes nothing"


@pytest.mark.parametrize("table", ["sites", "specs", "modules", "parts"])
async def test_an_export_imports_back_unchanged(client: Client, table: str, dialect: str) -> None:
    admin = await bearer(client, "admin")
    formats = [("csv", CSV), ("xlsx", XLSX)]
    if table == "parts" and dialect == "postgresql":
        formats = formats[:1]  # reading an XLSX is the same on both; the demo's 11,000 parts take ~10 s in XLSX
    for fmt, media in formats:
        exported = await client.get(f"/api/v1/exports/{table}.{fmt}", headers=admin)
        assert exported.status_code == 200, exported.text
        result = await _post(client, table, exported.content, {**admin, **media})
        assert result.status_code == 200, result.text
        summary = result.json()["summary"]
        assert summary["rows"] > 0
        assert summary["unchanged"] == summary["rows"], [
            r for r in result.json()["rows"] if r["action"] != "unchanged"
        ][:3]


async def test_text_that_looks_like_a_formula_survives_the_round_trip(client: Client) -> None:
    admin = await bearer(client, "admin")
    sites = (await client.get("/api/v1/exports/sites.csv", headers=admin)).content.decode("utf-8-sig")
    lines = sites.splitlines()
    header, first = lines[0], lines[1]
    operator = header.split(",").index('"operator"')
    cells = first.split(",")
    # as stored: a formula, text that starts with a quote (written '' in a file, as the export writes it), -48 V
    for text in ('=HYPERLINK("http://x","y")', "'=quoted already", "-48 V"):
        cells[operator] = '"' + imports.escape(text).replace('"', '""') + '"'
        body = f"{header}\r\n{','.join(cells)}\r\n".encode()
        assert (await _post(client, "sites", body, {**admin, **CSV}, apply=True)).status_code == 200
        for fmt, media in (("csv", CSV), ("xlsx", XLSX)):
            exported = (await client.get(f"/api/v1/exports/sites.{fmt}", headers=admin)).content
            if fmt == "csv":
                assert ("\"'" + text.replace('"', '""')).encode() in exported, "the export guards the text"
            result = (await _post(client, "sites", exported, {**admin, **media})).json()
            assert result["summary"]["unchanged"] == result["summary"]["rows"], text
        site = (await client.get(f"/api/v1/sites/{cells[0].strip(chr(34))}", headers=admin)).json()
        assert site["operator"] == text


async def test_imported_modules_are_registered_with_a_verifying_ledger(client: Client) -> None:
    floor = await bearer(client, "floor")
    body = (
        b"serial,spec,factory,state,site\r\n"
        b"AFM-26-900001,L4-EDGE-20,TWKHH1,,\r\n"
        b"AFM-26-900002,GB200-NVL72-40,,planned,\r\n"
        b"AFM-26-900003,L4-EDGE-20,TWKHH1,in_service,ISKEF1\r\n"
        b"AFM-26-900004,NO-SUCH-SPEC,TWKHH1,,\r\n"
        b"AFM-24-000101,L4-EDGE-20,CZPAR1,in_service,DEKEL1\r\n"
    )
    dry = (await _post(client, "modules", body, {**floor, **CSV})).json()
    actions = [(r["row"], r["action"]) for r in dry["rows"]]
    assert actions == [(2, "create"), (3, "create"), (4, "refused"), (5, "refused"), (6, "refused")]
    reasons = {r["row"]: r["reason"] for r in dry["rows"]}
    assert "initial_state" in reasons[4]
    assert "known_spec" in reasons[5]
    assert "transitions" in reasons[6], "an existing module's state moves only through the lifecycle"

    good = b"\r\n".join(body.split(b"\r\n")[:3]) + b"\r\n"
    applied = await _post(client, "modules", good, {**floor, **CSV}, apply=True)
    assert applied.status_code == 200, applied.text
    module = (await client.get("/api/v1/modules/AFM-26-900001", headers=floor)).json()
    assert (module["spec"], module["state"], module["factory"]) == ("L4-EDGE-20", "planned", "TWKHH1")
    events = (await client.get("/api/v1/modules/AFM-26-900002/events", headers=floor)).json()
    assert [e["type"] for e in events] == ["module.registered"] and events[0]["actor"] == "floor"
    auditor = await bearer(client, "auditor")
    verify = (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert verify["ok"] is True, verify


async def test_parts_are_installed_through_the_build_step_with_a_ledger_event(client: Client) -> None:
    floor = await bearer(client, "floor")
    serial = import_files.part_serial("install", "gpu", "NVIDIA", 0)
    body = (
        "serial,kind,part_number,manufacturer,module,position\r\n"
        f"{serial},gpu,900-2G548-0001-000,NVIDIA,AFM-26-000146,\r\n"
        f"{serial}9,gpu,900-2G548-0001-000,NVIDIA,AFM-24-000101,\r\n"
    ).encode()
    dry = (await _post(client, "parts", body, {**floor, **CSV})).json()
    assert [r["action"] for r in dry["rows"]] == ["create", "refused"]
    assert dry["rows"][0]["changes"]["position"]["to"].startswith("gpu-")
    assert "AFM-24-000101 is retired" in dry["rows"][1]["reason"]
    applied = await _post(client, "parts", body.rsplit(b"\r\n", 2)[0] + b"\r\n", {**floor, **CSV}, apply=True)
    assert applied.status_code == 200, applied.text
    events = (await client.get("/api/v1/modules/AFM-26-000146/events", headers=floor)).json()
    assert events[-1]["type"] == "factory.part_installed" and events[-1]["payload"]["part"] == serial
    moved = f"serial,module\r\n{serial},AFM-26-000128\r\n".encode()
    refused = (await _post(client, "parts", moved, {**floor, **CSV})).json()["rows"][0]
    assert refused["action"] == "refused" and "build_step" in refused["reason"]


async def test_site_changes_are_shown_then_applied(client: Client) -> None:
    planner = await bearer(client, "planner")
    sites = (await client.get("/api/v1/exports/sites.csv", headers=planner)).content.decode("utf-8-sig")
    changed = sites.replace("Reykjanes Geothermal Compute Park", "Reykjanes Compute Park", 1)
    dry = (await _post(client, "sites", changed.encode(), {**planner, **CSV})).json()
    assert dry["summary"]["change"] == 1
    row = next(r for r in dry["rows"] if r["action"] == "change")
    assert row["key"] == "ISKEF1"
    assert row["changes"] == {"name": {"from": "Reykjanes Geothermal Compute Park", "to": "Reykjanes Compute Park"}}
    assert (await _post(client, "sites", changed.encode(), {**planner, **CSV}, apply=True)).status_code == 200
    site = (await client.get("/api/v1/sites/ISKEF1", headers=planner)).json()
    assert site["name"] == "Reykjanes Compute Park"


async def test_units_in_headers_are_converted_exactly_or_refused(client: Client) -> None:
    admin = await bearer(client, "admin")
    header = (
        "code,name,gpu_model,gpu_count,power (W),weight (t),length (m),width_mm,height_mm,hs_code,export_class,cooling"
    )
    row = "L40S-TEST,Test,NVIDIA L40S,8,12500,3.25,6.058,2438,2591,847150,EAR99,air"
    dry = await _post(client, "specs", f"{header}\n{row}\n".encode(), {**admin, **CSV})
    assert dry.status_code == 200, dry.text
    body = dry.json()
    changes = body["rows"][0]["changes"]
    assert (changes["power_kw"]["to"], changes["weight_kg"]["to"], changes["length_mm"]["to"]) == (12.5, 3250.0, 6058)
    assert any("converted to kW" in note for note in body["notes"])
    for bad, needle in (
        ("power (hp)", "not accepted for power"),
        ("power", "say the unit"),
        ("colour", "unknown column"),
    ):
        problem = assert_problem(
            await _post(client, "specs", f"{header.replace('power (W)', bad)}\n{row}\n".encode(), {**admin, **CSV}),
            422,
            needle,
        )
        assert problem["faults"][0]["line"] == 1


async def test_who_may_import_what(client: Client) -> None:
    body = (
        b"code,name,gpu_model,gpu_count,power_kw,weight_kg,length_mm,width_mm,height_mm,hs_code,export_class,cooling\n"
    )
    floor = await bearer(client, "floor")
    assert_problem(await _post(client, "specs", body, {**floor, **CSV}), 403, "may not import specs")
    auditor = await bearer(client, "auditor")
    assert_problem(await _post(client, "parts", body, {**auditor, **CSV}), 403)
    assert_problem(await _post(client, "widgets", body, {**floor, **CSV}), 404)
    assert (await client.get("/api/v1/exports/parts.csv", headers=auditor)).status_code == 200
    assert_problem(await client.get("/api/v1/exports/parts.json", headers=auditor), 404)


async def test_hostile_files_are_refused_before_parsing(client: Client) -> None:
    admin = await bearer(client, "admin")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (64 * 1024 * 1024) + b"/>")
    assert_problem(await _post(client, "parts", bomb.getvalue(), {**admin, **XLSX}), 413, "inflates")
    latin1 = "serial,kind,part_number\nGPU1,gpu,Stra\xdfe\n".encode("latin-1")
    assert_problem(await _post(client, "parts", latin1, {**admin, **CSV}), 400, "not UTF-8")
    assert_problem(await _post(client, "parts", b"\xd0\xcf\x11\xe0rest", {**admin, **CSV}), 415, ".xls")
    assert_problem(await _post(client, "parts", b"{}", {**admin, "Content-Type": "application/json"}), 415)


async def test_the_import_page_runs_a_dry_run_with_the_session(client: Client) -> None:
    login = await client.get("/login")
    csrf = login.cookies.get("afm_login_csrf") or client.cookies.get("afm_login_csrf")
    form = {"username": "planner", "password": "demo", "csrf": csrf, "next": "/imports"}
    assert (await client.post("/login", data=form, follow_redirects=False)).status_code == 303
    page = await client.get("/imports")
    assert page.status_code == 200, page.text
    offered = re.findall(r'<option value="(\w+)">', page.text)
    assert offered == ["sites", "modules"], "a planner may import sites and modules, not specs or parts"
    token = re.search(r'data-csrf="([^"]+)"', page.text)
    assert token is not None
    exported = (await client.get("/api/v1/exports/sites.csv")).content
    headers = {**CSV, "X-CSRFToken": token.group(1)}
    dry = await client.post("/api/v1/imports/sites?dry_run=true", content=exported, headers=headers)
    assert dry.status_code == 200 and dry.json()["summary"]["refused"] == 0
    forged = await client.post("/api/v1/imports/sites?dry_run=true", content=exported, headers=CSV)
    assert_problem(forged, 403, "CSRF")
