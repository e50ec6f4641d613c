"""The commissioning certificate as a PDF, rendered from the pure model in app/commissioning/certificate.py.

`render_certificate(cert)` lays out, on A4 pages with the shared header and "page N of M" footer:

- title, number and issue time; a banner "Entered service <date> at <site>"; the module's facts on the
  left and, top right, a QR code holding the module's URL with the URL printed under it;
- the signed checklists (template, version, stage/level, answered, flagged, signers with role, kind, time);
- the validation steps (step, kind, verdict, summary, result SHA-256 shortened to 16 hex digits);
- the evidence photos with their full SHA-256;
- the module's ledger chain head at issue, and the closing statement;
- an annex with every validation result's full SHA-256, so each can be verified against the stored file.

Tables split across pages with their header row repeated. The bytes are a function of the model alone
(invariant mode, creation time = issue time).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import iso3166
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from app.commissioning.certificate import ChecklistSummary, CommissioningCertificate, Signer
from app.documents.pdf import (
    CONTENT_WIDTH,
    HEADER_FILL,
    MONO,
    MUTED,
    PASS_GREEN,
    SANS_BOLD,
    WARN_AMBER,
    ZEBRA,
    PageFurniture,
    heading,
    key_value_table,
    markup,
    render_pdf,
    styles,
    utc,
    verdict_colour,
)
from app.documents.shipping import QrSquare

TITLE = "Commissioning certificate"
SHORT_HASH_LEN = 16

_QR_SIZE = 30 * mm
_SIDE_W = 38 * mm  # right-hand column of the opening block: QR code and the URL under it
_LEFT_W = CONTENT_WIDTH - _SIDE_W - 4 * mm
_PAD = 2.5  # cell padding, left and right


def short_hash(sha256: str) -> str:
    """The first 16 hex digits and an ellipsis: enough to tell results apart on the page."""
    return f"{sha256[:SHORT_HASH_LEN]}…"


def _country(code: str) -> str:
    country = iso3166.countries_by_alpha2.get(code)
    return f"{country.apolitical_name} ({code})" if country else code


def _gpus(cert: CommissioningCertificate) -> str:
    return f"{cert.gpu_count} × {cert.gpu_model}" if cert.gpu_count else "none"


def banner_text(cert: CommissioningCertificate) -> str:
    return f"Entered service {cert.entered_service_at:%Y-%m-%d} at {cert.site_name} ({cert.site_code})"


def closing_statement(cert: CommissioningCertificate) -> str:
    checklists = len(cert.checklists)
    steps = len(cert.validation)
    return (
        f"This certifies that module {cert.module_serial} ({cert.spec_code}, {cert.spec_name}) passed "
        f"{checklists} signed commissioning checklist{'s' if checklists != 1 else ''} and all {steps} step"
        f"{'s' if steps != 1 else ''} of hardware validation suite {cert.suite_id} version {cert.suite_version}, "
        f"and entered service at {cert.site_name} ({cert.site_code}), {_country(cert.site_country)}, on "
        f"{utc(cert.entered_service_at)}. afm issued it from the module's records: the SHA-256 hashes above "
        f"identify each validation result and photo as stored, and the ledger head identifies the module's "
        f"ledger as it stood at issue, so any copy of those records can be checked against this certificate."
    )


# --- styles -----------------------------------------------------------------------------------------


@functools.cache
def _cell_styles() -> dict[str, ParagraphStyle]:
    st = styles()
    small = ParagraphStyle("afm-cert-cell", parent=st.small, fontSize=7, leading=8.5)
    return {
        "cell": small,
        "bold": ParagraphStyle("afm-cert-cell-b", parent=small, fontName=SANS_BOLD),
        "right": ParagraphStyle("afm-cert-cell-r", parent=st.small_right, fontSize=7, leading=8.5),
        "head": ParagraphStyle("afm-cert-head", parent=st.small_bold, fontSize=7, leading=8.5),
        "head_right": ParagraphStyle("afm-cert-head-r", parent=st.small_bold_right, fontSize=7, leading=8.5),
        "flagged": ParagraphStyle(
            "afm-cert-cell-flagged",
            parent=st.small_right,
            fontName=SANS_BOLD,
            fontSize=7,
            leading=8.5,
            textColor=WARN_AMBER,
        ),
        # Hashes: one line of 64 digits where the column allows; broken anywhere (not only at spaces) if not.
        "hash": ParagraphStyle("afm-cert-hash", parent=st.mono, fontSize=6.5, leading=8, wordWrap="CJK"),
        "ledger": ParagraphStyle("afm-cert-ledger", parent=st.mono, fontName=MONO, fontSize=8, leading=10),
        "url": ParagraphStyle(
            "afm-cert-url", parent=st.mono, fontSize=6, leading=7.2, wordWrap="CJK", alignment=TA_CENTER
        ),
        "caption": ParagraphStyle("afm-cert-caption", parent=st.label, fontSize=6.5, leading=8, alignment=TA_CENTER),
        "banner": ParagraphStyle(
            "afm-cert-banner", parent=st.body, fontName=SANS_BOLD, fontSize=12, leading=15, textColor=colors.white
        ),
    }


@functools.cache
def _verdict_style(verdict: str) -> ParagraphStyle:
    return ParagraphStyle(
        f"afm-cert-verdict-{verdict}", parent=_cell_styles()["bold"], textColor=verdict_colour(verdict)
    )


def _p(text: str, style: str = "cell") -> Paragraph:
    """A cell paragraph: the text escaped, newlines kept as line breaks."""
    return Paragraph(markup(text).replace("\n", "<br/>"), _cell_styles()[style])


# --- building blocks --------------------------------------------------------------------------------


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Flowable | list[Flowable]]],
    widths_mm: Sequence[float],
    *,
    right: Sequence[int] = (),
) -> Table:
    """A data table of paragraph cells: bold header row repeated on every page it spans, zebra rows."""
    widths = [w * mm for w in widths_mm]
    if sum(widths) > CONTENT_WIDTH + 0.01:
        raise AssertionError(f"table is {sum(widths) / mm:.1f} mm wide, the page {CONTENT_WIDTH / mm:.1f} mm")
    head = [_p(text, "head_right" if i in right else "head") for i, text in enumerate(header)]
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, MUTED),
    ]
    if rows:
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, len(rows)), [colors.white, ZEBRA]))
    table = Table([head, *rows], colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def _banner(cert: CommissioningCertificate) -> Table:
    table = Table([[Paragraph(markup(banner_text(cert)), _cell_styles()["banner"])]], colWidths=[_LEFT_W])
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), PASS_GREEN),
                ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
            ]
        )
    )
    return table


def _opening(cert: CommissioningCertificate) -> list[Flowable]:
    """Title and number line; banner and module facts on the left, the QR code to the module on the right."""
    st = styles()
    cs = _cell_styles()
    facts = key_value_table(
        [
            ("Module serial", cert.module_serial),
            ("Spec", cert.spec_code),
            ("GPUs", _gpus(cert)),
            ("Factory", cert.factory),
            ("Site", f"{cert.site_name} ({cert.site_code})"),
            ("Country", _country(cert.site_country)),
            ("Security level", cert.security_level.capitalize()),
            ("Entered service", utc(cert.entered_service_at)),
            ("Validation suite", f"{cert.suite_id} version {cert.suite_version}"),
            ("Issued", utc(cert.issued_at)),
        ],
        width=_LEFT_W,
        label_width=22 * mm,
        full_rows=[("Specification", cert.spec_name)],
    )
    side: list[Flowable] = [
        QrSquare(cert.url, _QR_SIZE),
        Paragraph("Scan to open this module in afm", cs["caption"]),
        Paragraph(markup(cert.url), cs["url"]),
    ]
    block = Table(
        [[[_banner(cert), Spacer(1, 3 * mm), facts], side]], colWidths=[_LEFT_W + 4 * mm, _SIDE_W], hAlign="LEFT"
    )
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
    return [
        Paragraph(markup(TITLE), st.title),
        Paragraph(
            f"No. <b>{markup(cert.number)}</b> · module {markup(cert.module_serial)}"
            f" · issued {markup(utc(cert.issued_at))}",
            st.subtitle,
        ),
        Spacer(1, 4 * mm),
        block,
    ]


def _signer_cell(signer: Signer) -> Paragraph:
    return Paragraph(
        f"<b>{markup(signer.name)}</b> ({markup(signer.username)})<br/>"
        f"{markup(signer.role)} · {markup(signer.kind)} · {markup(utc(signer.signed_at))}",
        _cell_styles()["cell"],
    )


def _checklist_row(c: ChecklistSummary) -> list[Flowable | list[Flowable]]:
    order = {"engineer": 0, "witness": 1}
    return [
        Paragraph(f"<b>{markup(c.template_id)}</b><br/>{markup(c.title)}", _cell_styles()["cell"]),
        _p(c.version),
        _p(f"{c.stage}\nlevel {c.level}"),
        _p(f"{c.answered:,}", "right"),
        _p(f"{c.flagged:,}", "flagged" if c.flagged else "right"),
        [_signer_cell(s) for s in sorted(c.signers, key=lambda s: order.get(s.kind, 2))],
    ]


def _checklists(cert: CommissioningCertificate) -> list[Flowable]:
    header = ("Template", "Version", "Stage / level", "Answered", "Flagged", "Signed by (role · kind · time)")
    rows = [_checklist_row(c) for c in cert.checklists]
    return [heading("Commissioning checklists"), _table(header, rows, (40, 13, 24, 15, 13, 73), right=(3, 4))]


def _validation(cert: CommissioningCertificate) -> list[Flowable]:
    rows = [
        [
            Paragraph(f"<b>{markup(v.step)}</b><br/>{markup(v.title)}", _cell_styles()["cell"]),
            _p(v.kind),
            Paragraph(markup(v.verdict.upper()), _verdict_style(v.verdict)),
            _p(v.summary),
            _p(short_hash(v.result_sha256), "hash"),
        ]
        for v in cert.validation
    ]
    header = ("Step", "Kind", "Verdict", "Summary", "Result SHA-256")
    return [
        heading(f"Hardware validation: {cert.suite_id} version {cert.suite_version}"),
        _table(header, rows, (42, 24, 13, 62, 37)),
        Spacer(1, 1.5 * mm),
        Paragraph("Result hashes are shortened here; the annex gives each in full.", styles().muted),
    ]


def _evidence(cert: CommissioningCertificate) -> list[Flowable]:
    out: list[Flowable] = [heading("Evidence")]
    if not cert.evidence:
        return [*out, Paragraph("No evidence files recorded.", styles().muted)]
    rows = [
        [_p(str(n), "right"), _p(e.label), _p(e.media_type), _p(e.sha256, "hash")]
        for n, e in enumerate(cert.evidence, start=1)
    ]
    return [*out, _table(("#", "Photo", "Media type", "SHA-256"), rows, (7, 58, 22, 91), right=(0,))]


def _ledger(cert: CommissioningCertificate) -> list[Flowable]:
    return [
        KeepTogether(
            [
                heading("Ledger"),
                Paragraph(
                    markup(f"Chain head of module {cert.module_serial}'s ledger when this certificate was issued:"),
                    styles().body,
                ),
                Spacer(1, 1 * mm),
                Paragraph(markup(cert.ledger_head), _cell_styles()["ledger"]),
            ]
        )
    ]


def _statement(cert: CommissioningCertificate) -> list[Flowable]:
    return [KeepTogether([heading("Statement"), Paragraph(markup(closing_statement(cert)), styles().body)])]


def _annex(cert: CommissioningCertificate) -> list[Flowable]:
    rows = [[_p(v.step), _p(v.title), _p(v.result_sha256, "hash")] for v in cert.validation]
    return [
        heading("Annex: validation result hashes"),
        _table(("Step", "Title", "Result SHA-256"), rows, (42, 45, 91)),
    ]


def render_certificate(cert: CommissioningCertificate) -> bytes:
    """The certificate as PDF bytes (A4 portrait). Deterministic: the same model gives the same bytes."""
    story: list[Flowable] = [
        *_opening(cert),
        *_checklists(cert),
        *_validation(cert),
        *_evidence(cert),
        *_ledger(cert),
        *_statement(cert),
        *_annex(cert),
    ]
    return render_pdf(
        story,
        furniture=PageFurniture(
            header_left=f"afm · {TITLE}",
            header_right=f"{cert.number} · module {cert.module_serial}",
            footer_left=f"{TITLE} {cert.number}",
            footer_right=f"issued {utc(cert.issued_at)}",
        ),
        title=f"{TITLE} {cert.number}",
        subject=f"Module {cert.module_serial}: {banner_text(cert)}",
        created_at=cert.issued_at,
    )
