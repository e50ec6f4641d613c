"""The burn-in report PDF: rendered from realistic document models and read back with pypdf."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import msgspec
import pypdf
import pytest

from app.burnin.documents import BurnInReport, GpuRow, GpuSeries, SeriesPoint
from app.documents.burnin_report import render_burnin_report
from app.documents.pdf import qr_code, safe_text

STARTED = dt.datetime(2025, 3, 14, 6, 0, 0, tzinfo=dt.UTC)
SOAK_S = 12 * 3600 + 3
RUN_URL = "https://afm.example.com/burn-in-runs/4711"


def _uuid(module: int, index: int) -> str:
    return f"GPU-{module:08x}-1c4d-4e5f-9a7b-{index:012x}"


def _series(index: int, points: int = 300, soak_s: float = SOAK_S) -> GpuSeries:
    """Smooth but distinct curves: warm-up to a per-GPU plateau, with a little ripple."""
    ts = [soak_s * k / (points - 1) for k in range(points)]
    warm = [1 - math.exp(-t / 900) for t in ts]
    return GpuSeries(
        index=index,
        temperature_c=[
            SeriesPoint(t, 30 + (48 + index) * w + 1.5 * math.sin(t / 700 + index))
            for t, w in zip(ts, warm, strict=True)
        ],
        power_w=[
            SeriesPoint(t, 90 + (560 + 8 * index) * w + 12 * math.sin(t / 500)) for t, w in zip(ts, warm, strict=True)
        ],
        sm_clock_mhz=[
            SeriesPoint(t, 1980 - 25 * index * w + 10 * math.cos(t / 900)) for t, w in zip(ts, warm, strict=True)
        ],
    )


def _row(module: int, index: int, verdict: str = "pass", reasons: list[str] | None = None) -> GpuRow:
    return GpuRow(
        index=index,
        uuid=_uuid(module, index),
        serial=f"165242300{module % 100:02d}{index:02d}",
        verdict=verdict,
        samples=43_180 + index,
        max_temperature_c=78.0 + index,
        median_sm_clock_mhz=1980.0 - 25 * index,
        clock_vs_fleet=(1980.0 - 25 * index) / 1980.0,
        ecc_uncorrected=2.0 if verdict == "fail" else 0.0,
        reasons=reasons or [],
    )


def _failing_report() -> BurnInReport:
    module = 0x5A17
    fail_uuid, warn_uuid = _uuid(module, 5), _uuid(module, 2)
    gpus = [_row(module, i) for i in range(8)]
    gpus[5] = _row(
        module,
        5,
        "fail",
        [
            f"GPU 5 ({fail_uuid}): hw_thermal_slowdown active 7.3 % of samples > 1.0 %",
            f"GPU 5 ({fail_uuid}): 2 uncorrected ECC errors (volatile) > 0",
        ],
    )
    gpus[2] = _row(
        module,
        2,
        "warn",
        [
            f"GPU 2 ({warn_uuid}): median SM clock under load 1930 MHz is 0.97 of the fleet median "
            "1990 MHz < 0.98 & needs a look"
        ],
    )
    return BurnInReport(
        run_id=4711,
        module_serial="AFM-TPE-2025-0142",
        spec_code="AIF-H100-8",
        spec_name="AI Factory module, 8× H100 SXM5 80 GB, liquid-cooled",
        gpu_model="NVIDIA H100 80GB HBM3",
        factory="Taoyuan Assembly 2",
        station="BI-07",
        started_at=STARTED,
        finished_at=STARTED + dt.timedelta(seconds=SOAK_S),
        duration_s=SOAK_S,
        rules_version="burnin-rules 2025.03-1",
        verdict="fail",
        reasons=[
            "DCGM diagnostics at level 2 < required level 3",
            "Xid 79 on PCI:0000:3b:00 (GPU has fallen off the bus), kernel log line 18211: hardware-class error",
            "utilization ≥ 90 % for only 96.0 % of the soak — minimum 98.0 %",
        ],
        gpus=gpus,
        series=[_series(i) for i in range(8)],
        dcgm_level=2,
        dcgm_summary=[
            "Memory bandwidth: PASS (GPUs 0, 1, 2, 3, 4, 5, 6, 7)",
            "Targeted stress: FAIL (GPUs 5)",
            "PCIe: PASS",
        ],
        xid_summary=["PCI:0000:3b:00: Xid 79 (hardware) — GPU has fallen off the bus"],
        run_url=RUN_URL,
        generated_at=dt.datetime(2025, 3, 14, 18, 5, 12, tzinfo=dt.UTC),
    )


def _passing_16_report() -> BurnInReport:
    module = 0x16
    return BurnInReport(
        run_id=12,
        module_serial="AFM-PHX-2025-0007",
        spec_code="AIF-B200-16",
        spec_name="AI Factory module, 16× B200",
        gpu_model="NVIDIA B200 192GB",
        factory="Phoenix 1",
        station="BI-01",
        started_at=STARTED,
        finished_at=STARTED + dt.timedelta(hours=2),
        duration_s=7200,
        rules_version="burnin-rules 2025.03-1",
        verdict="pass",
        reasons=[],
        gpus=[_row(module, i) for i in range(16)],
        series=[_series(i, points=240, soak_s=7200) for i in range(16)],
        dcgm_level=3,
        dcgm_summary=[],
        xid_summary=[],
        run_url="https://afm.example.com/burn-in-runs/12",
        generated_at=dt.datetime(2025, 3, 14, 8, 1, 0, tzinfo=dt.UTC),
    )


def _empty_report() -> BurnInReport:
    """A run that never got telemetry: no GPUs, no series, not judged."""
    return BurnInReport(
        run_id=99,
        module_serial="AFM-TPE-2025-0150",
        spec_code="AIF-H100-8",
        spec_name="AI Factory module, 8× H100",
        gpu_model="NVIDIA H100 80GB HBM3",
        factory="Taoyuan Assembly 2",
        station="—",
        started_at=dt.datetime(2025, 3, 15, 9, 0, 0),  # naive: taken as UTC
        finished_at=None,
        duration_s=0.0,
        rules_version="not judged yet",
        verdict="running",
        reasons=[],
        gpus=[],
        series=[],
        dcgm_level=None,
        dcgm_summary=[],
        xid_summary=[],
        run_url="https://afm.example.com/burn-in-runs/99",
        generated_at=dt.datetime(2025, 3, 15, 9, 30, 0, tzinfo=dt.UTC),
    )


def _text(pdf: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def _words(text: str) -> str:
    """Whitespace-normalised: wrapping puts newlines where the source had single spaces."""
    return " ".join(text.split())


def _squashed(text: str) -> str:
    """No whitespace at all: for tokens (UUIDs, URLs) that may be broken mid-token across lines."""
    return "".join(text.split())


@pytest.mark.parametrize("build", [_failing_report, _passing_16_report], ids=["8-gpu-fail", "16-gpu-pass"])
def test_report_pdf_has_every_line_of_the_model(build: Callable[[], BurnInReport]) -> None:
    report = build()
    pdf = render_burnin_report(report)

    assert pdf.startswith(b"%PDF-")
    reader, text = _text(pdf)
    assert len(reader.pages) >= 1
    words, squashed = _words(text), _squashed(text)
    assert "GPU burn-in report" in words
    assert report.module_serial in words
    assert report.verdict.upper() in words
    assert report.rules_version in words
    assert _squashed(report.run_url) in squashed
    for gpu in report.gpus:
        assert gpu.uuid in squashed
        assert gpu.serial in squashed
    reasons = [*report.reasons, *(r for g in report.gpus for r in g.reasons)]
    for reason in reasons:
        assert _words(safe_text(reason)) in words, reason
    for line in [*report.dcgm_summary, *report.xid_summary]:
        assert _words(line) in words, line
    total = len(reader.pages)
    assert f"afm · burn-in run {report.run_id} · {report.module_serial} · page {total} of {total}" in words


def test_failing_report_prints_table_values_and_sections() -> None:
    report = _failing_report()
    _, text = _text(render_burnin_report(report))
    words = _words(text)
    assert "PASS" in words  # the passing GPUs' verdict cells
    assert "WARN" in words
    assert "AIF-H100-8 — AI Factory module, 8× H100 SXM5 80 GB, liquid-cooled" in words
    assert "2025-03-14 06:00:00 UTC" in words
    assert "2025-03-14 18:00:03 UTC" in words
    assert "12:00:03" in words  # duration h:mm:ss
    assert "generated 2025-03-14 18:05:12 UTC" in words
    assert "97.5 %" in words  # GPU 1 clock vs fleet: 1955 / 1980
    assert "43,185" in words  # GPU 5 samples
    assert "≥" in words  # printed via reportlab's Symbol fallback, not substituted
    assert "time since start (hours)" in words


def test_passing_report_says_all_rules_met_and_none_recorded() -> None:
    words = _words(_text(render_burnin_report(_passing_16_report()))[1])
    assert "All acceptance rules met." in words
    assert words.count("None recorded.") == 2  # DCGM lines and Xid lines
    assert "GPU 15" in words  # legend reaches the last GPU
    assert "time since start (minutes)" in words


def test_run_without_telemetry_renders() -> None:
    report = _empty_report()
    pdf = render_burnin_report(report)
    reader, text = _text(pdf)
    words = _words(text)
    assert len(reader.pages) >= 1
    assert "RUNNING" in words
    assert "No GPU telemetry was recorded for this run." in words
    assert "No telemetry samples were recorded." in words
    assert "2025-03-15 09:00:00 UTC" in words
    assert "not finished" in words
    assert "0:00:00" in words


def test_gaps_in_series_are_tolerated() -> None:
    """Empty metrics, a single sample and non-finite values must not break the plots."""
    base = _failing_report()
    nan = float("nan")
    series = [
        GpuSeries(index=0, temperature_c=[SeriesPoint(0.0, 40.0), SeriesPoint(60.0, nan), SeriesPoint(120.0, 41.0)]),
        GpuSeries(index=1, power_w=[SeriesPoint(30.0, 300.0)]),
        GpuSeries(index=2),
    ]
    pdf = render_burnin_report(msgspec.structs.replace(base, series=series))
    words = _words(_text(pdf)[1])
    assert "No samples recorded" in words  # SM clock: no GPU has a sample
    assert "time since start (seconds)" in words


def test_rendering_is_deterministic() -> None:
    report = _failing_report()
    assert render_burnin_report(report) == render_burnin_report(report)


def test_glyphs_without_a_standard_font_are_spelled_out() -> None:
    assert safe_text("≥ 90 % ° × — …") == "≥ 90 % ° × — …"  # all drawable with Helvetica/Symbol
    assert safe_text("状态 ✓") == "?? ✓"  # ZapfDingbats has the tick; CJK has no standard-font glyph


needs_zxing = pytest.mark.skipif(importlib.util.find_spec("zxingcpp") is None, reason="zxing-cpp not installed")


def _decode(image: object) -> list[str]:
    import zxingcpp  # type: ignore[import-not-found]

    return [r.text for r in zxingcpp.read_barcodes(image)]


@needs_zxing
def test_qr_drawing_decodes_to_the_run_url() -> None:
    """Paint the QR drawing's modules with Pillow (no rasteriser backend needed) and decode them."""
    from PIL import Image, ImageDraw
    from reportlab.graphics.shapes import Group

    size = 200
    drawing = qr_code(RUN_URL, size)
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    for widget in drawing.contents:
        group = widget.draw()
        assert isinstance(group, Group)
        for rect in group.contents:
            if getattr(rect, "fillColor", None) is not None:
                x, y, w, h = rect.x, rect.y, rect.width, rect.height
                pen.rectangle([x, size - y - h, x + w - 1, size - y - 1], fill=0)
    assert _decode(image) == [RUN_URL]


@needs_zxing
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_qr_on_the_page_decodes_to_the_run_url(tmp_path: Path) -> None:
    from PIL import Image

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_burnin_report(_failing_report()))
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", pdf, tmp_path / "page"], check=True)
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        assert RUN_URL in _decode(image.convert("L"))
