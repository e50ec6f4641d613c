"""Commissioning certificate: the pure model (app/commissioning/certificate.py) and its PDF
(app/documents/certificate.py), read back with pypdf; the QR code on page 1 is rasterised with pdftoppm
and decoded with zxing-cpp."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pypdf
import pytest

from app.commissioning.certificate import (
    CertificateError,
    ChecklistSummary,
    CommissioningCertificate,
    Evidence,
    Signer,
    ValidationLine,
)
from app.documents.certificate import banner_text, closing_statement, render_certificate, short_hash

ISSUED = dt.datetime(2025, 6, 12, 16, 0, 0, tzinfo=dt.UTC)
ENTERED = dt.datetime(2025, 6, 12, 15, 42, 0, tzinfo=dt.UTC)
URL = "https://afm.example.com/modules/AFM-25-000101"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signer(name: str, username: str, role: str, kind: str = "engineer", minute: int = 0) -> Signer:
    return Signer(
        name=name,
        username=username,
        role=role,
        kind=kind,  # type: ignore[arg-type]
        signed_at=dt.datetime(2025, 6, 11, 14, minute, tzinfo=dt.UTC),
    )


ENGINEER = signer("Åsa Lindqvist", "alindqvist", "site_engineer", minute=5)
CHECKLISTS = (
    ChecklistSummary(
        template_id="site-acceptance",
        version="2025.3",
        title="Site acceptance: placement, anchoring, grounding",
        stage="site-acceptance",
        level=1,
        answered=42,
        flagged=0,
        signers=(ENGINEER,),
    ),
    ChecklistSummary(
        template_id="power-cooling",
        version="2025.2",
        title="Power and liquid cooling bring-up",
        stage="power-on",
        level=2,
        answered=37,
        flagged=2,
        signers=(signer("Mateo Rossi", "mrossi", "site_engineer", minute=20),),
    ),
    ChecklistSummary(
        template_id="defence-two-person",
        version="2025.1",
        title="Defence site: two-person integrity and seal check",
        stage="security",
        level=3,
        answered=18,
        flagged=1,
        signers=(
            signer("Ingrid Dahl", "idahl", "site_engineer", minute=40),
            signer("Jonas Berg", "jberg", "security_officer", kind="witness", minute=47),
        ),
    ),
)
VALIDATION = (
    ValidationLine(
        step="dcgm-diag",
        title="DCGM diagnostics, level 3",
        kind="dcgm",
        verdict="pass",
        summary="8/8 GPUs pass; no XID errors",
        result_sha256=sha("result dcgm-diag"),
    ),
    ValidationLine(
        step="nccl-allreduce",
        title="NCCL all-reduce across 8 GPUs",
        kind="nccl",
        verdict="pass",
        summary="bus bandwidth 462.1 GB/s at 8 GiB (min 450)",
        result_sha256=sha("result nccl-allreduce"),
    ),
    ValidationLine(
        step="ib-loopback",
        title="InfiniBand loopback, 8 ports",
        kind="ib-perftest",
        verdict="pass",
        summary="392.4 Gb/s lowest port (min 390)",
        result_sha256=sha("result ib-loopback"),
    ),
    ValidationLine(
        step="thermal-soak",
        title="Thermal soak, 30 minutes at full load",
        kind="burn",
        verdict="pass",
        summary="hottest GPU 78 °C (max 85)",
        result_sha256=sha("result thermal-soak"),
    ),
)
PHOTOS = (
    "Rack front, doors open",
    "Rack rear, cabling",
    "Coolant manifold, no leaks",
    "Grounding strap",
    "Tamper seal SEAL-0042 intact",
    "Nameplate with serial",
)
EVIDENCE = tuple(
    Evidence(label=label, sha256=sha(f"photo {label}"), media_type="image/jpeg" if n % 3 else "image/heic")
    for n, label in enumerate(PHOTOS)
)


def certificate(**changes: Any) -> CommissioningCertificate:
    fields: dict[str, Any] = {
        "number": "CC-2025-000101",
        "issued_at": ISSUED,
        "module_serial": "AFM-25-000101",
        "spec_code": "AIF-H100-8",
        "spec_name": "AI Factory compute module, 8× H100 SXM5, liquid-cooled",
        "gpu_model": "NVIDIA H100 SXM5 80 GB",
        "gpu_count": 8,
        "factory": "Taoyuan Assembly 2",
        "site_code": "SEKIS1",
        "site_name": "Kista Compute Hall",
        "site_country": "SE",
        "security_level": "defence",
        "entered_service_at": ENTERED,
        "checklists": CHECKLISTS,
        "suite_id": "hgx-h100-acceptance",
        "suite_version": "2025.4",
        "validation": VALIDATION,
        "evidence": EVIDENCE,
        "url": URL,
        "ledger_head": sha("ledger head"),
    }
    return CommissioningCertificate(**(fields | changes))


# --- reading the PDF back ---------------------------------------------------------------------------


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _words(text: str) -> str:
    """Whitespace-normalised: wrapping puts newlines where the source had single spaces."""
    return " ".join(text.split())


def _squashed(text: str) -> str:
    """Without any whitespace: a long hash or URL may wrap inside itself."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_certificate(certificate())


@pytest.fixture(scope="module")
def pages(pdf: bytes) -> list[str]:
    return _pages(pdf)


# --- the model --------------------------------------------------------------------------------------


def test_naive_datetimes_are_taken_as_utc_and_hashes_are_lowered() -> None:
    naive = certificate(
        issued_at=ISSUED.replace(tzinfo=None),
        entered_service_at=ENTERED.replace(tzinfo=None),
        ledger_head=sha("ledger head").upper(),
    )
    assert naive == certificate()
    assert naive.issued_at.tzinfo is dt.UTC
    cest = dt.timezone(dt.timedelta(hours=2))
    assert certificate(issued_at=ISSUED.astimezone(cest)).issued_at == ISSUED
    assert certificate(issued_at=ISSUED.astimezone(cest)).issued_at.tzinfo is dt.UTC
    s = msgspec.structs.replace(ENGINEER, signed_at=dt.datetime(2025, 6, 11, 14, 5))
    assert s == ENGINEER
    line = msgspec.structs.replace(VALIDATION[0], result_sha256=VALIDATION[0].result_sha256.upper())
    assert line.result_sha256 == VALIDATION[0].result_sha256


def test_a_module_without_gpus_needs_no_gpu_model() -> None:
    cert = certificate(gpu_count=0, gpu_model="")
    assert "GPUs none" in _words("\n".join(_pages(render_certificate(cert))))


def _checklist(**changes: Any) -> ChecklistSummary:
    return msgspec.structs.replace(CHECKLISTS[2], **changes)


def _failed_step() -> ValidationLine:
    return msgspec.structs.replace(VALIDATION[1], verdict="fail", summary="bus bandwidth 401.7 GB/s (min 450)")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: certificate(validation=(VALIDATION[0], _failed_step(), VALIDATION[2])),
            r"certificate 'CC-2025-000101': validation step\(s\) nccl-allreduce failed: no certificate over a failed",
        ),
        (lambda: certificate(validation=()), r"lists no validation steps"),
        (lambda: certificate(validation=(VALIDATION[0], VALIDATION[0])), r"validation step dcgm-diag appears twice"),
        (lambda: msgspec.structs.replace(VALIDATION[0], verdict="warn"), r"verdict 'warn' must be one of pass, fail"),
        (
            lambda: msgspec.structs.replace(VALIDATION[0], result_sha256="abc123"),
            r"validation step 'dcgm-diag': result SHA-256 'abc123' is not a SHA-256 \(64 hex digits\)",
        ),
        (lambda: msgspec.structs.replace(VALIDATION[0], result_sha256="g" * 64), r"is not a SHA-256"),
        (lambda: msgspec.structs.replace(VALIDATION[0], summary=" "), r"'dcgm-diag': summary is empty"),
        (lambda: _checklist(signers=()), r"checklist 'defence-two-person': has no signer"),
        (
            lambda: _checklist(signers=(ENGINEER, msgspec.structs.replace(ENGINEER, kind="witness"))),
            r"signer alindqvist appears twice",  # nobody witnesses their own work
        ),
        (
            lambda: _checklist(signers=(ENGINEER, signer("Mateo Rossi", "mrossi", "site_engineer"))),
            r"signer kind engineer appears twice",
        ),
        (lambda: _checklist(flagged=19), r"19 answers flagged but only 18 answered"),
        (lambda: _checklist(level=-1), r"level -1 must be a whole number >= 0"),
        (lambda: _checklist(version=""), r"version is empty"),
        (lambda: certificate(checklists=()), r"lists no checklists"),
        (lambda: certificate(checklists=(CHECKLISTS[0], CHECKLISTS[0])), r"template site-acceptance appears twice"),
        (lambda: msgspec.structs.replace(ENGINEER, kind="supervisor"), r"kind 'supervisor' must be one of engineer"),
        (lambda: msgspec.structs.replace(ENGINEER, name=""), r"signer 'alindqvist': name is empty"),
        (lambda: msgspec.structs.replace(ENGINEER, signed_at="yesterday"), r"signed at 'yesterday' is not a datetime"),
        (
            lambda: certificate(
                checklists=(
                    _checklist(
                        signers=(msgspec.structs.replace(ENGINEER, signed_at=ISSUED + dt.timedelta(seconds=1)),)
                    ),
                )
            ),
            r"Åsa Lindqvist signed checklist defence-two-person after the certificate was issued",
        ),
        (
            lambda: Evidence(label="Rack", sha256="0" * 63, media_type="image/jpeg"),
            r"evidence 'Rack': SHA-256 '0{63}' is not a SHA-256",
        ),
        (lambda: Evidence(label="Rack", sha256=sha("x"), media_type="jpeg"), r"media type 'jpeg' must look like"),
        (lambda: certificate(ledger_head="deadbeef"), r"ledger head 'deadbeef' is not a SHA-256"),
        (lambda: certificate(site_country="Sweden"), r"site country 'Sweden' is not an ISO 3166-1 alpha-2"),
        (lambda: certificate(security_level="secret"), r"security level 'secret' must be one of commercial"),
        (lambda: certificate(entered_service_at=ISSUED + dt.timedelta(minutes=1)), r"entered service after the"),
        (lambda: certificate(url="afm://modules/1"), r"URL 'afm://modules/1' must be an http\(s\) URL"),
        (lambda: certificate(gpu_model=" "), r"8 GPUs but no GPU model"),
        (lambda: certificate(gpu_count=True), r"GPU count True must be a whole number >= 0"),
        (lambda: certificate(number="CC-" + "9" * 40), r"number is 43 characters, at most 40"),
        (lambda: certificate(site_name=""), r"site name is empty"),
        (lambda: certificate(suite_version=""), r"suite version is empty"),
    ],
)
def test_validation_errors_name_the_line_and_the_rule(build: Callable[[], object], message: str) -> None:
    with pytest.raises(CertificateError, match=message) as caught:
        build()
    assert isinstance(caught.value, ValueError)


# --- the PDF ----------------------------------------------------------------------------------------


def test_every_page_has_the_header_and_footer(pages: list[str]) -> None:
    total = len(pages)
    assert total >= 1
    for n, page in enumerate(pages, start=1):
        text = _words(page)
        assert "afm · Commissioning certificate" in text
        assert "CC-2025-000101 · module AFM-25-000101" in text
        assert f"Commissioning certificate CC-2025-000101 · page {n} of {total}" in text
        assert "issued 2025-06-12 16:00:00 UTC" in text


def test_page_one_opens_with_the_banner_and_module_facts(pages: list[str]) -> None:
    first = _words(pages[0])
    assert first.index("Commissioning certificate") < first.index("Entered service 2025-06-12 at Kista Compute Hall")
    assert banner_text(certificate()) == "Entered service 2025-06-12 at Kista Compute Hall (SEKIS1)"
    assert "Entered service 2025-06-12 at Kista Compute Hall (SEKIS1)" in first
    for fact in (
        "Module serial AFM-25-000101",
        "Spec AIF-H100-8",
        "GPUs 8 × NVIDIA H100 SXM5 80 GB",
        "Factory Taoyuan Assembly 2",
        "Country Sweden (SE)",
        "Security level Defence",
        "Entered service 2025-06-12 15:42:00 UTC",
        "AI Factory compute module, 8× H100 SXM5, liquid-cooled",
    ):
        assert fact in first, fact
    assert "Scan to open this module in afm" in first
    assert _squashed(URL) in _squashed(first)


def test_everything_that_identifies_the_module_and_its_records_is_printed(pages: list[str]) -> None:
    cert = certificate()
    words = _words("\n".join(pages))
    squashed = _squashed(words)
    assert cert.module_serial in words
    assert cert.site_name in words and cert.site_code in words
    assert "Validation suite hgx-h100-acceptance version 2025.4" in words
    for c in cert.checklists:
        assert c.template_id in words
        assert c.version in words
        assert c.title in words
        for s in c.signers:
            assert s.name in words
            assert f"{s.role} · {s.kind} · {s.signed_at:%Y-%m-%d %H:%M:%S} UTC" in words
    assert "defence-two-person Defence site: two-person integrity and seal check 2025.1 security level 3 18 1" in words
    assert "Jonas Berg (jberg) security_officer · witness" in words
    for v in cert.validation:
        assert f"{v.step} {v.title} {v.kind} PASS" in words, v.step
        assert v.summary in words
        assert short_hash(v.result_sha256) in words
        assert v.result_sha256 in squashed  # in full, in the annex
    for e in cert.evidence:
        assert e.label in words
        assert e.sha256 in words  # one line per hash: the column is wide enough
    assert cert.ledger_head in words
    assert _words(closing_statement(cert)) in words


def test_full_result_hashes_are_only_in_the_annex(pages: list[str]) -> None:
    words = _words("\n".join(pages))
    annex = words[words.index("Annex: validation result hashes") :]
    for v in VALIDATION:
        assert words.count(v.result_sha256) == 1
        assert f"{v.step} {v.title} {v.result_sha256}" in annex


def test_render_is_deterministic(pdf: bytes) -> None:
    assert render_certificate(certificate()) == pdf
    assert pypdf.PdfReader(io.BytesIO(pdf)).metadata.title == "Commissioning certificate CC-2025-000101"


def test_long_tables_split_with_their_header_repeated() -> None:
    steps = tuple(
        msgspec.structs.replace(VALIDATION[1], step=f"nccl-{n:03d}", result_sha256=sha(f"step {n}")) for n in range(45)
    )
    photos = tuple(
        Evidence(label=f"Photo {n:03d} of the cabling", sha256=sha(f"photo {n}"), media_type="image/jpeg")
        for n in range(70)
    )
    cert = certificate(validation=steps, evidence=photos)
    pages = _pages(render_certificate(cert))
    assert len(pages) >= 4
    words = _words("\n".join(pages))
    for v in steps:
        assert short_hash(v.result_sha256) in words
        assert v.result_sha256 in words
    for e in photos:
        assert e.sha256 in words
    with_steps = [n for n, page in enumerate(pages) if re.search(r"nccl-\d{3} NCCL", _words(page))]
    with_photos = [n for n, page in enumerate(pages) if re.search(r"Photo \d{3} of", page)]
    assert len(with_steps) >= 3  # the validation table and the annex
    assert len(with_photos) >= 2
    for n in with_steps:
        assert "Step Kind Verdict Summary Result SHA-256" in _words(pages[n]) or "Step Title Result SHA-256" in _words(
            pages[n]
        ), n
    for n in with_photos:
        assert "# Photo Media type SHA-256" in _words(pages[n]), n


needs_zxing = pytest.mark.skipif(importlib.util.find_spec("zxingcpp") is None, reason="zxing-cpp not installed")


@needs_zxing
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_qr_on_page_one_decodes_to_the_module_url(pdf: bytes, tmp_path: Path) -> None:
    import zxingcpp  # type: ignore[import-not-found]
    from PIL import Image

    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-gray", "-r", "150", "-f", "1", "-l", "1", path, tmp_path / "page"], check=True
    )
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in found] == [URL]
