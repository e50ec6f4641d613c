"""Labels drawn from templates (app.tags.labels) as PDF (one label a page, or sheets), PNG and ZPL.

Every output draws the QR code from one module matrix made by the `qrcode` package (its two slow loops done
with numpy, same symbols), so what a PDF, a PNG and a Zebra printer show is the same symbol. In a PDF each
QR code is one filled path: each row's runs of dark modules become rectangles in module units under a
scaling transform, a few hundred short integer operators a label, where reportlab's QrCodeWidget makes each
run a shape of its own with its own fill and float coordinates (10x+ faster for 1000 labels: `make bench`,
labels). One path also means no hairline seams where a rasteriser anti-aliases abutting rectangles.

Text uses the standard Helvetica fonts in PDFs (identical on every machine), Liberation Sans (Helvetica's
metrics) or DejaVu Sans in PNGs where installed, Pillow's built-in font otherwise, and the printer's font 0
in ZPL.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.pathobject import PDFPathObject

from app.documents.pdf import SANS, SANS_BOLD, safe_text
from app.tags.labels import (
    MIN_MODULE_MM,
    MM_PER_PT,
    Ecc,
    FieldSpec,
    LabelData,
    LabelTemplate,
    Output,
    fit_text,
    module_mm,
    qr_modules,
    qr_version,
)

ZplDpi = Literal[203, 300]
DOTS_PER_MM: dict[int, int] = {203: 8, 300: 12}
ZPL_MAX_MAGNIFICATION = 10

_ECC_LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}
_ASCENT = 0.8  # a line's baseline below its top, in ems: Helvetica's ascender (0.72) plus a little air


class LabelError(ValueError):
    """Labels that cannot be printed with this template: missing values, a QR text too long for its square,
    an output the template does not offer."""


# --- the QR matrix -----------------------------------------------------------------------------------


@functools.cache
def _mask_grids(n: int) -> np.ndarray:
    """The eight ISO/IEC 18004 data masks for an n x n symbol, as an (8, n, n) array (True: flip)."""
    i, j = np.indices((n, n))
    grids = np.stack(
        [
            (i + j) % 2 == 0,
            i % 2 == 0,
            j % 3 == 0,
            (i + j) % 3 == 0,
            (i // 2 + j // 3) % 2 == 0,
            (i * j) % 2 + (i * j) % 3 == 0,
            ((i * j) % 2 + (i * j) % 3) % 2 == 0,
            ((i * j) % 3 + (i + j) % 2) % 2 == 0,
        ]
    )
    grids.setflags(write=False)
    return grids


def mask_penalties(candidates: np.ndarray) -> np.ndarray:
    """ISO/IEC 18004 penalty score (rules N1-N4) of each of k candidate symbols, a (k, n, n) bool array."""
    k, n, _ = candidates.shape
    # N1: each run of 5+ same-colour modules in a row or column scores its length - 2. Runs are found in
    # all lines of all candidates at once: a sentinel column ends every line, so no run spans two lines.
    lines = np.concatenate((candidates, candidates.transpose(0, 2, 1)), axis=1)  # (k, 2n, n)
    starts = np.ones((k, 2 * n, n + 1), dtype=bool)
    starts[:, :, 1:n] = lines[:, :, 1:] != lines[:, :, :-1]
    at = np.flatnonzero(starts)
    lengths = np.diff(at)
    long = lengths >= 5
    n1 = np.bincount(at[:-1][long] // (2 * n * (n + 1)), weights=lengths[long] - 2, minlength=k)
    # N2: 3 for every 2x2 block of one colour (overlapping blocks count separately).
    a = candidates[:, :-1, :-1]
    n2 = 3 * ((a == candidates[:, 1:, :-1]) & (a == candidates[:, :-1, 1:]) & (a == candidates[:, 1:, 1:])).sum(
        axis=(1, 2)
    )
    # N3: 40 for every finder-like pattern in a row or column: dark-light-dark x3-light-dark (1:1:3:1:1)
    # with four light modules after it or before it.
    n3 = np.zeros(k, dtype=np.int64)
    for lit in (candidates, candidates.transpose(0, 2, 1)):
        off = ~lit
        core = lit[..., : n - 6] & off[..., 1 : n - 5] & lit[..., 2 : n - 4] & lit[..., 3 : n - 3]
        core &= lit[..., 4 : n - 2] & off[..., 5 : n - 1] & lit[..., 6:]
        light4 = off[..., : n - 3] & off[..., 1 : n - 2] & off[..., 2 : n - 1] & off[..., 3:]
        after = core[..., : n - 10] & light4[..., 7:]
        before = light4[..., : n - 10] & core[..., 4:]
        n3 += 40 * ((after | before).sum(axis=(1, 2)))
    # N4: 10 for every 5 % the share of dark modules is away from 50 %.
    dark = candidates.sum(axis=(1, 2)) * 100 / (n * n)
    n4 = 10 * (np.abs(dark - 50) // 5)
    return n1 + n2 + n3 + n4


@functools.cache
def _placement(modules_count: int, free: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a version's data cells in the order ISO/IEC 18004 fills them: two-module wide
    columns from the right, alternately upwards and downwards, stepping over the vertical timing pattern.
    `free` is the n*n flags of the cells no function pattern holds (the same for every symbol of a version)."""
    n = modules_count
    rows: list[int] = []
    cols: list[int] = []
    upwards = True
    for pair in range(n - 1, 0, -2):
        right = pair - 1 if pair <= 6 else pair  # left of the timing pattern (column 6) pairs shift by one
        for row in range(n - 1, -1, -1) if upwards else range(n):
            for c in (right, right - 1):
                if free[row * n + c]:
                    rows.append(row)
                    cols.append(c)
        upwards = not upwards
    placement = np.array(rows), np.array(cols)
    for array in placement:
        array.setflags(write=False)
    return placement


class _Encoder(qrcode.QRCode):  # type: ignore[type-arg]
    """qrcode's encoder, its two pure-Python hot spots done with numpy; the symbols are the same.

    qrcode places the data bit by bit, eight times per symbol to score each mask, then once more with the
    best: about 80 % of its time. Here the data cells' fill order is worked out once per version, a
    placement is one indexed assignment, and since the data cells are the same for every mask, the eight
    candidates are one placement XOR each mask, scored together (qrcode's scoring rules, same choices).
    """

    _grid: np.ndarray | None = None  # the last placement, function patterns included
    _free: np.ndarray | None = None  # its data cells

    def map_data(self, data: list[int], mask_pattern: int) -> None:
        n = self.modules_count
        free = np.array([[cell is None for cell in row] for row in self.modules], dtype=bool)
        rows, cols = _placement(n, free.tobytes())
        grid = np.array(self.modules, dtype=bool)  # None (data cells) reads as False
        bits = np.unpackbits(np.asarray(data, dtype=np.uint8))[: len(rows)]
        dark = np.zeros(len(rows), dtype=bool)
        dark[: len(bits)] = bits  # remainder bits, if any, stay light before masking
        grid[rows, cols] = dark ^ _mask_grids(n)[mask_pattern][rows, cols]
        self._grid, self._free = grid, free
        self.modules = grid.tolist()

    def best_mask_pattern(self) -> int:
        # Test mode leaves the format bits light for every mask, as qrcode scores them.
        self.makeImpl(True, 0)
        assert self._grid is not None
        assert self._free is not None
        masks = _mask_grids(self.modules_count)
        candidates = self._grid ^ ((masks[0] ^ masks) & self._free)
        return int(np.argmin(mask_penalties(candidates)))


@functools.lru_cache(maxsize=256)
def _qr_array(text: str, ecc: Ecc) -> np.ndarray:
    """The QR symbol for `text` without its quiet zone, True = dark; read-only (it is cached)."""
    code = _Encoder(border=0, error_correction=_ECC_LEVELS[ecc])
    code.add_data(text)
    code.make(fit=True)
    matrix = np.array(code.get_matrix(), dtype=bool)
    matrix.setflags(write=False)
    return matrix


def qr_matrix(text: str, ecc: Ecc) -> list[list[bool]]:
    """The QR symbol that encodes `text` at error correction `ecc`, row by row, quiet zone excluded."""
    return _qr_array(text, ecc).tolist()  # type: ignore[no-any-return]


def _runs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, first column, length) of every horizontal run of dark modules, row by row."""
    n = matrix.shape[1]
    edges = np.zeros((matrix.shape[0], n + 2), dtype=np.int8)
    edges[:, 1:-1] = matrix
    step = np.diff(edges, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows, starts, ends - starts


def _module_pitch(template: LabelTemplate, modules: int) -> float:
    """The printed module size (mm) of a `modules`-wide symbol in the template's square, refused below
    MIN_MODULE_MM (a QR text much longer than the template was checked for)."""
    pitch = module_mm(template.qr, modules)
    if pitch < MIN_MODULE_MM:
        raise LabelError(
            f"its QR text needs {modules} modules; the {template.qr.size_mm:g} mm square of {template.name!r} "
            f"prints them at {pitch:.3f} mm, under the {MIN_MODULE_MM} mm minimum"
        )
    return pitch


# --- shared checks -----------------------------------------------------------------------------------


def _require(template: LabelTemplate, output: Output) -> None:
    if output not in template.outputs:
        raise LabelError(f"template {template.name!r} has no {output} output (outputs: {', '.join(template.outputs)})")


def _check_values(template: LabelTemplate, labels: Sequence[LabelData]) -> None:
    """Refuse the whole batch before drawing any of it if a label lacks a value its template prints."""
    if not labels:
        raise LabelError("no labels to print")
    keys = template.value_keys
    for i, label in enumerate(labels):
        missing = [k for k in keys if k not in label.values]
        if missing:
            raise LabelError(f"label {i + 1}: no value for {', '.join(missing)} ({template.name!r} prints them)")
        if not label.qr:
            raise LabelError(f"label {i + 1}: the QR text is empty")


def _text(field: FieldSpec, label: LabelData) -> str:
    raw = field.text if field.text is not None else label.values[field.value or ""]
    return " ".join(raw.split())  # one line: newlines and tabs would break every output


# --- PDF ---------------------------------------------------------------------------------------------

# Compressed page streams: ~8 % more time than plain ones for a third of the size (2.6 vs 7.3 MB for the
# 1000-label benchmark); reportlab without its C accelerator spends most of that in ASCII85 encoding.
PAGE_COMPRESSION = 1

QrDrawer = Callable[[Canvas, LabelTemplate, str, float, float], None]
"""Draws the QR code for a text in the template's QR square, whose top-left corner is at (x, top) points."""


def draw_qr(canvas: Canvas, template: LabelTemplate, text: str, x: float, top: float) -> None:
    """The symbol as one filled path, centred in the square with its quiet zone left white.

    Drawn in module units (y down) under a transform: a label's path is a few hundred `c r w 1 re`
    operators of small integers, one per horizontal run of dark modules."""
    qr = template.qr
    matrix = _qr_array(text, qr.ecc)
    pitch = _module_pitch(template, matrix.shape[0]) * mm
    rows, starts, widths = _runs(matrix)
    ops = [f"{c} {r} {w} 1 re" for r, c, w in zip(rows.tolist(), starts.tolist(), widths.tolist(), strict=True)]
    inset = qr.quiet_zone * pitch
    canvas.saveState()
    canvas.transform(pitch, 0, 0, -pitch, x + inset, top - inset)
    canvas.drawPath(PDFPathObject(code=ops), stroke=0, fill=1)
    canvas.restoreState()


def draw_label(
    canvas: Canvas,
    template: LabelTemplate,
    label: LabelData,
    left: float,
    top: float,
    *,
    qr: QrDrawer = draw_qr,
) -> None:
    """One label with its top-left corner at (left, top) points on the canvas's page."""
    spec = template.qr
    qr(canvas, template, label.qr, left + spec.x_mm * mm, top - spec.y_mm * mm)
    for field in template.fields:
        font = SANS_BOLD if field.bold else SANS
        span_left, span_right = field.span_mm(template.width_mm)
        text, size = fit_text(
            safe_text(_text(field, label)),
            field.font_size,
            (span_right - span_left) * mm,
            lambda s, size, font=font: stringWidth(s, font, size),
        )
        if not text:
            continue
        canvas.setFont(font, size)
        x = left + field.x_mm * mm
        y = top - field.y_mm * mm - _ASCENT * size
        if field.align == "left":
            canvas.drawString(x, y, text)
        elif field.align == "right":
            canvas.drawRightString(x, y, text)
        else:
            canvas.drawCentredString(x, y, text)


def render_pdf(
    template: LabelTemplate,
    labels: Sequence[LabelData],
    *,
    progress: Callable[[int], None] | None = None,
    qr: QrDrawer = draw_qr,
) -> bytes:
    """The labels as one PDF: a page per label at the label's size or, for a sheet template, the labels in
    its grid on sheet-sized pages. `progress(n)` is called after the n-th label is drawn. `qr` draws the
    QR codes (the benchmark passes reportlab's widget for comparison)."""
    _require(template, "pdf")
    _check_values(template, labels)
    sheet = template.sheet
    page_mm = (sheet.page_width_mm, sheet.page_height_mm) if sheet else (template.width_mm, template.height_mm)
    buffer = io.BytesIO()
    # invariant: the bytes depend on the labels alone (no creation time, no random document id).
    canvas = Canvas(buffer, pagesize=(page_mm[0] * mm, page_mm[1] * mm), pageCompression=PAGE_COMPRESSION, invariant=1)
    canvas.setTitle(template.description or template.name)
    canvas.setAuthor("afm")
    canvas.setCreator("afm")
    page_top = page_mm[1] * mm
    for i, label in enumerate(labels):
        left, top = 0.0, page_top
        if sheet is None:
            if i:
                canvas.showPage()
        else:
            slot = i % sheet.per_page
            if i and not slot:
                canvas.showPage()
            pitch_x, pitch_y = sheet.pitch(template.width_mm, template.height_mm)
            left = (sheet.margin_left_mm + slot % sheet.columns * pitch_x) * mm
            top = page_top - (sheet.margin_top_mm + slot // sheet.columns * pitch_y) * mm
        try:
            draw_label(canvas, template, label, left, top, qr=qr)
        except LabelError as exc:
            raise LabelError(f"label {i + 1}: {exc}") from None
        if progress is not None:
            progress(i + 1)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- PNG ---------------------------------------------------------------------------------------------

# Liberation Sans has Helvetica's metrics, so PNG text fits where the PDF's does; DejaVu Sans Condensed is
# close. Full Debian paths first; bare names make Pillow search the system's font directories.
_PNG_FONTS: dict[bool, tuple[str, ...]] = {
    bold: (
        f"/usr/share/fonts/truetype/liberation/LiberationSans-{'Bold' if bold else 'Regular'}.ttf",
        f"/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed{'-Bold' if bold else ''}.ttf",
        f"LiberationSans-{'Bold' if bold else 'Regular'}.ttf",
        f"DejaVuSansCondensed{'-Bold' if bold else ''}.ttf",
        f"DejaVuSans{'-Bold' if bold else ''}.ttf",
    )
    for bold in (False, True)
}
PngFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=64)
def _png_font(bold: bool, size_px: int) -> PngFont:
    """A system sans font where installed, else Pillow's own: its scalable font when Pillow has FreeType,
    its small bitmap font when it has not. Never fails."""
    for candidate in _PNG_FONTS[bold]:
        try:
            return ImageFont.truetype(candidate, size_px)
        except (OSError, ImportError):
            continue
    try:
        return ImageFont.load_default(size_px)  # needs FreeType
    except (OSError, ImportError):
        bitmap = getattr(ImageFont, "load_default_imagefont", None)  # Pillow >= 10.1; before, load_default is it
        return bitmap() if bitmap is not None else ImageFont.load_default()


def render_png(template: LabelTemplate, label: LabelData, *, dpi: int = 300) -> bytes:
    """One label as a greyscale PNG at `dpi`, the QR code with a whole number of pixels per module."""
    _require(template, "png")
    _check_values(template, [label])
    if not 72 <= dpi <= 1200:
        raise LabelError(f"dpi {dpi} is outside 72..1200")
    px_per_mm = dpi / 25.4
    image = Image.new("L", (round(template.width_mm * px_per_mm), round(template.height_mm * px_per_mm)), 255)
    qr = template.qr
    matrix = _qr_array(label.qr, qr.ecc)
    n = matrix.shape[0]
    _module_pitch(template, n)
    total = n + 2 * qr.quiet_zone
    square = math.floor(qr.size_mm * px_per_mm)
    px = square // total
    if px < 1:
        raise LabelError(f"at {dpi} dpi the {qr.size_mm:g} mm QR square has under one pixel per module")
    symbol = Image.fromarray(np.where(matrix, 0, 255).astype(np.uint8), mode="L")
    symbol = symbol.resize((n * px, n * px), Image.Resampling.NEAREST)  # crisp: whole pixels per module
    offset = (square - total * px) // 2 + qr.quiet_zone * px
    image.paste(symbol, (round(qr.x_mm * px_per_mm) + offset, round(qr.y_mm * px_per_mm) + offset))

    draw = ImageDraw.Draw(image)
    for field in template.fields:
        span_left, span_right = field.span_mm(template.width_mm)
        size_px = field.font_size / 72 * dpi

        def measure(s: str, size: float, bold: bool = field.bold) -> float:
            return draw.textlength(s, font=_png_font(bold, max(1, round(size))))

        text, size = fit_text(_text(field, label), size_px, (span_right - span_left) * px_per_mm, measure)
        if not text:
            continue
        font = _png_font(field.bold, max(1, round(size)))
        width = draw.textlength(text, font=font)
        x = field.x_mm * px_per_mm - {"left": 0.0, "center": width / 2, "right": width}[field.align]
        top = field.y_mm * px_per_mm
        if isinstance(font, ImageFont.FreeTypeFont):
            draw.text((x, top + _ASCENT * size), text, font=font, fill=0, anchor="ls")
        else:  # the bitmap fallback knows no anchors: its text hangs from the top
            draw.text((x, top), text, font=font, fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


# --- ZPL ---------------------------------------------------------------------------------------------

# Characters ^FD data may not hold raw: the command prefixes, the ^FH escape itself, control characters.
_ZPL_UNSAFE = frozenset("^~_") | frozenset(chr(c) for c in range(32)) | {"\x7f"}


def zpl_field_data(data: str) -> str:
    """`^FD<data>^FS`, as `^FH^FD` with `_XX` escapes (UTF-8 bytes, for ^CI28) if the data needs them."""
    if not any(c in _ZPL_UNSAFE for c in data):
        return f"^FD{data}^FS"
    escaped = "".join("".join(f"_{b:02X}" for b in c.encode()) if c in _ZPL_UNSAFE else c for c in data)
    return f"^FH^FD{escaped}^FS"


def zpl_magnification(modules: int, quiet_zone: int, size_mm: float, dpi: ZplDpi) -> int:
    """The largest ^BQ magnification (dots per module, 1-10) at which the symbol and its quiet zone fit
    the template's square; LabelError if even one dot per module does not fit."""
    square = math.floor(size_mm * DOTS_PER_MM[dpi] + 1e-9)
    fit = square // (modules + 2 * quiet_zone)
    if fit < 1:
        raise LabelError(f"a {modules}-module QR code does not fit {size_mm:g} mm at {dpi} dpi")
    return min(fit, ZPL_MAX_MAGNIFICATION)


def render_zpl(template: LabelTemplate, labels: Sequence[LabelData], *, dpi: ZplDpi = 203) -> str:
    """The labels as ZPL II, one `^XA ... ^XZ` format per label, for a printer at 203 or 300 dpi."""
    _require(template, "zpl")
    _check_values(template, labels)
    if dpi not in DOTS_PER_MM:
        raise LabelError(f"ZPL printers here print at 203 or 300 dpi, not {dpi}")
    dots_per_mm = DOTS_PER_MM[dpi]

    def dots(value_mm: float) -> int:
        return round(value_mm * dots_per_mm)

    qr = template.qr
    formats: list[str] = []
    for i, label in enumerate(labels):
        # The printer encodes the text itself and may pick a larger version than qrcode (it need not
        # optimise segments), so the size is planned for the worst case: every character a byte.
        modules = max(_qr_array(label.qr, qr.ecc).shape[0], qr_modules(qr_version(len(label.qr.encode()), qr.ecc)))
        try:
            _module_pitch(template, modules)
        except LabelError as exc:
            raise LabelError(f"label {i + 1}: {exc}") from None
        m = zpl_magnification(modules, qr.quiet_zone, qr.size_mm, dpi)
        square = math.floor(qr.size_mm * dots_per_mm + 1e-9)
        inset = (square - (modules + 2 * qr.quiet_zone) * m) // 2 + qr.quiet_zone * m
        lines = [
            "^XA",
            "^CI28",  # field data is UTF-8
            f"^PW{dots(template.width_mm)}",
            f"^LL{dots(template.height_mm)}",
            "^LH0,0",
            f"^FO{dots(qr.x_mm) + inset},{dots(qr.y_mm) + inset}^BQN,2,{m}{zpl_field_data(f'{qr.ecc}A,{label.qr}')}",
        ]
        for field in template.fields:
            span_left, span_right = field.span_mm(template.width_mm)
            # Font 0 is a condensed face; Helvetica Bold's widths overestimate it, so fitted text fits.
            text, size = fit_text(
                _text(field, label),
                field.font_size,
                (span_right - span_left) * mm,
                lambda s, size: stringWidth(s, SANS_BOLD, size),
                ellipsis="...",
            )
            if not text:
                continue
            height = max(10, dots(size * MM_PER_PT))  # font 0 is legible from 10 dots
            block = dots(span_right - span_left)
            justify = {"left": "L", "center": "C", "right": "R"}[field.align]
            lines.append(
                f"^FO{dots(span_left)},{dots(field.y_mm)}^A0N,{height},{height}^FB{block},1,0,{justify},0"
                + zpl_field_data(text)
            )
        lines.append("^XZ")
        formats.append("\n".join(lines))
    return "\n".join(formats) + "\n"
