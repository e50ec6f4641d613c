"""Label PDFs: 1000 module shipping labels into one PDF with afm's QR paths against the same labels with
reportlab's QrCodeWidget (same layout, same canvas settings, same run). Goal: at least 5x faster.
Then every page is rasterised with pdftoppm at 150 dpi and read with zxing-cpp: each must decode to its
exact URI. Run alone: python -m tests.benchmarks.bench_labels
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reportlab.pdfgen.canvas import Canvas

from app.documents import labels as render
from app.tags.labels import LabelData, LabelTemplate, load_templates
from tests.benchmarks.common import Result, table

LABELS = 1000
REPEATS = 3
DPI = 150
SPEED_GOAL = 5.0


def label_data(count: int) -> list[LabelData]:
    """Realistic module labels: GIAI serials, signed GS1 Digital Link URIs of production length."""
    labels = []
    for n in range(count):
        serial = f"AFM-24-{100 + n:06d}"
        # The signature part varies too, so no two symbols share more than their prefix.
        signature = f"{(n * 2654435761) % 2**40:08X}".rjust(16, "Q")
        uri = f"https://id.afm.example/8004/0614141{serial}?91=K1.{signature}"
        labels.append(
            LabelData(
                qr=uri,
                values={
                    "serial": serial,
                    "spec": "AFM-H100-8L",
                    "spec_name": "AI Factory compute module, 8x H100 SXM5, liquid cooled",
                    "gpu_model": "NVIDIA H100 SXM5 80GB",
                    "gpu_count": "8",
                    "weight_kg": f"{410 + n % 7}.5",
                    "dimensions": "1200 x 800 x 1100 mm",
                    "factory": "Eindhoven (EHV-1)",
                    "hri": f"(8004)0614141{serial}",
                    "uri": uri,
                },
            )
        )
    return labels


def widget_qr(canvas: Canvas, template: LabelTemplate, text: str, x: float, top: float) -> None:
    """The baseline: the QR square drawn by reportlab's own QR widget, as app.documents.pdf.qr_code does."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.units import mm

    spec = template.qr
    size = spec.size_mm * mm
    widget = QrCodeWidget(text, barLevel=spec.ecc, barWidth=size, barHeight=size, barBorder=spec.quiet_zone)
    drawing = Drawing(size, size)
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, top - size)


def render_pdf_with_widget(template: LabelTemplate, labels: list[LabelData]) -> bytes:
    """The same labels, layout and canvas settings as render_pdf, the QR codes drawn by the widget."""
    return render.render_pdf(template, labels, qr=widget_qr)


def _decode_pages(pdf: Path, pages: int, out_dir: Path) -> list[str | None]:
    """The text zxing-cpp reads from each page (None: nothing, or more than one symbol), rasterised by
    pdftoppm in parallel page ranges."""
    import zxingcpp
    from PIL import Image

    workers = max(1, min(8, os.cpu_count() or 1))
    chunk = -(-pages // workers)

    def rasterise(first: int) -> None:
        last = min(pages, first + chunk - 1)
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-gray", "-png", "-f", str(first), "-l", str(last), pdf, out_dir / "p"],
            check=True,
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(rasterise, range(1, pages + 1, chunk)))
    pngs = sorted(out_dir.glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert len(pngs) == pages, f"pdftoppm wrote {len(pngs)} pages of {pages}"

    def decode(png: Path) -> str | None:
        with Image.open(png) as image:
            found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        return found[0].text if len(found) == 1 else None

    with ThreadPoolExecutor(workers) as pool:  # zxing-cpp releases the GIL while it reads
        return list(pool.map(decode, pngs))


def run(tmp_dir: Path) -> Result:
    template = load_templates()["module-shipping"]
    labels = label_data(LABELS)
    render.render_pdf(template, labels[:5])  # warm up imports and font metrics for both sides
    render_pdf_with_widget(template, labels[:5])

    # Alternate the two, best of REPEATS each; the QR cache is emptied so every run encodes every symbol.
    runs: dict[str, list[float]] = {"widget": [], "paths": []}
    pdf = b""
    for _ in range(REPEATS):
        for name, fn in (("widget", render_pdf_with_widget), ("paths", render.render_pdf)):
            render._qr_array.cache_clear()
            t0 = time.perf_counter()
            out = fn(template, labels)
            runs[name].append(time.perf_counter() - t0)
            if name == "paths":
                pdf = out
    times = {name: min(seconds) for name, seconds in runs.items()}
    speedup = times["widget"] / times["paths"]
    print(
        f"{LABELS} module labels to PDF: QR paths {times['paths']:.2f} s, QrCodeWidget {times['widget']:.2f} s "
        f"-> {speedup:.1f}x faster (goal >= {SPEED_GOAL:.0f}x); {len(pdf) / 1e6:.1f} MB",
        file=sys.stderr,
    )
    result = Result(
        name=f"{LABELS} module shipping labels into one PDF",
        measured="render_pdf",
        value=LABELS / times["paths"],
        baseline_name="reportlab QrCodeWidget",
        baseline=LABELS / times["widget"],
        unit="labels/s",
        goal=SPEED_GOAL,
    )
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found (poppler-utils): decode check skipped", file=sys.stderr)
        result.name += ", not decoded (no pdftoppm)"
        return result

    pdf_path = tmp_dir / "module-labels.pdf"
    pdf_path.write_bytes(pdf)
    pages_dir = tmp_dir / "label-pages"
    pages_dir.mkdir()
    t0 = time.perf_counter()
    try:
        read = _decode_pages(pdf_path, LABELS, pages_dir)
    finally:
        shutil.rmtree(pages_dir, ignore_errors=True)
        pdf_path.unlink()
    wrong = [i + 1 for i, (text, label) in enumerate(zip(read, labels, strict=True)) if text != label.qr]
    exact = LABELS - len(wrong)
    print(
        f"zxing-cpp read {exact}/{LABELS} pages at {DPI} dpi back to their exact URI "
        f"({time.perf_counter() - t0:.1f} s)" + (f"; wrong or unread pages: {wrong[:20]}" if wrong else ""),
        file=sys.stderr,
    )
    # The table has one ratio per row; the decode rate rides in the name, loudly when it is not 100 %.
    result.name += f", {exact}/{LABELS} decoded at {DPI} dpi" + ("" if not wrong else " DECODE FAILURES")
    return result


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="afm-bench-") as tmp:
        print(table([run(Path(tmp))]))
