"""Shared reportlab building blocks for afm's printable documents: A4 page template with a header and a
"page N of M" footer, fonts, colours, paragraph styles and small helpers (text escaping, times, QR codes).

Only the standard PDF fonts are used (Helvetica, Courier, with reportlab's automatic Symbol fallback) so the
output is identical on every machine: a DejaVu font may exist on a workstation but not on CI or in the image.
"""

from __future__ import annotations

import codecs
import datetime as dt
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.rl_codecs import RL_Codecs
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Paragraph, Table, TableStyle

PAGE_SIZE: tuple[float, float] = A4
MARGIN: float = 16 * mm
HEADER_H: float = 10 * mm  # band above the frame: document name, rule
FOOTER_H: float = 10 * mm  # band below the frame: run/page line, rule
CONTENT_WIDTH: float = PAGE_SIZE[0] - 2 * MARGIN

SANS = "Helvetica"
SANS_BOLD = "Helvetica-Bold"
MONO = "Courier"
MONO_BOLD = "Courier-Bold"

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
RULE = colors.HexColor("#cbd2d9")
HEADER_FILL = colors.HexColor("#e4e7eb")
ZEBRA = colors.HexColor("#f5f7fa")
ACCENT = colors.HexColor("#1f4e79")
PASS_GREEN = colors.HexColor("#1e7b34")
WARN_AMBER = colors.HexColor("#b26b00")
FAIL_RED = colors.HexColor("#c0262d")
NEUTRAL = colors.HexColor("#52606d")  # running, pending and other non-final verdicts

VERDICT_COLOURS: dict[str, colors.Color] = {"pass": PASS_GREEN, "warn": WARN_AMBER, "fail": FAIL_RED}

# Last-resort spellings for characters no standard font (WinAnsi, Symbol, ZapfDingbats) has a glyph for.
_ASCII_FALLBACK: dict[str, str] = {
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "→": "->",
    "←": "<-",
    "−": "-",
    "‑": "-",
    "≈": "~",
    "✓": "ok",
    "✗": "x",
}
_STANDARD_ENCODINGS = ("winansi", "symbol", "zapfdingbats")


def verdict_colour(verdict: str) -> colors.Color:
    return VERDICT_COLOURS.get(verdict.lower(), NEUTRAL)


@functools.cache
def _has_glyph(char: str) -> bool:
    """True if reportlab can draw `char` with a standard font: Helvetica/Courier (WinAnsi) or the Symbol and
    ZapfDingbats fonts it falls back to by itself (that is how "≥" and "≤" print without an embedded font)."""
    RL_Codecs.register()  # idempotent; makes the "winansi"/"symbol"/"zapfdingbats" codecs known
    for encoding in _STANDARD_ENCODINGS:
        try:
            codecs.encode(char, encoding)
        except (UnicodeError, LookupError):
            continue
        return True
    return False


def safe_text(value: object) -> str:
    """The text as it will be printed: characters without a glyph are spelled out (or become "?") instead
    of being drawn as black boxes. Text that prints fine comes back unchanged."""
    text = str(value)
    if all(c.isascii() or _has_glyph(c) for c in text):
        return text
    return "".join(c if c.isascii() or _has_glyph(c) else _ASCII_FALLBACK.get(c, "?") for c in text)


def markup(value: object) -> str:
    """`safe_text`, escaped for a Paragraph (reason strings contain "<" and ">")."""
    return escape(safe_text(value))


def utc(value: dt.datetime | None, *, missing: str = "—") -> str:
    """ISO-like UTC time to the second; naive datetimes are taken to be UTC already (as the database stores)."""
    if value is None:
        return missing
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def hms(seconds: float | None) -> str:
    """Duration as h:mm:ss (hours may exceed 24)."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    total = max(0, round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _style(name: str, **kwargs: Any) -> ParagraphStyle:
    base: dict[str, Any] = {"fontName": SANS, "fontSize": 9, "leading": 11.5, "textColor": INK}
    return ParagraphStyle(name, **(base | kwargs))


@dataclass(frozen=True)
class Styles:
    """Paragraph styles shared by all documents (one instance; ParagraphStyle objects are not mutated)."""

    title: ParagraphStyle
    subtitle: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    bullet: ParagraphStyle
    small: ParagraphStyle
    small_right: ParagraphStyle
    small_bold: ParagraphStyle
    small_bold_right: ParagraphStyle
    label: ParagraphStyle
    mono: ParagraphStyle
    muted: ParagraphStyle


@functools.cache
def styles() -> Styles:
    return Styles(
        title=_style("afm-title", fontName=SANS_BOLD, fontSize=20, leading=24, textColor=ACCENT),
        subtitle=_style("afm-subtitle", fontSize=12, leading=15),
        h2=_style("afm-h2", fontName=SANS_BOLD, fontSize=11, leading=14, textColor=ACCENT, spaceBefore=9, spaceAfter=4),
        body=_style("afm-body"),
        bullet=_style("afm-bullet", fontSize=8.5, leading=11, leftIndent=10, bulletIndent=1, spaceAfter=1.5),
        small=_style("afm-small", fontSize=7.5, leading=9, alignment=TA_LEFT),
        small_right=_style("afm-small-r", fontSize=7.5, leading=9, alignment=TA_RIGHT),
        small_bold=_style("afm-small-b", fontName=SANS_BOLD, fontSize=7.5, leading=9),
        small_bold_right=_style("afm-small-br", fontName=SANS_BOLD, fontSize=7.5, leading=9, alignment=TA_RIGHT),
        label=_style("afm-label", fontSize=8, leading=10, textColor=MUTED),
        mono=_style("afm-mono", fontName=MONO, fontSize=7, leading=8.5),
        muted=_style("afm-muted", fontSize=8.5, leading=11, textColor=MUTED),
    )


def heading(text: str) -> Paragraph:
    return Paragraph(markup(text), styles().h2)


def bullets(items: Sequence[str], style: ParagraphStyle | None = None) -> list[Flowable]:
    """One paragraph per item with a "•" bullet; each item's text is printed verbatim (wrapping at spaces)."""
    style = style or styles().bullet
    return [Paragraph(markup(item), style, bulletText="•") for item in items]


def key_value_table(
    pairs: Sequence[tuple[str, str]],
    *,
    columns: int = 2,
    width: float = CONTENT_WIDTH,
    label_width: float = 24 * mm,
    full_rows: Sequence[tuple[str, str]] = (),
) -> Table:
    """Label/value pairs laid out `columns` pairs to a row (labels muted, values wrap); `full_rows` come
    first and span the whole width (for long values such as a spec name)."""
    st = styles()
    value_w = width / columns - label_width
    span = 2 * columns - 1
    rows: list[list[Flowable | str]] = []
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
    ]
    for label, value in full_rows:
        commands.append(("SPAN", (1, len(rows)), (span, len(rows))))
        rows.append([Paragraph(markup(label), st.label), Paragraph(markup(value), st.body), *[""] * (span - 1)])
    for start in range(0, len(pairs), columns):
        row: list[Flowable | str] = []
        for label, value in pairs[start : start + columns]:
            row += [Paragraph(markup(label), st.label), Paragraph(markup(value), st.body)]
        rows.append(row + [""] * (2 * columns - len(row)))
    table = Table(rows, colWidths=[label_width, value_w] * columns, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def qr_code(url: str, size: float) -> Drawing:
    """A square QR code drawing `size` points wide, encoding `url`."""
    # barWidth/barHeight are the symbol's outer size, quiet zone (barBorder modules) included.
    widget = QrCodeWidget(url, barLevel="M", barWidth=size, barHeight=size)
    drawing = Drawing(size, size)
    drawing.add(widget)
    return drawing


@dataclass(frozen=True)
class PageFurniture:
    """What every page repeats. "page N of M" is appended to `footer_left` once the page count is known."""

    header_left: str
    header_right: str
    footer_left: str
    footer_right: str


class _NumberedCanvas(Canvas):
    """Holds pages back until save() so the footer can say "page N of M" in a single layout pass."""

    def __init__(self, *args: Any, furniture: PageFurniture, created_at: dt.datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._furniture = furniture
        self._pages: list[dict[str, Any]] = []
        stamp = (created_at.astimezone(dt.UTC) if created_at.tzinfo else created_at).strftime("D:%Y%m%d%H%M%S+00'00'")
        # Invariant mode freezes the dates at 2000-01-01; the document's own timestamp is the honest one.
        self.setDateFormatter(lambda *_: stamp)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._draw_furniture(number, total)
            super().showPage()
        super().save()

    def _draw_furniture(self, number: int, total: int) -> None:
        f = self._furniture
        width, height = PAGE_SIZE
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        top = height - MARGIN - HEADER_H + 3 * mm
        self.line(MARGIN, top, width - MARGIN, top)
        self.setFillColor(MUTED)
        self.setFont(SANS_BOLD, 8)
        self.drawString(MARGIN, top + 2 * mm, safe_text(f.header_left))
        self.setFont(SANS, 8)
        self.drawRightString(width - MARGIN, top + 2 * mm, safe_text(f.header_right))
        bottom = MARGIN + FOOTER_H - 3 * mm
        self.line(MARGIN, bottom, width - MARGIN, bottom)
        self.setFont(SANS, 7.5)
        self.drawString(MARGIN, bottom - 4 * mm, safe_text(f"{f.footer_left} · page {number} of {total}"))
        self.drawRightString(width - MARGIN, bottom - 4 * mm, safe_text(f.footer_right))
        self.restoreState()


def render_pdf(
    story: list[Flowable],
    *,
    furniture: PageFurniture,
    title: str,
    subject: str,
    created_at: dt.datetime,
    author: str = "afm",
) -> bytes:
    """Lay `story` out on A4 portrait pages with the shared header and footer and return the PDF bytes.

    Invariant mode plus a caller-supplied creation time make the bytes a function of the inputs alone."""
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + HEADER_H,
        bottomMargin=MARGIN + FOOTER_H,
        title=safe_text(title),
        subject=safe_text(subject),
        author=author,
        creator=author,
        invariant=True,
    )
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body", leftPadding=0, rightPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    doc.build(story, canvasmaker=functools.partial(_NumberedCanvas, furniture=furniture, created_at=created_at))
    return buffer.getvalue()
