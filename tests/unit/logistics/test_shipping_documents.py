"""Shipping documents: the pure model (app/logistics/documents.py) and its PDFs (app/documents/shipping.py),
read back with pypdf; the QR code on page 1 is rasterised with pdftoppm and decoded with zxing-cpp."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import math
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pypdf
import pytest

from app.documents.shipping import (
    render,
    render_commercial_invoice,
    render_dg_note,
    render_manifest,
    render_packing_list,
)
from app.logistics.documents import (
    DESTINATION_CONTROL_STATEMENT,
    PACKING_CERTIFICATE,
    SHIPPERS_DECLARATION,
    ContainerLine,
    DocumentKind,
    LegLine,
    ModuleLine,
    PackageLine,
    Party,
    ShippingDocument,
    ShippingDocumentError,
    dg_entry,
    dg_lines,
    line_total,
    needs_dcs,
    needs_dg_note,
    packages_by_serial,
    subject_to_ear,
    totals,
)
from app.logistics.domain import container_check_digit
from app.tags.payload import sscc
from tests.shipping_data import crates, rack_modules

ISSUED = dt.datetime(2025, 4, 2, 9, 30, 0, tzinfo=dt.UTC)
URL = "https://afm.example.com/shipments/SHP-2025-0042"
PREFIX = "0614141"
KINDS: tuple[DocumentKind, ...] = ("manifest", "packing-list", "commercial-invoice", "dg-note")
NUMBERS = {"manifest": "MAN-2025-0042", "packing-list": "PL-2025-0042", "commercial-invoice": "CI-2025-0042"}
NUMBERS["dg-note"] = "DGN-2025-0042"
H100_DESCRIPTION = "AI Factory compute module, 8× H100 SXM5, liquid-cooled"


def _container(n: int) -> str:
    body = f"AFMU{n:06d}"
    return body + str(container_check_digit(body))


def _sscc(n: int) -> str:
    return sscc(PREFIX, n).value


CONSIGNOR = Party(
    name="AFM Systems Inc.",
    address=("2100 Logic Drive", "San Jose, CA 95124"),
    country="US",
    tax_id="EIN 12-3456789",
    contact="Export desk, +1 408 555 0100",
)
CONSIGNEE = Party(
    name="Nordic Compute AB",
    address=("Datavägen 4", "164 40 Kista"),
    country="SE",
    tax_id="VAT SE556677889901",
)
NOTIFY = Party(name="Schenker & Söner <Nordics> AB", address=("Box 2070",), country="SE", contact="+46 31 555 0200")
LEGS = (
    LegLine(
        seq=1,
        mode="road",
        carrier="Taoyuan Trucking",
        origin="Taoyuan Assembly 2",
        destination="Kaohsiung (TWKHH)",
        planned_departure=dt.datetime(2025, 4, 3, 6, 0, tzinfo=dt.UTC),
        planned_arrival=dt.datetime(2025, 4, 3, 14, 0, tzinfo=dt.UTC),
    ),
    LegLine(
        seq=2,
        mode="sea",
        carrier="Evergreen Marine",
        origin="Kaohsiung (TWKHH)",
        destination="Gothenburg (SEGOT)",
        planned_departure=dt.datetime(2025, 4, 5, 18, 0, tzinfo=dt.UTC),
        planned_arrival=dt.datetime(2025, 5, 9, 8, 0, tzinfo=dt.UTC),
    ),
)


def _h100(n: int) -> ModuleLine:
    serial = f"AFM-25-{101 + n:06d}"
    return ModuleLine(
        serial=serial,
        spec_code="AIF-H100-8",
        description=H100_DESCRIPTION,
        giai=f"{PREFIX}{serial}",
        hs_code="8471.50",
        eccn="4A090.a",
        licence="D1234567",
        country_of_origin="TW",
        unit_value=Decimal("3250000.00"),
        net_kg=20950.0,
        gross_kg=21800.0,
        battery_un_number="UN3481",
        battery_wh=2880.0,
        battery_kg=19.2,
    )


NETWORK = ModuleLine(
    serial="AFM-25-000201",
    spec_code="AIF-NET-1",
    description="AI Factory network module, 4× spine switch",
    giai=f"{PREFIX}AFM-25-000201",
    hs_code="8517.62",
    eccn="5A992.c",
    licence="NLR",
    country_of_origin="MX",
    unit_value=Decimal("480000.00"),
    net_kg=8300.0,
    gross_kg=8750.5,
)


def small_doc(kind: DocumentKind = "manifest", **changes: Any) -> ShippingDocument:
    """Three H100 modules with UN3481 batteries and one network module without; each module is its own
    40 ft box, plus a crate of spares that is not containerised."""
    modules = (*(_h100(n) for n in range(3)), NETWORK)
    containers = tuple(ContainerLine(_container(n + 1), f"ML-TW-{4711 + n}") for n in range(4))
    packages = (
        *(
            PackageLine(
                number=n + 1,
                sscc=_sscc(5000 + n),
                kind="40ft high-cube module",
                contents=(m.serial,),
                net_kg=m.net_kg,
                gross_kg=m.gross_kg,
                length_mm=12192,
                width_mm=2438,
                height_mm=2896,
                container=containers[n].number,
            )
            for n, m in enumerate(modules)
        ),
        PackageLine(
            number=5,
            sscc=_sscc(5004),
            kind="crate",
            contents=("SPARES-0001",),
            net_kg=412.5,
            gross_kg=468.0,
            length_mm=1200,
            width_mm=1000,
            height_mm=1105,
        ),
    )
    fields: dict[str, Any] = {
        "kind": kind,
        "number": NUMBERS.get(kind, "DOC-1"),
        "version": 3,
        "issued_at": ISSUED,
        "shipment_ref": "SHP-2025-0042",
        "shipment_url": URL,
        "consignor": CONSIGNOR,
        "consignee": CONSIGNEE,
        "notify": NOTIFY,
        "incoterm": "FCA",
        "incoterm_place": "Port of Kaohsiung, TW",
        "origin": "Taoyuan, TW",
        "destination": "Kista, SE",
        "port_of_loading": "TWKHH Kaohsiung",
        "port_of_discharge": "SEGOT Gothenburg",
        "containers": containers,
        "legs": LEGS,
        "modules": modules,
        "packages": packages,
        "emergency_contact": "CHEMTREC +1 703 527 3887 (CCN 834512)",
        "notes": ("Keep between 5 and 35 °C in transit",),
    }
    return ShippingDocument(**(fields | changes))


def big_doc(kind: DocumentKind = "manifest") -> ShippingDocument:
    """200 rack modules in 50 crates of 4, 5 crates to a container."""
    modules = rack_modules(200)
    containers = tuple(ContainerLine(_container(100 + n), f"ML-{9000 + n}") for n in range(10))
    packages = crates(modules, 50, containers)
    return small_doc(kind, number=f"BIG-{kind}", containers=containers, modules=modules, packages=packages)


# --- reading PDFs back ------------------------------------------------------------------------------


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _words(text: str) -> str:
    """Whitespace-normalised: wrapping puts newlines where the source had single spaces."""
    return " ".join(text.split())


def _squashed(text: str) -> str:
    return "".join(text.split())


def _kg(value: float) -> str:
    return f"{value:,.1f}"


@pytest.fixture(scope="module")
def small_pdfs() -> dict[str, bytes]:
    return {kind: render(small_doc(kind)) for kind in KINDS}


@pytest.fixture(scope="module")
def big_manifest() -> tuple[ShippingDocument, list[str]]:
    doc = big_doc("manifest")
    return doc, _pages(render_manifest(doc))


# --- the model --------------------------------------------------------------------------------------


def test_totals_sum_every_line() -> None:
    doc = small_doc()
    t = totals(doc)
    assert t.packages == 5
    assert t.quantity == 4
    assert t.module_net_kg == 3 * 20950.0 + 8300.0
    assert t.module_gross_kg == 3 * 21800.0 + 8750.5
    assert t.package_net_kg == 3 * 20950.0 + 8300.0 + 412.5
    assert t.package_gross_kg == 3 * 21800.0 + 8750.5 + 468.0
    assert t.volume_m3 == pytest.approx(4 * 12.192 * 2.438 * 2.896 + 1.2 * 1.0 * 1.105)
    assert t.values == (("USD", Decimal("10230000.00")),)
    assert line_total(msgspec.structs.replace(NETWORK, quantity=3)) == Decimal("1440000.00")


def test_values_are_kept_exact_per_currency() -> None:
    eur = msgspec.structs.replace(NETWORK, currency="EUR", unit_value=0.1)  # type: ignore[arg-type]
    assert eur.unit_value == Decimal("0.1")  # taken via str(): no binary float residue
    doc = small_doc(modules=(*small_doc().modules[:3], eur))
    assert totals(doc).values == (("EUR", Decimal("0.1")), ("USD", Decimal("9750000.00")))


@pytest.mark.parametrize(
    ("eccn", "expected"),
    [("4A090.a", True), ("5A992.c", True), ("3A090.a", True), ("EAR99", False), ("", False)],
)
def test_subject_to_ear_means_a_ccl_entry_other_than_ear99(eccn: str, expected: bool) -> None:
    assert subject_to_ear(msgspec.structs.replace(NETWORK, eccn=eccn)) is expected


def test_needs_dg_note_and_dcs() -> None:
    doc = small_doc()
    assert needs_dg_note(doc)
    assert needs_dcs(doc)
    plain = small_doc(modules=(NETWORK,), packages=small_doc().packages[3:])
    assert not needs_dg_note(plain)
    ear99 = small_doc(modules=tuple(msgspec.structs.replace(m, eccn="EAR99") for m in doc.modules))
    assert not needs_dcs(ear99)


def test_dg_lines_sum_per_un_number() -> None:
    (line,) = dg_lines(small_doc("dg-note"))
    assert line.entry.un_number == "UN3481"
    assert line.entry.proper_shipping_name == "LITHIUM ION BATTERIES CONTAINED IN EQUIPMENT"
    assert (line.entry.hazard_class, line.entry.ems, line.entry.marine_pollutant) == ("9", "F-A, S-I", False)
    assert line.modules == 3
    assert line.serials == ("AFM-25-000101", "AFM-25-000102", "AFM-25-000103")
    assert line.packages == (1, 2, 3)
    assert line.package_kinds == (("40ft high-cube module", 3),)
    assert line.net_wh == 3 * 2880.0
    assert line.net_battery_kg == pytest.approx(3 * 19.2)
    assert line.gross_kg == 3 * 21800.0
    ups = msgspec.structs.replace(NETWORK, battery_un_number="UN3536", battery_wh=50_000.0)
    doc = small_doc(modules=(*small_doc().modules[:3], ups))
    assert [d.entry.un_number for d in dg_lines(doc)] == ["UN3481", "UN3536"]
    assert dg_lines(doc)[1].entry.proper_shipping_name == (
        "LITHIUM BATTERIES INSTALLED IN CARGO TRANSPORT UNIT lithium ion batteries"
    )


def test_dg_entries() -> None:
    assert dg_entry("UN3480").proper_shipping_name == "LITHIUM ION BATTERIES"
    assert dg_entry("un 3091").proper_shipping_name == "LITHIUM METAL BATTERIES CONTAINED IN EQUIPMENT"
    assert dg_entry("UN3090").packing_group == ""
    with pytest.raises(ValueError, match=r"'UN1234' is not a UN number afm can declare; known: UN3090"):
        dg_entry("UN1234")


def test_container_numbers_are_checked_and_stored_compact() -> None:
    assert ContainerLine("CSQU 305438-3", "S1").number == "CSQU3054383"
    with pytest.raises(ValueError, match="ISO 6346 gives 3"):
        ContainerLine("CSQU3054384", "S1")


def test_packages_by_serial() -> None:
    by_serial = packages_by_serial(small_doc())
    assert by_serial["AFM-25-000102"].number == 2
    assert by_serial["SPARES-0001"].sscc == _sscc(5004)


def _wrong_check_digit(digits: str) -> str:
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


def _package(**changes: Any) -> PackageLine:
    return msgspec.structs.replace(small_doc().packages[0], **changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _package(sscc="12345"), r"package 1: SSCC '12345' must be exactly 18 digits \(AI 00\), got 5"),
        (
            lambda: _package(sscc=_wrong_check_digit(_sscc(5000))),
            r"package 1: SSCC \d{18} check digit is \d, GS1 gives",
        ),
        (lambda: _package(net_kg=-1.0), r"package 1: net weight -1.0 kg must be a finite number >= 0"),
        (lambda: _package(gross_kg=100.0), r"gross weight 100.0 kg is less than net weight 20950.0 kg"),
        (lambda: _package(height_mm=0), r"height 0 mm must be a whole number > 0"),
        (lambda: _package(container="CSQU3054384"), r"package 1: .*ISO 6346 gives 3"),
        (lambda: msgspec.structs.replace(NETWORK, gross_kg=-5.0), r"'AFM-25-000201': net weight|gross weight"),
        (lambda: msgspec.structs.replace(NETWORK, battery_un_number="UN1234"), r"'UN1234' is not a UN number"),
        (lambda: msgspec.structs.replace(NETWORK, battery_un_number="3481"), r"must look like UN3481"),
        (lambda: msgspec.structs.replace(NETWORK, battery_wh=100.0), r"battery rating given without"),
        (lambda: msgspec.structs.replace(NETWORK, eccn="4A90"), r"ECCN '4A90' is neither"),
        (lambda: msgspec.structs.replace(NETWORK, licence=" "), r"ECCN 5A992.c needs a licence"),
        (lambda: msgspec.structs.replace(NETWORK, hs_code="8471"), r"HS code '8471' must be 6 to 10 digits"),
        (lambda: msgspec.structs.replace(NETWORK, country_of_origin="XX"), r"'XX' is not an ISO 3166-1"),
        (lambda: msgspec.structs.replace(NETWORK, unit_value=Decimal(-1)), r"unit value -1 must be"),
        (lambda: msgspec.structs.replace(NETWORK, unit_value="n/a"), r"unit value 'n/a' is not a number"),
        (lambda: msgspec.structs.replace(NETWORK, quantity=0), r"quantity 0 must be a whole number >= 1"),
        (lambda: msgspec.structs.replace(CONSIGNEE, country="Sweden"), r"'Sweden' is not an ISO 3166-1"),
        (lambda: msgspec.structs.replace(LEGS[0], planned_arrival=ISSUED), r"leg 1: planned arrival is before"),
        (lambda: small_doc(kind="waybill"), r"kind must be one of manifest, packing-list"),
        (lambda: small_doc(version=0), r"version 0 must be a whole number >= 1"),
        (lambda: small_doc(incoterm="FOB2"), r"'FOB2' is not an Incoterms 2020 rule"),
        (lambda: small_doc(shipment_url="afm://x"), r"must be an http\(s\) URL"),
        (lambda: small_doc(modules=(NETWORK, NETWORK)), r"module serial AFM-25-000201 appears twice"),
        (
            lambda: small_doc(packages=(*small_doc().packages, _package(number=6, sscc=_sscc(6000)))),
            r"packed serial AFM-25-000101 appears twice",
        ),
        (
            lambda: small_doc(packages=(_package(container=_container(77)),)),
            r"package 1 is loaded in AFMU000077\d, which is not a container listed",
        ),
        (lambda: small_doc(modules=()), r"manifest 'MAN-2025-0042': lists no modules"),
        (lambda: small_doc("packing-list", packages=()), r"lists no packages"),
        (lambda: small_doc("dg-note", emergency_contact=""), r"emergency contact is empty"),
        (
            lambda: small_doc("dg-note", modules=(NETWORK,), packages=small_doc().packages[3:]),
            r"no module carries lithium batteries",
        ),
        (
            lambda: small_doc("dg-note", packages=small_doc().packages[1:]),
            r"modules with batteries are in no package: AFM-25-000101",
        ),
    ],
)
def test_validation_errors_name_the_line_and_the_rule(build: Any, message: str) -> None:
    with pytest.raises(ShippingDocumentError, match=message) as caught:
        build()
    assert isinstance(caught.value, ValueError)


def test_renderer_refuses_another_kind() -> None:
    with pytest.raises(ShippingDocumentError, match="is a manifest, not a packing-list"):
        render_packing_list(small_doc("manifest"))


# --- the PDFs ---------------------------------------------------------------------------------------


def _common(doc: ShippingDocument, pdf: bytes, title: str) -> tuple[list[str], str]:
    pages = _pages(pdf)
    words = _words("\n".join(pages))
    total = len(pages)
    for n, page in enumerate(pages, start=1):
        text = _words(page)
        assert f"afm · {title}" in text
        assert f"{doc.number} · version {doc.version} · shipment {doc.shipment_ref}" in text
        assert f"{title} {doc.number} · version {doc.version} · page {n} of {total}" in text
    assert _squashed(doc.shipment_url) in _squashed(words)
    for party in (doc.consignor, doc.consignee, NOTIFY):
        assert party.name in words
        for line in party.address:
            assert line in words
    assert "Sweden (SE)" in words
    assert "FCA Port of Kaohsiung, TW" in words
    for c in doc.containers:
        assert f"{c.number} ({c.size_type}), seal {c.seal}" in words
    for value in (doc.origin, doc.destination, doc.port_of_loading, doc.port_of_discharge):
        assert value in words
    return pages, words


def test_manifest(small_pdfs: dict[str, bytes]) -> None:
    doc = small_doc("manifest")
    _, words = _common(doc, small_pdfs["manifest"], "Shipment manifest")
    for leg in LEGS:
        assert leg.carrier in words
    assert "2025-05-09 08:00:00 UTC" in words
    for m, p in zip(doc.modules, doc.packages, strict=False):
        assert m.serial in words
        assert m.giai in words
        assert f"{p.number} (00) {p.sscc}" in words
    for token in ("8471.50", "8517.62", "4A090.a", "5A992.c", "20,950.0", "21,800.0", "8,300.0", "8,750.5"):
        assert token in words
    assert "Total: 4 modules 71,150.0 74,150.5" in words
    assert "Keep between 5 and 35 °C in transit" in words


def test_packing_list(small_pdfs: dict[str, bytes]) -> None:
    doc = small_doc("packing-list")
    _, words = _common(doc, small_pdfs["packing-list"], "Packing list")
    for p in doc.packages:
        assert f"(00) {p.sscc}" in words
        assert f"{p.volume_m3:,.3f}" in words
    network_sscc = doc.packages[3].sscc
    assert f"4 (00) {network_sscc} 40ft high-cube module AFM-25-000201 1 8,300.0 8,750.5 1,219 × 244 × 290" in words
    assert "SPARES-0001 1 412.5 468.0 120 × 100 × 111 1.326" in words  # 1105 mm rounds half up to 111 cm
    t = totals(doc)
    volume = math.fsum(p.volume_m3 for p in doc.packages)
    assert f"Total: 5 packages 5 {_kg(t.package_net_kg)} {_kg(t.package_gross_kg)} {volume:,.3f}" in words
    assert "71,562.5" in words  # 3 × 20,950 + 8,300 + 412.5
    for c, m in zip(doc.containers, doc.modules, strict=True):
        assert f"{c.number} 45G1 {c.seal}" in words
        assert _kg(m.gross_kg) in words
    assert "not containerised — — 5 412.5 468.0" in words
    assert "This way up" in words
    assert "Tilt and shock indicators fitted" in words


def test_commercial_invoice_with_dcs(small_pdfs: dict[str, bytes]) -> None:
    doc = small_doc("commercial-invoice")
    _, words = _common(doc, small_pdfs["commercial-invoice"], "Commercial invoice")
    assert "Exporter / seller" in words
    assert "Schenker & Söner <Nordics> AB" in words  # escaped for the markup, printed as given
    for m in doc.modules:
        assert f"S/N {m.serial}" in words
    assert "1 USD 3,250,000.00 3,250,000.00 8471.50 TW 4A090.a D1234567" in words
    assert "1 USD 480,000.00 480,000.00 8517.62 MX 5A992.c NLR" in words
    assert "Invoice total USD 4 USD 10,230,000.00" in words
    assert "Invoice total: USD 10,230,000.00" in words
    assert "Net weight 71,562.5 kg" in words  # packages: modules plus the spares crate
    assert "Gross weight 74,618.5 kg" in words
    assert "Destination control statement (15 CFR 758.6)" in words
    assert _words(DESTINATION_CONTROL_STATEMENT) in words
    assert "Authorised signature" in words


@pytest.mark.parametrize("eccns", [("EAR99",) * 4, ("EAR99", "EAR99", "", "EAR99")], ids=["ear99", "ear99-and-none"])
def test_commercial_invoice_without_ccl_items_has_no_dcs(eccns: tuple[str, ...]) -> None:
    doc = small_doc("commercial-invoice")
    modules = tuple(
        msgspec.structs.replace(m, eccn=e, licence="NLR" if e else "") for m, e in zip(doc.modules, eccns, strict=True)
    )
    doc = msgspec.structs.replace(doc, modules=modules)
    words = _words("\n".join(_pages(render_commercial_invoice(doc))))
    assert "EAR99" in words
    assert "758.6" not in words
    assert "controlled by the U.S. Government" not in words


def test_invoice_totals_per_currency() -> None:
    base = small_doc("commercial-invoice")
    eur = msgspec.structs.replace(NETWORK, currency="EUR", unit_value=Decimal("445000.50"))
    doc = msgspec.structs.replace(base, modules=(*base.modules[:3], eur))
    words = _words("\n".join(_pages(render_commercial_invoice(doc))))
    assert "Invoice total EUR 1 EUR 445,000.50" in words
    assert "Invoice total USD 3 USD 9,750,000.00" in words
    assert "Invoice total: EUR 445,000.50; USD 9,750,000.00" in words


def test_dg_note(small_pdfs: dict[str, bytes]) -> None:
    doc = small_doc("dg-note")
    _, words = _common(doc, small_pdfs["dg-note"], "Dangerous goods note")
    assert (
        "UN3481 LITHIUM ION BATTERIES CONTAINED IN EQUIPMENT 9 — 3 × 40ft high-cube module (3 modules) "
        "8,640.0 Wh 57.6 kg 65,400.0 F-A, S-I No"
    ) in words
    for m, p in zip(doc.modules[:3], doc.packages[:3], strict=True):
        assert f"(00) {p.sscc}" in words
        assert m.serial in words
    assert doc.packages[3].sscc not in words  # the network module carries no batteries
    assert NETWORK.serial not in words
    assert _words(SHIPPERS_DECLARATION) in words
    assert _words(PACKING_CERTIFICATE) in words
    assert f"Emergency contact (24 h): {doc.emergency_contact}" in words
    assert "Container packing certificate" in words


def test_render_dispatches_on_kind_and_is_deterministic() -> None:
    doc = small_doc("packing-list")
    assert render(doc) == render_packing_list(doc) == render_packing_list(doc)
    assert render(small_doc("dg-note")) == render_dg_note(small_doc("dg-note"))


def test_big_manifest_repeats_its_header_and_totals_every_line(
    big_manifest: tuple[ShippingDocument, list[str]],
) -> None:
    doc, pages = big_manifest
    assert len(pages) >= 4
    words = _words("\n".join(pages))
    with_rows = [n for n, page in enumerate(pages) if re.search(r"AFM-25-\d{6}", page)]
    assert with_rows == list(range(with_rows[0], len(pages)))
    assert len(with_rows) >= 3
    for n in with_rows:
        assert "# Serial / GIAI Spec Description HS code ECCN Package / SSCC Net kg Gross kg" in _words(pages[n]), n
    for m in doc.modules:
        assert m.serial in words
    for p in doc.packages:
        assert p.sscc in words
    net = math.fsum(m.net_kg for m in doc.modules)
    gross = math.fsum(m.gross_kg for m in doc.modules)
    assert f"Total: 200 modules {_kg(net)} {_kg(gross)}" in _words(pages[-1])
    assert words.count("Total: 200 modules") == 1
    assert f"{len(pages)} of {len(pages)}" in pages[-1]


needs_zxing = pytest.mark.skipif(importlib.util.find_spec("zxingcpp") is None, reason="zxing-cpp not installed")


@needs_zxing
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_qr_on_page_one_decodes_to_the_shipment_url(kind: str, small_pdfs: dict[str, bytes], tmp_path: Path) -> None:
    import zxingcpp  # type: ignore[import-not-found]
    from PIL import Image

    pdf = tmp_path / f"{kind}.pdf"
    pdf.write_bytes(small_pdfs[kind])
    subprocess.run(["pdftoppm", "-png", "-gray", "-r", "150", "-f", "1", "-l", "1", pdf, tmp_path / "page"], check=True)
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in found] == [URL]


def test_a_module_in_no_package_is_shown_and_counted_as_unpacked() -> None:
    doc = small_doc(packages=small_doc().packages[1:])
    words = _words("\n".join(_pages(render_manifest(doc))))
    assert "AFM-25-000101 0614141AFM-25-000101 AIF-H100-8" in words
    assert "not packed" in words
    (line,) = dg_lines(doc)
    assert line.package_kinds == (("40ft high-cube module", 2), ("unpacked", 1))
    assert line.gross_kg == 3 * 21800.0  # two packages and the loose module's own gross mass
