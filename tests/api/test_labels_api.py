"""Labels and tags through the API and the CLI: every output's QR decodes with zxing-cpp to a URI that
the scan endpoint accepts; ZPL holds a ^BQ field per label."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from pypdf import PdfReader

from app.cli import main as cli
from tests.conftest import assert_problem, bearer

Client = AsyncTestClient[Litestar]


def _decode_png(data: bytes) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def _decode_pdf(data: bytes, tmp_path: Path) -> list[str]:
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftoppm) is not installed; .ci/run installs it")
    pdf = tmp_path / "labels.pdf"
    pdf.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    found: list[str] = []
    for page in sorted(tmp_path.glob("page*.png")):
        found += [b.text for b in zxingcpp.read_barcodes(Image.open(page))]
    return found


async def _serials(client: Client, headers: dict[str, str], n: int) -> list[str]:
    items = (await client.get(f"/api/v1/modules?limit={n}", headers=headers)).json()["items"]
    return [m["serial"] for m in items]


async def _accepted(client: Client, headers: dict[str, str], code: str) -> str:
    response = await client.post("/api/v1/scans", json={"code": code}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["asset"]["serial"])


async def test_templates_are_listed(client: Client) -> None:
    floor = await bearer(client, "floor")
    templates = {t["name"]: t for t in (await client.get("/api/v1/labels/templates", headers=floor)).json()}
    assert {"module-shipping", "part", "crate", "part-sheet-a4"} <= set(templates)
    assert (templates["module-shipping"]["width_mm"], templates["module-shipping"]["height_mm"]) == (100, 150)
    assert (templates["part"]["width_mm"], templates["part"]["height_mm"]) == (50, 25)
    assert (templates["crate"]["width_mm"], templates["crate"]["height_mm"]) == (100, 100)
    sheet = templates["part-sheet-a4"]["sheet"]
    assert (sheet["columns"], sheet["rows"], sheet["page_width_mm"], sheet["page_height_mm"]) == (3, 8, 210, 297)


async def test_module_labels_pdf_decode_to_accepted_uris(client: Client, tmp_path: Path) -> None:
    floor = await bearer(client, "floor")
    serials = await _serials(client, floor, 3)
    response = await client.post(
        "/api/v1/labels", json={"template": "module-shipping", "serials": serials}, headers=floor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 3
    for page, serial in zip(reader.pages, serials, strict=True):
        assert serial in page.extract_text()
        width_mm = float(page.mediabox.width) / 72 * 25.4
        assert abs(width_mm - 100) < 0.5
    uris = _decode_pdf(response.content, tmp_path)
    assert len(uris) == 3
    assert [await _accepted(client, floor, uri) for uri in uris] == serials


async def test_zpl_and_png_outputs(client: Client) -> None:
    floor = await bearer(client, "floor")
    serials = await _serials(client, floor, 2)
    zpl = await client.post(
        "/api/v1/labels",
        json={"template": "module-shipping", "serials": serials, "format": "zpl", "dpi": 203},
        headers=floor,
    )
    assert zpl.status_code == 200, zpl.text
    text = zpl.text
    assert text.count("^XA") == text.count("^XZ") == 2
    assert "^PW800" in text and "^LL1200" in text  # 100 x 150 mm at 8 dots/mm
    fields = re.findall(r"\^BQN,2,(\d+)\^FD(?:[LMQH])A,([^\^]+)\^FS", text)
    assert len(fields) == 2 and all(1 <= int(m) <= 10 for m, _ in fields)
    for _, uri in fields:
        await _accepted(client, floor, uri)
    png = await client.post(
        "/api/v1/labels", json={"template": "module-shipping", "serials": serials[:1], "format": "png"}, headers=floor
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert await _accepted(client, floor, _decode_png(png.content)[0]) == serials[0]
    many = await client.post(
        "/api/v1/labels", json={"template": "module-shipping", "serials": serials, "format": "png"}, headers=floor
    )
    assert_problem(many, 400, "one label")


async def test_module_tag_endpoint(client: Client) -> None:
    floor = await bearer(client, "floor")
    serial = (await _serials(client, floor, 1))[0]
    uri = (await client.get(f"/api/v1/modules/{serial}/tag?format=uri", headers=floor)).text
    png = await client.get(f"/api/v1/modules/{serial}/tag?format=png", headers=floor)
    assert png.status_code == 200 and _decode_png(png.content) == [uri]
    pdf = await client.get(f"/api/v1/modules/{serial}/tag?format=pdf", headers=floor)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    zpl = await client.get(f"/api/v1/modules/{serial}/tag?format=zpl", headers=floor)
    assert f"^FDQA,{uri}^FS" in zpl.text or f"A,{uri}^FS" in zpl.text
    assert_problem(await client.get(f"/api/v1/modules/{serial}/tag?format=gif", headers=floor), 400, "format")
    assert_problem(await client.get("/api/v1/modules/NOPE-1/tag?format=uri", headers=floor), 404)


async def test_unknown_serials_and_templates_are_named(client: Client) -> None:
    floor = await bearer(client, "floor")
    serials = await _serials(client, floor, 1)
    missing = await client.post(
        "/api/v1/labels", json={"template": "module-shipping", "serials": [*serials, "AFM-99-999999"]}, headers=floor
    )
    assert_problem(missing, 404, "AFM-99-999999")
    assert_problem(
        await client.post("/api/v1/labels", json={"template": "nope", "serials": serials}, headers=floor), 404, "nope"
    )


async def test_part_sheet_and_crate_labels(client: Client, tmp_path: Path) -> None:
    floor = await bearer(client, "floor")
    parts = (await client.get("/api/v1/parts?limit=30", headers=floor)).json()["items"]
    serials = [p["serial"] for p in parts if len(p["serial"]) <= 23][:26]
    if len(serials) < 25:
        pytest.skip("the demo fleet has fewer than 25 parts")
    sheet = await client.post("/api/v1/labels", json={"template": "part-sheet-a4", "serials": serials}, headers=floor)
    assert sheet.status_code == 200, sheet.text
    reader = PdfReader(io.BytesIO(sheet.content))
    assert len(reader.pages) == 2  # 24 labels per A4 sheet
    uris = _decode_pdf(sheet.content, tmp_path)
    assert sorted(uris) == sorted(set(uris)) and len(uris) == len(serials)


def test_cli_prints_labels_with_files_and_errors(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFM_DATABASE_URL", demo_url)
    monkeypatch.setenv("AFM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AFM_TAG_KEY", "test-tag-key")
    monkeypatch.setenv("AFM_CONFIG", str(tmp_path / "none.toml"))
    runner = CliRunner()
    listing = runner.invoke(cli, ["labels", "list"])
    assert listing.exit_code == 0 and "module-shipping" in listing.output
    out = tmp_path / "labels.zpl"
    result = runner.invoke(
        cli,
        [
            "labels",
            "print",
            "--template",
            "module-shipping",
            "--serials",
            "AFM-24-000101,AFM-24-000103",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("^BQN") == 2
    serials_file = tmp_path / "serials.txt"
    serials_file.write_text("# one per line\nAFM-24-000101\nAFM-99-000000\n")
    bad = runner.invoke(
        cli,
        [
            "labels",
            "print",
            "--template",
            "module-shipping",
            "--serials-file",
            str(serials_file),
            "--out",
            str(tmp_path / "x.pdf"),
        ],
    )
    assert bad.exit_code == 1 and "AFM-99-000000" in bad.output
    assert not (tmp_path / "x.pdf").exists()
    shown = runner.invoke(cli, ["tags", "show", "AFM-24-000101"])
    assert shown.exit_code == 0 and "/8004/0614141AFM-24-000101?91=" in shown.output
