"""Labels rendered from the shipped templates: PDF read back with pypdf and rasterised with pdftoppm, PNG and
ZPL; every QR code printed must decode with zxing-cpp to its exact URI."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pypdf
import pytest
import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode import util as qr_util
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

from app.documents import labels as render
from app.documents.labels import LabelError, mask_penalties, qr_matrix, render_pdf, render_png, render_zpl
from app.tags.labels import LabelData, LabelTemplate, load_templates, qr_modules, qr_version

needs_zxing = pytest.mark.skipif(importlib.util.find_spec("zxingcpp") is None, reason="zxing-cpp not installed")
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not installed: cannot rasterise PDFs"
)

RESOLVER = "https://id.afm.example"
ECC_LEVELS = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M}
ECC_LEVELS |= {"Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}


@pytest.fixture(scope="module")
def templates() -> dict[str, LabelTemplate]:
    return load_templates()


def _signed(path: str) -> str:
    """A GS1 Digital Link URI with an AI 91 signature shaped like the real ones (key id, 80-bit base32)."""
    signature = base64.b32encode(hashlib.sha256(path.encode()).digest()[:10]).decode()
    return f"{RESOLVER}/{path}?91=K1.{signature}"


def module_label(n: int = 101) -> LabelData:
    serial = f"AFM-24-{n:06d}"
    uri = _signed(f"8004/0614141{serial}")
    return LabelData(
        qr=uri,
        values={
            "serial": serial,
            "spec": "AFM-H100-8L",
            "spec_name": "AI Factory compute module, 8x H100 SXM5, liquid cooled",
            "gpu_model": "NVIDIA H100 SXM5 80GB",
            "gpu_count": "8",
            "weight_kg": "412.5",
            "dimensions": "1200 x 800 x 1100 mm",
            "factory": "Eindhoven (EHV-1)",
            "hri": f"(8004)0614141{serial}",
            "uri": uri,
        },
    )


def part_label(n: int = 0) -> LabelData:
    serial = str(1652923033041 + n)  # a GPU board serial
    uri = _signed(f"8004/0614141GPU{serial}")
    return LabelData(
        qr=uri,
        values={
            "serial": serial,
            "kind": "gpu",
            "part_number": "699-2G520-0200-300",
            "module": "AFM-24-000101",
            "hri": f"(8004)0614141GPU{serial}",
            "uri": uri,
        },
    )


def crate_label(n: int = 42) -> LabelData:
    serial = f"CR-{n:04d}"
    uri = _signed(f"8003/00614141123452{serial}")
    return LabelData(
        qr=uri,
        values={
            "serial": serial,
            "asset_type": "Module crate, returnable",
            "description": "Plywood crate with shock mounts for one 8-GPU module",
            "hri": f"(8003)00614141123452{serial}",
            "uri": uri,
        },
    )


LABEL_MAKERS = {"module-shipping": module_label, "part": part_label, "crate": crate_label}


def _decode(image: Image.Image) -> list[str]:
    import zxingcpp

    return [r.text for r in zxingcpp.read_barcodes(image)]


def _rasterise(pdf: bytes, tmp_path: Path, dpi: int = 150) -> list[Path]:
    path = tmp_path / "labels.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", path, tmp_path / "page"], check=True)
    return sorted(tmp_path.glob("page*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


# --- the QR matrix -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ecc", ["L", "M", "Q", "H"])
def test_the_matrix_is_the_symbol_qrcode_makes(ecc: str) -> None:
    """The numpy placement and mask choice change how fast, not what: the same symbol, bit for bit."""
    texts = [
        "A",
        module_label().qr,
        part_label().qr,
        crate_label().qr,
        _signed("8004/0614141" + "X" * 30) + "&10=LOT-2024-11-26&21=" + "9" * 20,  # version 7+: version info
        "https://id.afm.example/" + "a1b2c3d4" * 60,  # version 20-ish, several alignment patterns
    ]
    for text in texts:
        code = qrcode.QRCode(border=0, error_correction=ECC_LEVELS[ecc])
        code.add_data(text)
        code.make(fit=True)
        assert qr_matrix(text, ecc) == code.get_matrix(), (ecc, len(text))  # type: ignore[arg-type]


def test_mask_scores_are_qrcodes() -> None:
    text = module_label().qr
    for mask in range(8):
        code = qrcode.QRCode(border=0, error_correction=ECC_LEVELS["Q"])
        code.add_data(text)
        code.best_fit()
        code.makeImpl(True, mask)
        score = mask_penalties(np.array(code.modules, dtype=bool)[None])[0]
        assert score == qr_util.lost_point(code.modules), mask


def test_the_cached_matrix_cannot_be_changed_through_the_api() -> None:
    first = qr_matrix(part_label().qr, "M")
    first[0][0] = not first[0][0]
    assert qr_matrix(part_label().qr, "M")[0][0] != first[0][0]


# --- PDF ---------------------------------------------------------------------------------------------


def test_pdf_has_a_page_per_label_at_the_label_size_with_its_text(templates: dict[str, LabelTemplate]) -> None:
    labels = [module_label(101), module_label(102), module_label(103)]
    seen: list[int] = []
    pdf = render_pdf(templates["module-shipping"], labels, progress=seen.append)
    assert seen == [1, 2, 3]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    for page, label in zip(reader.pages, labels, strict=True):
        assert float(page.mediabox.width) == pytest.approx(100 * mm)
        assert float(page.mediabox.height) == pytest.approx(150 * mm)
        text = page.extract_text()
        for key in ("serial", "spec_name", "gpu_model", "dimensions", "factory", "hri", "uri"):
            assert label.values[key] in text, key
        assert "AFM COMPUTE MODULE" in text
    assert reader.metadata is not None
    assert reader.metadata.title == templates["module-shipping"].description


def test_pdf_bytes_depend_on_the_labels_alone(templates: dict[str, LabelTemplate]) -> None:
    labels = [part_label(1), part_label(2)]
    assert render_pdf(templates["part"], labels) == render_pdf(templates["part"], labels)


def test_long_text_is_shrunk_then_cut_short(templates: dict[str, LabelTemplate]) -> None:
    label = crate_label()
    long = "Plywood crate with shock mounts, tilt and shock indicators, desiccant and a spare set of lifting straps"
    label = LabelData(qr=label.qr, values=label.values | {"description": long})
    text = pypdf.PdfReader(io.BytesIO(render_pdf(templates["crate"], [label]))).pages[0].extract_text()
    line = next(line for line in text.splitlines() if line.startswith("Plywood crate"))
    assert line.endswith("…")
    assert long.startswith(line[:-1].rstrip())
    assert len(line) < len(long)


@needs_zxing
@needs_pdftoppm
@pytest.mark.parametrize("name", ["module-shipping", "part", "crate"])
def test_every_pdf_label_decodes_to_its_uri_at_150_dpi(
    name: str, templates: dict[str, LabelTemplate], tmp_path: Path
) -> None:
    labels = [LABEL_MAKERS[name](n) for n in (7, 8)]
    pages = _rasterise(render_pdf(templates[name], labels), tmp_path)
    assert len(pages) == 2
    for page, label in zip(pages, labels, strict=True):
        with Image.open(page) as image:
            assert _decode(image) == [label.qr]


@needs_zxing
@needs_pdftoppm
def test_a_sheet_holds_3x8_part_labels_in_reading_order(templates: dict[str, LabelTemplate], tmp_path: Path) -> None:
    import zxingcpp

    template = templates["part-sheet-a4"]
    labels = [part_label(n) for n in range(30)]
    pdf = render_pdf(template, labels)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2  # 24 + 6
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4)
    pages = _rasterise(pdf, tmp_path)
    row_px = 33.9 / 25.4 * 150
    for page, expected in zip(pages, (labels[:24], labels[24:]), strict=True):
        with Image.open(page) as image:
            found = zxingcpp.read_barcodes(image)
        # Sort by position: rows top to bottom, then columns left to right.
        found.sort(key=lambda r: (round(r.position.top_left.y / row_px), r.position.top_left.x))
        assert [r.text for r in found] == [label.qr for label in expected]
    assert labels[0].values["serial"] in reader.pages[0].extract_text()
    assert labels[29].values["serial"] in reader.pages[1].extract_text()


# --- PNG ---------------------------------------------------------------------------------------------


@needs_zxing
@pytest.mark.parametrize(("name", "dpi"), [("module-shipping", 300), ("part", 300), ("part", 203), ("crate", 203)])
def test_png_is_the_label_size_and_decodes(name: str, dpi: int, templates: dict[str, LabelTemplate]) -> None:
    template = templates[name]
    label = LABEL_MAKERS[name](5)
    with Image.open(io.BytesIO(render_png(template, label, dpi=dpi))) as image:
        assert image.format == "PNG"
        assert image.size == (round(template.width_mm / 25.4 * dpi), round(template.height_mm / 25.4 * dpi))
        assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
        assert _decode(image) == [label.qr]


@needs_zxing
def test_png_renders_without_any_truetype_font(
    templates: dict[str, LabelTemplate], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DejaVu, no FreeType: Pillow's bitmap font still prints the text and the QR code still reads."""

    def no_freetype(*_args: object, **_kwargs: object) -> ImageFont.FreeTypeFont:
        raise OSError("cannot open resource")

    monkeypatch.setattr(ImageFont, "truetype", no_freetype)
    render._png_font.cache_clear()
    try:
        label = module_label()
        with Image.open(io.BytesIO(render_png(templates["module-shipping"], label))) as image:
            assert _decode(image) == [label.qr]
            # Text was drawn: dark pixels in the top band above the QR code.
            top = np.asarray(image.convert("L"))[: round(30 / 25.4 * 300)]
            assert (top < 128).sum() > 500
    finally:
        render._png_font.cache_clear()


# --- ZPL ---------------------------------------------------------------------------------------------

_BQ = re.compile(r"\^FO(\d+),(\d+)\^BQN,2,(\d+)(\^FH)?\^FD(.*?)\^FS")
_TEXT = re.compile(r"\^FO(\d+),(\d+)\^A0N,(\d+),(\d+)\^FB(\d+),1,0,([LCR]),0(\^FH)?\^FD(.*?)\^FS")


def _unescape(data: str, escaped: bool) -> str:
    if not escaped:
        return data
    return re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), data.encode()).decode()


def _rasterise_zpl(fmt: str) -> tuple[Image.Image, tuple[int, int, int], list[tuple[int, int, int, int]]]:
    """A ZPL-subset printer: ^PW/^LL page, the ^BQ symbol drawn from its own ^FD data by qrcode at the
    field's magnification and origin (as the printer encodes it), every text field as a solid box of its
    ^FB width and ^A0 height (the most ink it can put down). Returns the image, (x, y, side) of the symbol
    and the text boxes."""
    width = int(re.search(r"\^PW(\d+)", fmt).group(1))  # type: ignore[union-attr]
    height = int(re.search(r"\^LL(\d+)", fmt).group(1))  # type: ignore[union-attr]
    image = Image.new("L", (width, height), 255)
    (bq,) = _BQ.findall(fmt)
    x, y, m = int(bq[0]), int(bq[1]), int(bq[2])
    data = _unescape(bq[4], bool(bq[3]))
    ecc, text = data[0], data[3:]
    assert data[1:3] == "A,"
    code = qrcode.QRCode(border=0, box_size=m, error_correction=ECC_LEVELS[ecc])
    code.add_data(text)
    symbol = code.make_image().get_image().convert("L")
    image.paste(symbol, (x, y))
    boxes = []
    pen = ImageDraw.Draw(image)
    for tx, ty, h, _w, block, _j, _fh, _d in _TEXT.findall(fmt):
        box = (int(tx), int(ty), int(tx) + int(block), int(ty) + int(h))
        boxes.append(box)
        pen.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=0)
    return image, (x, y, symbol.size[0]), boxes


@needs_zxing
@pytest.mark.parametrize(("dpi", "dots_per_mm"), [(203, 8), (300, 12)])
@pytest.mark.parametrize("name", ["module-shipping", "part", "crate"])
def test_zpl_has_one_format_per_label_with_a_qr_that_decodes(
    name: str, dpi: int, dots_per_mm: int, templates: dict[str, LabelTemplate]
) -> None:
    template = templates[name]
    labels = [LABEL_MAKERS[name](n) for n in (1, 2, 3)]
    zpl = render_zpl(template, labels, dpi=dpi)  # type: ignore[arg-type]
    formats = re.findall(r"\^XA.*?\^XZ", zpl, flags=re.S)
    assert len(formats) == zpl.count("^XA") == zpl.count("^XZ") == 3
    qr = template.qr
    square = (qr.x_mm * dots_per_mm, qr.y_mm * dots_per_mm, qr.size_mm * dots_per_mm)
    for fmt, label in zip(formats, labels, strict=True):
        assert f"^PW{round(template.width_mm * dots_per_mm)}" in fmt
        assert f"^LL{round(template.height_mm * dots_per_mm)}" in fmt
        assert "^CI28" in fmt
        (bq,) = _BQ.findall(fmt)
        assert bq[4] == f"{qr.ecc}A,{label.qr}"  # no escaping needed for a URI
        x, y, m = int(bq[0]), int(bq[1]), int(bq[2])
        assert 1 <= m <= 10
        # The symbol (worst case: byte mode) and its quiet zone lie inside the template's square.
        modules = qr_modules(qr_version(len(label.qr), qr.ecc))
        quiet = qr.quiet_zone * m
        assert x - quiet >= square[0] - 1e-9
        assert y - quiet >= square[1] - 1e-9
        assert x + modules * m + quiet <= square[0] + square[2] + 1e-9
        assert y + modules * m + quiet <= square[1] + square[2] + 1e-9
        assert m >= 2  # modules of 0.25 mm or more: at least 2 dots at either resolution
        image, (sx, sy, side), boxes = _rasterise_zpl(fmt)
        for left, top, right, bottom in boxes:  # no text in the symbol or its quiet zone
            assert right <= sx - quiet or left >= sx + side + quiet or bottom <= sy - quiet or top >= sy + side + quiet
        assert _decode(image) == [label.qr]
        texts = [_unescape(t[7], bool(t[6])) for t in _TEXT.findall(fmt)]
        assert label.values["serial"] in texts
        assert label.values["hri"] in texts


def test_zpl_text_is_sized_from_points(templates: dict[str, LabelTemplate]) -> None:
    template = templates["module-shipping"]
    zpl = render_zpl(template, [module_label()], dpi=300)
    serial = next(t for t in _TEXT.findall(zpl) if t[7] == "AFM-24-000101")
    assert int(serial[2]) == round(24 * 25.4 / 72 * 12)  # 24 pt at 12 dots/mm
    assert (int(serial[0]), int(serial[1])) == (6 * 12, 12 * 12)


def test_zpl_escapes_what_field_data_may_not_hold(templates: dict[str, LabelTemplate]) -> None:
    label = part_label()
    label = LabelData(qr=label.qr, values=label.values | {"kind": "gpu^FS~JR_x", "part_number": "699\n2G520"})
    zpl = render_zpl(templates["part"], [label])
    kind = next(t for t in _TEXT.findall(zpl) if "gpu" in _unescape(t[7], bool(t[6])))
    assert kind[6] == "^FH"
    assert kind[7] == "gpu_5EFS_7EJR_5Fx"
    assert _unescape(kind[7], True) == "gpu^FS~JR_x"
    assert "699 2G520" in zpl  # one line: the newline became a space
    # The data's "^FS" did not end its field early: one ^FS per text field, plus the QR code's.
    assert zpl.count("^FS") == len(_TEXT.findall(zpl)) + 1


# --- refusals ----------------------------------------------------------------------------------------


def test_a_missing_value_refuses_the_batch(templates: dict[str, LabelTemplate]) -> None:
    broken = LabelData(
        qr=module_label(2).qr, values={k: v for k, v in module_label(2).values.items() if k != "factory"}
    )
    drawn: list[int] = []
    with pytest.raises(LabelError, match="label 2: no value for factory"):
        render_pdf(templates["module-shipping"], [module_label(1), broken], progress=drawn.append)
    assert drawn == []  # refused before drawing anything
    with pytest.raises(LabelError, match="no value for factory"):
        render_zpl(templates["module-shipping"], [broken])
    with pytest.raises(LabelError, match="no value for factory"):
        render_png(templates["module-shipping"], broken)


def test_an_empty_batch_is_refused(templates: dict[str, LabelTemplate]) -> None:
    with pytest.raises(LabelError, match="no labels"):
        render_pdf(templates["part"], [])
    with pytest.raises(LabelError, match="no labels"):
        render_zpl(templates["part"], [])


def test_an_output_the_template_does_not_offer_is_refused(templates: dict[str, LabelTemplate]) -> None:
    with pytest.raises(LabelError, match="has no zpl output"):
        render_zpl(templates["part-sheet-a4"], [part_label()])


def test_a_qr_text_too_long_for_the_square_is_refused(templates: dict[str, LabelTemplate]) -> None:
    label = part_label()
    long = LabelData(qr=label.qr + "&x=" + "a1b2" * 100, values=label.values)
    with pytest.raises(LabelError, match=r"label 1: .*under the 0\.25 mm minimum"):
        render_pdf(templates["part"], [long])
    with pytest.raises(LabelError, match=r"under the 0\.25 mm minimum"):
        render_png(templates["part"], long)
    with pytest.raises(LabelError, match=r"under the 0\.25 mm minimum"):
        render_zpl(templates["part"], [long])
