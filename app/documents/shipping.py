"""A shipment's shipping documents as PDFs, rendered from the pure model in app/logistics/documents.py.

`render(doc)` picks the renderer for `doc.kind`: `render_manifest`, `render_packing_list`,
`render_commercial_invoice`, `render_dg_note`. Every page's header names the document, its number and
version and the shipment; the footer says "page N of M". Page 1 carries the parties, terms, ports,
containers and seals, and a QR code holding the shipment's URL (printed under it).

Table cells are plain strings, wrapped here to their column, not Paragraphs: a 200-module manifest then
lays out about as fast as a bare reportlab table (see tests/benchmarks/bench_manifest.py). Long tables
split across pages with the header row repeated; totals rows are computed from every line of the model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import iso3166
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.pathobject import PDFPathObject
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from app.documents.labels import qr_matrix
from app.documents.pdf import (
    CONTENT_WIDTH,
    HEADER_FILL,
    MONO,
    MUTED,
    RULE,
    SANS,
    SANS_BOLD,
    ZEBRA,
    PageFurniture,
    bullets,
    heading,
    key_value_table,
    markup,
    render_pdf,
    safe_text,
    styles,
    utc,
)
from app.logistics.documents import (
    DESTINATION_CONTROL_STATEMENT,
    DOCUMENT_TITLES,
    HANDLING_MARKS,
    PACKING_CERTIFICATE,
    SHIPPERS_DECLARATION,
    ModuleLine,
    PackageLine,
    Party,
    ShippingDocument,
    ShippingDocumentError,
    dg_lines,
    line_total,
    needs_dcs,
    packages_by_serial,
    totals,
)

_QR_SIZE = 27 * mm
_QR_QUIET = 4  # modules of white around the symbol, as ISO/IEC 18004 asks (and pdf.qr_code draws)
_SIDE_W = 38 * mm  # right-hand column of the opening block: QR code and the URL under it
_LEFT_W = CONTENT_WIDTH - _SIDE_W - 4 * mm
_PAD = 2.5  # cell padding, left and right
_SIZE = 7.0  # table text
_MONO_SIZE = 6.5  # SSCCs: 23 characters of "(00) " + 18 digits fit a 34 mm column
_LEADING = 8.5


# --- formatting -------------------------------------------------------------------------------------


def kg(value: float) -> str:
    """Masses everywhere: one decimal, thousands separators ("21,800.0")."""
    return f"{value:,.1f}"


def cm(value_mm: int) -> str:
    """Dimensions in whole centimetres, rounded half up (1,219 for 12,192 mm)."""
    return f"{(value_mm + 5) // 10:,}"


def m3(value: float) -> str:
    return f"{value:,.3f}"


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def sscc_hri(sscc: str) -> str:
    """The SSCC as printed under its barcode: AI in brackets, then the 18 digits."""
    return f"(00) {sscc}"


def _country(code: str) -> str:
    country = iso3166.countries_by_alpha2.get(code)
    return f"{country.apolitical_name} ({code})" if country else code


@functools.lru_cache(maxsize=4096)
def _wrap(text: str, width: float, font: str = SANS, size: float = _SIZE) -> str:
    """Plain cell text broken into lines that fit a `width`-point column: at spaces, and inside a token
    only when the token alone is wider than the column (a long GIAI URI). Cached: a manifest repeats the
    same description, spec, HS code and ECCN on most of its lines."""
    text = safe_text(text)
    avail = width - 2 * _PAD
    if "\n" not in text and stringWidth(text, font, size) <= avail:
        return text
    out: list[str] = []
    for paragraph in text.split("\n"):
        for line in simpleSplit(paragraph, font, size, avail) or [""]:
            while len(line) > 1 and stringWidth(line, font, size) > avail:
                cut = len(line) - 1
                while cut > 1 and stringWidth(line[:cut], font, size) > avail:
                    cut -= 1
                out.append(line[:cut])
                line = line[cut:]
            out.append(line)
    return "\n".join(out)


class QrSquare(Flowable):
    """A QR code `size` points wide (quiet zone included) holding `text`, drawn as one filled path.

    Same symbol as pdf.qr_code (error correction M), from the matrix the module labels use
    (app.documents.labels.qr_matrix): reportlab's QrCodeWidget spends ~20 ms encoding and drawing one
    symbol in pure Python, a fifth of a 200-line manifest's rendering time; this takes well under 1 ms."""

    def __init__(self, text: str, size: float) -> None:
        super().__init__()
        self.text = text
        self.width = self.height = size

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        matrix = qr_matrix(self.text, "M")
        count = len(matrix)
        pitch = self.width / (count + 2 * _QR_QUIET)
        ops: list[str] = []
        for r, row in enumerate(matrix):
            c = 0
            while c < count:
                if not row[c]:
                    c += 1
                    continue
                start = c
                while c < count and row[c]:
                    c += 1
                ops.append(f"{start} {r} {c - start} 1 re")  # one rectangle per run of dark modules
        canvas = self.canv
        canvas.saveState()
        canvas.setFillColor(colors.black)
        # Module units, y down, origin at the symbol's top-left corner inside the quiet zone.
        canvas.transform(pitch, 0, 0, -pitch, _QR_QUIET * pitch, self.height - _QR_QUIET * pitch)
        canvas.drawPath(PDFPathObject(code=ops), stroke=0, fill=1)
        canvas.restoreState()


# --- building blocks --------------------------------------------------------------------------------


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths_mm: Sequence[float],
    *,
    right: Sequence[int] = (),
    mono: Sequence[int] = (),
    footer: Sequence[Sequence[str]] = (),
    footer_span: int = 1,
) -> Table:
    """A data table: bold header row repeated on every page, zebra rows, and `footer` rows (totals) in bold
    whose first cell's text runs across the `footer_span` cells left empty after it. Cells are plain
    strings, wrapped to their column. (No SPAN command: reportlab recomputes spans at every page split,
    and a plain string is not clipped to its cell anyway.)"""
    widths = [w * mm for w in widths_mm]
    if sum(widths) > CONTENT_WIDTH + 0.01:
        raise AssertionError(f"table is {sum(widths) / mm:.1f} mm wide, the page {CONTENT_WIDTH / mm:.1f} mm")

    def cells(row: Sequence[str], font: str, size: float, mono_font: str) -> list[str]:
        return [
            _wrap(text, widths[i], mono_font if i in mono else font, _MONO_SIZE if i in mono else size)
            for i, text in enumerate(row)
        ]

    data = [cells(header, SANS_BOLD, _SIZE, SANS_BOLD)]
    data += [cells(row, SANS, _SIZE, MONO) for row in rows]
    for row in footer:
        data.append(
            [
                _wrap(row[0], sum(widths[:footer_span]), SANS_BOLD),
                *[""] * (footer_span - 1),
                *(_wrap(text, widths[i], SANS_BOLD) for i, text in enumerate(row[footer_span:], start=footer_span)),
            ]
        )
    last = len(rows)
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), SANS_BOLD, _SIZE, _LEADING),
        ("FONT", (0, 1), (-1, -1), SANS, _SIZE, _LEADING),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, MUTED),
    ]
    if last:
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, last), [colors.white, ZEBRA]))
        commands += [("FONT", (col, 1), (col, last), MONO, _MONO_SIZE, _LEADING) for col in mono]
    for col in right:
        commands.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    for n in range(len(footer)):
        row = last + 1 + n
        commands += [("FONT", (0, row), (-1, row), SANS_BOLD, _SIZE, _LEADING), ("ALIGN", (0, row), (0, row), "LEFT")]
    if footer:
        commands.append(("LINEABOVE", (0, last + 1), (-1, last + 1), 0.75, MUTED))
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def _party_cell(label: str, party: Party | None, fallback: str) -> list[Flowable]:
    st = styles()
    out: list[Flowable] = [Paragraph(markup(label), st.label)]
    if party is None:
        return [*out, Paragraph(markup(fallback), st.small)]
    out.append(Paragraph(markup(party.name), st.small_bold))
    out += [Paragraph(markup(line), st.small) for line in party.address]
    out.append(Paragraph(markup(_country(party.country)), st.small))
    if party.tax_id:
        out.append(Paragraph(markup(f"Tax ID: {party.tax_id}"), st.small))
    if party.contact:
        out.append(Paragraph(markup(f"Contact: {party.contact}"), st.small))
    return out


_PARTY_LABELS: dict[str, tuple[str, str, str]] = {
    "commercial-invoice": ("Exporter / seller", "Consignee / ultimate consignee", "Notify party"),
    "dg-note": ("Shipper / consignor", "Consignee", "Notify party"),
}


def _parties(doc: ShippingDocument) -> Table:
    first, second, third = _PARTY_LABELS.get(doc.kind, ("Consignor / exporter", "Consignee", "Notify party"))
    col = _LEFT_W / 3
    table = Table(
        [
            [
                _party_cell(first, doc.consignor, ""),
                _party_cell(second, doc.consignee, ""),
                _party_cell(third, doc.notify, "Same as consignee"),
            ]
        ],
        colWidths=[col] * 3,
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
            ]
        )
    )
    return table


def _containers_text(doc: ShippingDocument) -> str:
    if not doc.containers:
        return "not containerised"
    return "; ".join(f"{c.number} ({c.size_type}), seal {c.seal}" for c in doc.containers)


def _opening(doc: ShippingDocument, extra: Sequence[tuple[str, str]] = ()) -> list[Flowable]:
    """Title, number line, then parties and facts on the left with the QR code to the shipment on the right."""
    st = styles()
    facts = key_value_table(
        [
            ("Incoterms® 2020", f"{doc.incoterm} {doc.incoterm_place}"),
            ("Shipment", doc.shipment_ref),
            ("Origin", doc.origin),
            ("Destination", doc.destination),
            ("Port of loading", doc.port_of_loading),
            ("Port of discharge", doc.port_of_discharge),
            *extra,
        ],
        width=_LEFT_W,
        label_width=25 * mm,
        full_rows=[("Containers / seals", _containers_text(doc))],
    )
    url_style = ParagraphStyle("afm-url", parent=st.mono, fontSize=6, leading=7.2, wordWrap="CJK", alignment=TA_CENTER)
    caption = ParagraphStyle("afm-qr-caption", parent=st.label, fontSize=6.5, leading=8, alignment=TA_CENTER)
    side: list[Flowable] = [
        QrSquare(doc.shipment_url, _QR_SIZE),
        Paragraph("Scan to open this shipment in afm", caption),
        Paragraph(markup(doc.shipment_url), url_style),
    ]
    block = Table([[[_parties(doc), Spacer(1, 2 * mm), facts], side]], colWidths=[_LEFT_W + 4 * mm, _SIDE_W])
    block.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, 0), 4 * mm),
                ("RIGHTPADDING", (1, 0), (1, 0), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("ALIGN", (1, 0), (1, 0), "CENTER"),
            ]
        )
    )
    title = DOCUMENT_TITLES[doc.kind]
    return [
        Paragraph(markup(title), st.title),
        Paragraph(
            f"No. <b>{markup(doc.number)}</b> · version {doc.version} · shipment {markup(doc.shipment_ref)}"
            f" · issued {markup(utc(doc.issued_at))}",
            st.subtitle,
        ),
        Spacer(1, 4 * mm),
        block,
    ]


def _legs(doc: ShippingDocument) -> list[Flowable]:
    out: list[Flowable] = [heading("Transport legs")]
    if not doc.legs:
        return [*out, Paragraph("No legs planned yet.", styles().muted)]
    rows = [
        [
            str(leg.seq),
            leg.mode,
            leg.carrier or "—",
            leg.origin,
            leg.destination,
            utc(leg.planned_departure),
            utc(leg.planned_arrival),
        ]
        for leg in sorted(doc.legs, key=lambda leg: leg.seq)
    ]
    header = ("Leg", "Mode", "Carrier", "From", "To", "Planned departure", "Planned arrival")
    return [*out, _table(header, rows, (9, 12, 27, 33, 33, 32, 32))]


def _notes(doc: ShippingDocument) -> list[Flowable]:
    return [heading("Notes"), *bullets(doc.notes)] if doc.notes else []


def _signature_lines(labels: Sequence[str]) -> Table:
    st = styles()
    col = CONTENT_WIDTH / len(labels)
    table = Table(
        [[""] * len(labels), [Paragraph(markup(label), st.label) for label in labels]],
        colWidths=[col] * len(labels),
        rowHeights=[11 * mm, None],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, MUTED),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 5 * mm),
            ]
        )
    )
    return table


def _render(doc: ShippingDocument, story: list[Flowable], subject: str) -> bytes:
    title = DOCUMENT_TITLES[doc.kind]
    return render_pdf(
        story,
        furniture=PageFurniture(
            header_left=f"afm · {title}",
            header_right=f"{doc.number} · version {doc.version} · shipment {doc.shipment_ref}",
            footer_left=f"{title} {doc.number} · version {doc.version}",
            footer_right=f"issued {utc(doc.issued_at)}",
        ),
        title=f"{title} {doc.number} (version {doc.version})",
        subject=subject,
        created_at=doc.issued_at,
    )


def _expect(doc: ShippingDocument, kind: str) -> None:
    if doc.kind != kind:
        raise ShippingDocumentError(f"document {doc.number} is a {doc.kind}, not a {kind}")


# --- manifest ---------------------------------------------------------------------------------------


def _package_cell(package: PackageLine | None) -> str:
    return "not packed" if package is None else f"{package.number}\n{sscc_hri(package.sscc)}"


def _module_identity(m: ModuleLine) -> str:
    return f"{m.serial}\n{m.giai}" if m.giai else m.serial


def render_manifest(doc: ShippingDocument) -> bytes:
    _expect(doc, "manifest")
    packed = packages_by_serial(doc)
    t = totals(doc)
    rows = [
        [
            str(n),
            _module_identity(m),
            m.spec_code,
            m.description if m.quantity == 1 else f"{m.quantity} × {m.description}",
            m.hs_code,
            m.eccn or "—",
            _package_cell(packed.get(m.serial)),
            kg(m.net_kg),
            kg(m.gross_kg),
        ]
        for n, m in enumerate(doc.modules, start=1)
    ]
    units = f"{len(doc.modules)} modules" if t.quantity == len(doc.modules) else f"{t.quantity} units"
    footer = [[f"Total: {units}", "", "", "", "", "", "", kg(t.module_net_kg), kg(t.module_gross_kg)]]
    header = ("#", "Serial / GIAI", "Spec", "Description", "HS code", "ECCN", "Package / SSCC", "Net kg", "Gross kg")
    story = [
        *_opening(doc, [("Packages", f"{t.packages:,}"), ("Volume", f"{m3(t.volume_m3)} m³")]),
        *_legs(doc),
        heading("Modules"),
        _table(
            header,
            rows,
            (6, 30, 16, 29, 17, 14, 34, 16, 16),
            right=(0, 7, 8),
            mono=(6,),
            footer=footer,
            footer_span=7,
        ),
        *_notes(doc),
    ]
    return _render(doc, story, f"Manifest of shipment {doc.shipment_ref}: {units}")


# --- packing list -----------------------------------------------------------------------------------


def _dimensions(p: PackageLine) -> str:
    return f"{cm(p.length_mm)} × {cm(p.width_mm)} × {cm(p.height_mm)}"


def render_packing_list(doc: ShippingDocument) -> bytes:
    _expect(doc, "packing-list")
    t = totals(doc)
    rows = [
        [
            str(p.number),
            sscc_hri(p.sscc),
            p.kind,
            ", ".join(p.contents) or "—",
            f"{len(p.contents):,}",
            kg(p.net_kg),
            kg(p.gross_kg),
            _dimensions(p),
            m3(p.volume_m3),
        ]
        for p in doc.packages
    ]
    items = sum(len(p.contents) for p in doc.packages)
    footer = [
        [
            f"Total: {t.packages:,} packages",
            "",
            "",
            "",
            f"{items:,}",
            kg(t.package_net_kg),
            kg(t.package_gross_kg),
            "",
            m3(t.volume_m3),
        ]
    ]
    header = ("No.", "SSCC", "Kind", "Contents (serials)", "Qty", "Net kg", "Gross kg", "L × W × H cm", "Volume m³")
    story = [
        *_opening(doc),
        heading("Packages"),
        _table(
            header,
            rows,
            (8, 34, 20, 38, 8, 16, 16, 23, 15),
            right=(0, 4, 5, 6, 7, 8),
            mono=(1,),
            footer=footer,
            footer_span=4,
        ),
        heading("Containers and seals"),
        _container_table(doc),
        heading("Handling"),
        Paragraph(markup(" · ".join(HANDLING_MARKS)), styles().body),
        *_notes(doc),
    ]
    return _render(doc, story, f"Packing list of shipment {doc.shipment_ref}: {t.packages} packages")


def _container_table(doc: ShippingDocument) -> Table | Paragraph:
    groups: list[tuple[str, str, str, list[PackageLine]]] = [
        (c.number, c.size_type, c.seal, [p for p in doc.packages if p.container == c.number]) for c in doc.containers
    ]
    loose = [p for p in doc.packages if not p.container]
    if loose:
        groups.append(("not containerised", "—", "—", loose))
    if not groups:
        return Paragraph("No containers.", styles().muted)
    rows = [
        [
            number,
            size_type,
            seal,
            ", ".join(str(p.number) for p in packages) or "—",
            kg(math.fsum(p.net_kg for p in packages)),
            kg(math.fsum(p.gross_kg for p in packages)),
        ]
        for number, size_type, seal, packages in groups
    ]
    header = ("Container", "Size/type", "Seal", "Packages", "Net kg", "Gross kg")
    return _table(header, rows, (32, 16, 30, 64, 18, 18), right=(4, 5))


# --- commercial invoice -----------------------------------------------------------------------------


def render_commercial_invoice(doc: ShippingDocument) -> bytes:
    _expect(doc, "commercial-invoice")
    st = styles()
    t = totals(doc)
    rows = [
        [
            str(n),
            f"{m.description}\nS/N {m.serial}",
            f"{m.quantity:,}",
            m.currency,
            money(m.unit_value),
            money(line_total(m)),
            m.hs_code,
            m.country_of_origin,
            m.eccn or "—",
            m.licence or "—",
        ]
        for n, m in enumerate(doc.modules, start=1)
    ]
    footer = [
        [
            f"Invoice total {currency}",
            "",
            f"{sum(m.quantity for m in doc.modules if m.currency == currency):,}",
            currency,
            "",
            money(value),
            "",
            "",
            "",
            "",
        ]
        for currency, value in t.values
    ]
    weights = (t.package_net_kg, t.package_gross_kg) if doc.packages else (t.module_net_kg, t.module_gross_kg)
    header = ("#", "Description / serial", "Qty", "Cur.", "Unit value", "Total", "HS code", "Origin", "ECCN", "Licence")
    story = [
        *_opening(
            doc,
            [
                ("Invoice no.", doc.number),
                ("Invoice date", doc.issued_at.strftime("%Y-%m-%d")),
                ("Currency", doc.invoice_currency),
                ("Packages", f"{t.packages:,}"),
                ("Net weight", f"{kg(weights[0])} kg"),
                ("Gross weight", f"{kg(weights[1])} kg"),
            ],
        ),
        heading("Line items"),
        _table(
            header,
            rows,
            (6, 51, 8, 9, 19, 20, 17, 10, 14, 24),
            right=(0, 2, 4, 5),
            footer=footer,
            footer_span=2,
        ),
        Paragraph(
            markup("Invoice total: " + "; ".join(f"{currency} {money(value)}" for currency, value in t.values)),
            ParagraphStyle("afm-invoice-total", parent=st.body, fontName=SANS_BOLD, spaceBefore=4),
        ),
    ]
    if needs_dcs(doc):
        story += [
            heading("Destination control statement (15 CFR 758.6)"),
            Paragraph(markup(DESTINATION_CONTROL_STATEMENT), st.body),
        ]
    story += [
        *_notes(doc),
        KeepTogether(
            [
                heading("Declaration"),
                Paragraph(
                    "I declare that the information on this invoice is true and correct, and that the goods "
                    "described are of the origin shown.",
                    st.body,
                ),
                Spacer(1, 2 * mm),
                _signature_lines(("Name and title", "Place and date", "Authorised signature")),
            ]
        ),
    ]
    totals_text = ", ".join(f"{currency} {money(value)}" for currency, value in t.values)
    return _render(doc, story, f"Commercial invoice for shipment {doc.shipment_ref}: {totals_text}")


# --- dangerous goods note ---------------------------------------------------------------------------


def render_dg_note(doc: ShippingDocument) -> bytes:
    """The IMO multimodal dangerous goods form's content (IMDG 5.4): one line per UN number, the packages
    that carry them, the shipper's declaration, emergency contact and container packing certificate."""
    _expect(doc, "dg-note")
    st = styles()
    lines = dg_lines(doc)
    rows = [
        [
            line.entry.un_number,
            line.entry.proper_shipping_name,
            line.entry.hazard_class,
            line.entry.packing_group or "—",
            "\n".join(f"{count:,} × {kind}" for kind, count in line.package_kinds) + f"\n({line.modules:,} modules)",
            f"{kg(line.net_wh)} Wh" + (f"\n{kg(line.net_battery_kg)} kg" if line.net_battery_kg else ""),
            kg(line.gross_kg),
            line.entry.ems,
            "Yes" if line.entry.marine_pollutant else "No",
        ]
        for line in lines
    ]
    header = (
        "UN No.",
        "Proper shipping name",
        "Class",
        "PG",
        "Packages",
        "Net quantity",
        "Gross kg",
        "EmS",
        "Marine pollutant",
    )
    packed = packages_by_serial(doc)
    un_of = {m.serial: m.battery_un_number for m in doc.modules if m.battery_un_number}
    carrying = sorted({packed[s].number: packed[s] for s in un_of if s in packed}.items())
    package_rows = [
        [
            str(p.number),
            sscc_hri(p.sscc),
            p.kind,
            p.container or "—",
            ", ".join(sorted({un_of[s] for s in p.contents if s in un_of})),
            ", ".join(s for s in p.contents if s in un_of),
            kg(p.gross_kg),
        ]
        for _, p in carrying
    ]
    container_rows = [
        [
            c.number,
            c.size_type,
            c.seal,
            ", ".join(str(p.number) for p in doc.packages if p.container == c.number) or "—",
        ]
        for c in doc.containers
    ]
    story: list[Flowable] = [
        *_opening(doc, [("Emergency contact", doc.emergency_contact)]),
        *_legs(doc),
        heading("Dangerous goods"),
        _table(header, rows, (15, 40, 10, 8, 30, 25, 17, 15, 18), right=(6,)),
        heading("Packages with dangerous goods"),
        _table(
            ("No.", "SSCC", "Kind", "Container", "UN No.", "Serials", "Gross kg"),
            package_rows,
            (8, 34, 22, 24, 15, 57, 18),
            right=(0, 6),
            mono=(1,),
        ),
        KeepTogether(
            [
                heading("Shipper's declaration"),
                Paragraph(markup(SHIPPERS_DECLARATION), st.body),
                Spacer(1, 2 * mm),
                Paragraph(f"<b>Emergency contact (24 h):</b> {markup(doc.emergency_contact)}", st.body),
                Spacer(1, 1 * mm),
                _signature_lines(("Name and status of declarant", "Place and date", "Signature")),
            ]
        ),
        KeepTogether(
            [
                heading("Container packing certificate"),
                _table(("Container", "Size/type", "Seal", "Packages"), container_rows, (34, 18, 34, 92))
                if container_rows
                else Paragraph("Not containerised.", st.muted),
                Spacer(1, 2 * mm),
                Paragraph(markup(PACKING_CERTIFICATE), st.body),
                Spacer(1, 1 * mm),
                _signature_lines(("Name of person responsible for packing", "Place and date", "Signature")),
            ]
        ),
        *_notes(doc),
    ]
    un_numbers = ", ".join(line.entry.un_number for line in lines)
    return _render(doc, story, f"Dangerous goods note for shipment {doc.shipment_ref}: {un_numbers}")


RENDERERS: dict[str, Callable[[ShippingDocument], bytes]] = {
    "manifest": render_manifest,
    "packing-list": render_packing_list,
    "commercial-invoice": render_commercial_invoice,
    "dg-note": render_dg_note,
}


def render(doc: ShippingDocument) -> bytes:
    """The document as PDF bytes (A4 portrait). Deterministic: the same model gives the same bytes."""
    return RENDERERS[doc.kind](doc)
