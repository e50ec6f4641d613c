"""The burn-in report PDF, rendered from the pure document model in app/burnin/documents.py.

Page 1 carries what a reader decides on: verdict banner, run facts, QR code to the run, findings and the
per-GPU table. DCGM and Xid summaries follow, then the telemetry plots (temperature, power, SM clock).
Every reason string of the model is printed verbatim, so tests can find it in the extracted text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from app.burnin.documents import BurnInReport, GpuRow, SeriesPoint
from app.documents.pdf import (
    CONTENT_WIDTH,
    HEADER_FILL,
    INK,
    MUTED,
    RULE,
    SANS,
    SANS_BOLD,
    ZEBRA,
    PageFurniture,
    bullets,
    heading,
    hms,
    key_value_table,
    markup,
    qr_code,
    render_pdf,
    safe_text,
    styles,
    utc,
    verdict_colour,
)

# Qualitative palette, one colour per GPU index (tab10 plus six darker hues), so GPU n has the same colour in
# every plot and in the legend.
GPU_PALETTE: tuple[colors.Color, ...] = tuple(
    colors.HexColor(c)
    for c in (
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#ad494a",
        "#637939",
        "#7b4173",
        "#8c6d31",
        "#000000",
    )
)

_QR_SIZE = 27 * mm
_SIDE_W = 38 * mm  # right-hand column of the summary block: QR code and the URL under it
_CHART_H = 60 * mm
_UUID_MAX_PT, _UUID_MIN_PT = 7.0, 5.0
_CELL_PAD = 3.0

# (title, unit, GpuSeries attribute) of the three plots, top to bottom.
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("GPU temperature", "°C", "temperature_c"),
    ("Board power", "W", "power_w"),
    ("SM clock", "MHz", "sm_clock_mhz"),
)


def gpu_colour(index: int) -> colors.Color:
    return GPU_PALETTE[index % len(GPU_PALETTE)]


def render_burnin_report(report: BurnInReport) -> bytes:
    """The report as PDF bytes (A4 portrait). Deterministic: the same model gives the same bytes."""
    verdict = report.verdict.upper()
    return render_pdf(
        _story(report),
        furniture=PageFurniture(
            header_left="afm · GPU burn-in report",
            header_right=f"{report.module_serial} · run {report.run_id} · {verdict}",
            footer_left=f"afm · burn-in run {report.run_id} · {report.module_serial}",
            footer_right=f"generated {utc(report.generated_at)}",
        ),
        title=f"GPU burn-in report {report.module_serial} (run {report.run_id})",
        subject=f"Burn-in verdict {verdict}",
        created_at=report.generated_at,
    )


def _story(report: BurnInReport) -> list[Flowable]:
    st = styles()
    story: list[Flowable] = [
        Paragraph("GPU burn-in report", st.title),
        Paragraph(f"Module <b>{markup(report.module_serial)}</b> · burn-in run {report.run_id}", st.subtitle),
        Spacer(1, 4 * mm),
        _summary_block(report),
        heading("Run-level findings"),
    ]
    if report.reasons:
        story += bullets(report.reasons)
    elif report.verdict == "pass":
        story.append(Paragraph("All acceptance rules met.", st.body))
    else:
        story.append(Paragraph("No run-level findings.", st.muted))

    story.append(heading("Per-GPU results"))
    if report.gpus:
        story.append(_gpu_table(report.gpus))
        story += _gpu_findings(report.gpus)
    else:
        story.append(Paragraph("No GPU telemetry was recorded for this run.", st.muted))

    story.append(heading("DCGM diagnostics"))
    level = "not recorded" if report.dcgm_level is None else str(report.dcgm_level)
    story.append(Paragraph(f"Diagnostic level: {markup(level)}", st.body))
    story += bullets(report.dcgm_summary) or [Paragraph("None recorded.", st.muted)]

    story.append(heading("Xid events"))
    story += bullets(report.xid_summary) or [Paragraph("None recorded.", st.muted)]

    story += _telemetry(report)
    return story


def _summary_block(report: BurnInReport) -> Table:
    """Verdict banner and run facts on the left, the QR code to the run and its URL on the right."""
    st = styles()
    left_w = CONTENT_WIDTH - _SIDE_W - 4 * mm
    facts = key_value_table(
        [
            ("GPU model", report.gpu_model),
            ("DCGM level", "not recorded" if report.dcgm_level is None else str(report.dcgm_level)),
            ("Factory", report.factory),
            ("Station", report.station),
            ("Started", utc(report.started_at)),
            ("Finished", utc(report.finished_at, missing="not finished")),
            ("Duration", hms(report.duration_s)),
            ("Rules version", report.rules_version),
        ],
        width=left_w,
        label_width=21 * mm,
        full_rows=[("Spec", f"{report.spec_code} — {report.spec_name}")],
    )
    url_style = ParagraphStyle("afm-url", parent=st.mono, fontSize=6, leading=7.2, wordWrap="CJK", alignment=TA_CENTER)
    caption = ParagraphStyle("afm-qr-caption", parent=st.label, fontSize=6.5, leading=8, alignment=TA_CENTER)
    side: list[Flowable] = [
        qr_code(report.run_url, _QR_SIZE),
        Paragraph("Scan to open this run in afm", caption),
        Paragraph(markup(report.run_url), url_style),
    ]
    block = Table(
        [[[_verdict_banner(report, left_w), Spacer(1, 3 * mm), facts], side]],
        colWidths=[left_w + 4 * mm, _SIDE_W],
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
    return block


def _verdict_banner(report: BurnInReport, width: float) -> Table:
    st = styles()
    big = ParagraphStyle("afm-verdict", parent=st.body, fontName=SANS_BOLD, fontSize=24, leading=28)
    side = ParagraphStyle("afm-verdict-side", parent=st.body, fontSize=9, leading=12, alignment=TA_RIGHT)
    counts = {v: sum(1 for g in report.gpus if g.verdict == v) for v in ("fail", "warn", "pass")}
    if report.gpus:
        gpu_line = (
            f"{len(report.gpus)} GPUs: {counts['fail']} failed · {counts['warn']} warned · {counts['pass']} passed"
        )
    else:
        gpu_line = "no GPU telemetry"
    run_line = f"{len(report.reasons)} run-level finding{'s' if len(report.reasons) != 1 else ''}"
    banner = Table(
        [
            [
                Paragraph(f'<font color="white">{markup(report.verdict.upper())}</font>', big),
                Paragraph(f'<font color="white">{markup(gpu_line)}<br/>{markup(run_line)}</font>', side),
            ]
        ],
        colWidths=[width * 0.4, width * 0.6],
    )
    banner.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), verdict_colour(report.verdict)),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 10),
                ("RIGHTPADDING", (0, 0), (-1, -1), 10),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return banner


def _number(value: float | None, fmt: Callable[[float], str]) -> str:
    return "—" if value is None or not math.isfinite(value) else fmt(value)


def _gpu_table(gpus: Sequence[GpuRow]) -> Table:
    st = styles()
    headers = ("GPU", "UUID", "Serial", "Samples", "Max temp °C", "Median SM MHz", "Clock vs fleet", "Uncorr. ECC")
    widths = [9 * mm, 0.0, 24 * mm, 14 * mm, 14 * mm, 16 * mm, 15 * mm, 14 * mm, 14 * mm]
    widths[1] = CONTENT_WIDTH - sum(widths)
    # Shrink the monospace UUID until the longest one fits its column on one line, so it stays one token in
    # the text layer; only beyond the minimum size does it wrap (anywhere, CJK-style).
    longest = max((len(g.uuid) for g in gpus), default=1)
    uuid_pt = max(_UUID_MIN_PT, min(_UUID_MAX_PT, (widths[1] - 2 * _CELL_PAD) / (0.6 * max(longest, 1))))
    uuid_style = ParagraphStyle("afm-uuid", parent=st.mono, fontSize=uuid_pt, leading=uuid_pt + 1.5, wordWrap="CJK")

    def head(text: str, right: bool = True) -> Paragraph:
        return Paragraph(markup(text), st.small_bold_right if right else st.small_bold)

    verdict_head = Paragraph("Verdict", ParagraphStyle("afm-th-c", parent=st.small_bold, alignment=TA_CENTER))
    rows: list[list[Any]] = [[head(h, right=i not in (1, 2)) for i, h in enumerate(headers)] + [verdict_head]]
    for g in gpus:
        rows.append(
            [
                Paragraph(str(g.index), st.small_right),
                Paragraph(markup(g.uuid or "—"), uuid_style),
                Paragraph(markup(g.serial or "—"), st.small),
                f"{g.samples:,}",
                _number(g.max_temperature_c, lambda v: f"{v:.0f}"),
                _number(g.median_sm_clock_mhz, lambda v: f"{v:.0f}"),
                _number(g.clock_vs_fleet, lambda v: f"{v * 100:.1f} %"),
                _number(g.ecc_uncorrected, lambda v: f"{v:.0f}"),
                g.verdict.upper(),
            ]
        )
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 1), (-1, -1), SANS, 7.5),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("ALIGN", (3, 1), (7, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, MUTED),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("FONT", (8, 1), (8, -1), SANS_BOLD, 7.5),
        ("TEXTCOLOR", (8, 1), (8, -1), colors.white),
        ("ALIGN", (8, 1), (8, -1), "CENTER"),
    ]
    for row, g in enumerate(gpus, start=1):
        if row % 2 == 0:
            commands.append(("BACKGROUND", (0, row), (7, row), ZEBRA))
        commands.append(("BACKGROUND", (8, row), (8, row), verdict_colour(g.verdict)))
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def _gpu_findings(gpus: Sequence[GpuRow]) -> list[Flowable]:
    """Each GPU's reasons under the table, bullet coloured by that GPU's verdict."""
    st = styles()
    out: list[Flowable] = []
    for g in gpus:
        style = ParagraphStyle(f"afm-gpu-{g.index}", parent=st.bullet, bulletColor=verdict_colour(g.verdict))
        for reason in g.reasons:
            # The verdict engine already names the GPU ("GPU 5 (GPU-…): …"); other sources may not.
            named = reason.startswith((f"GPU {g.index} ", f"GPU {g.index}:"))
            line = reason if named else f"GPU {g.index} ({g.uuid or 'no UUID'}): {reason}"
            out.append(Paragraph(markup(line), style, bulletText="•"))
    if out:
        out.insert(0, Spacer(1, 2.5 * mm))
    return out


# --- telemetry plots -------------------------------------------------------------------------------------


def _nice_axis(lo: float, hi: float, target: int = 5) -> tuple[float, float, float]:
    """(min, max, step) with a 1-2-2.5-5 step covering [lo, hi] in about `target` intervals."""
    if hi - lo <= 1e-9:
        pad = max(abs(hi) * 0.05, 1.0)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step


def _tick_format(step: float) -> Callable[[float], str]:
    decimals = max(0, -math.floor(math.log10(step)))
    if abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:  # 2.5, 0.25: one more digit
        decimals += 1
    return lambda v: f"{v:.{decimals}f}"


def _clean(points: Sequence[SeriesPoint]) -> list[tuple[float, float]]:
    """Plot-ready (t, value) pairs: missing or non-finite samples (None, NaN) are dropped, time-ordered."""
    out = [
        (float(p.t_s), float(p.value))
        for p in points
        if p.t_s is not None and p.value is not None and math.isfinite(p.t_s) and math.isfinite(p.value)
    ]
    return sorted(out)


def _time_axis(t_max_s: float) -> tuple[float, str, tuple[float, float, float]]:
    """Seconds per axis unit, the unit's name and (min, max, step): hours for soaks of 3 h and more, minutes
    down to 3 min, seconds below. Steps are clock-friendly (2 h, 15 min) rather than decimal (2.5 h)."""
    if t_max_s >= 3 * 3600:
        scale, unit, steps = 3600.0, "hours", (0.5, 1, 2, 3, 4, 6, 12, 24, 48, 96)
    elif t_max_s >= 3 * 60:
        scale, unit, steps = 60.0, "minutes", (1, 2, 5, 10, 15, 20, 30, 60, 90, 120)
    else:
        scale, unit, steps = 1.0, "seconds", (1, 2, 5, 10, 15, 20, 30, 60)
    span = max(t_max_s / scale, 1e-6)
    step = next((float(s) for s in steps if span / s <= 8), float(steps[-1]))
    return scale, unit, (0.0, math.ceil(span / step - 1e-9) * step, step)


def _telemetry(report: BurnInReport) -> list[Flowable]:
    st = styles()
    series = sorted(report.series, key=lambda s: s.index)
    cleaned = {(s.index, attr): _clean(getattr(s, attr)) for s in series for _, _, attr in _METRICS}
    # Start the section on a fresh page unless the heading, legend and first plot fit here.
    out: list[Flowable] = [CondPageBreak(_CHART_H + 30 * mm)]
    if not any(cleaned.values()):
        return [*out, heading("Telemetry"), Paragraph("No telemetry samples were recorded.", st.muted)]
    t_max = max(t for pts in cleaned.values() for t, _ in pts)
    scale, unit, x_axis = _time_axis(t_max)
    indices = [s.index for s in series if any(cleaned[(s.index, a)] for _, _, a in _METRICS)]
    charts = [
        _chart(f"{title} ({u})", [(s.index, cleaned[(s.index, attr)]) for s in series], scale, unit, x_axis)
        for title, u, attr in _METRICS
    ]
    out.append(KeepTogether([heading("Telemetry"), _legend(indices), Spacer(1, 2 * mm), charts[0]]))
    out += [Spacer(1, 3 * mm), charts[1], Spacer(1, 3 * mm), charts[2]]
    return out


def _legend(indices: Sequence[int], per_row: int = 8) -> Drawing:
    """'GPU n' with its line colour, eight to a row (two rows for a 16-GPU module)."""
    col_w, row_h = CONTENT_WIDTH / per_row, 11.0
    rows = max(1, math.ceil(len(indices) / per_row))
    drawing = Drawing(CONTENT_WIDTH, rows * row_h)
    for n, index in enumerate(indices):
        x, y = (n % per_row) * col_w, (rows - 1 - n // per_row) * row_h + 3
        drawing.add(Line(x, y + 2.5, x + 14, y + 2.5, strokeColor=gpu_colour(index), strokeWidth=2))
        drawing.add(String(x + 18, y, f"GPU {index}", fontName=SANS, fontSize=7.5, fillColor=INK))
    return drawing


def _chart(
    title: str,
    lines: Sequence[tuple[int, list[tuple[float, float]]]],
    scale: float,
    unit: str,
    x_axis: tuple[float, float, float],
) -> Drawing:
    """One metric over time, one line per GPU; a framed 'no samples' note when the metric is empty."""
    width, height = CONTENT_WIDTH, _CHART_H
    left, bottom, top = 34.0, 26.0, 16.0
    drawing = Drawing(width, height)
    drawing.add(String(0, height - 10, safe_text(title), fontName=SANS_BOLD, fontSize=9, fillColor=INK))
    present = [(i, [(t / scale, v) for t, v in pts]) for i, pts in lines if pts]
    plot_w, plot_h = width - left - 6, height - bottom - top
    if not present:
        drawing.add(Rect(left, bottom, plot_w, plot_h, strokeColor=RULE, fillColor=None, strokeWidth=0.5))
        drawing.add(
            String(
                left + plot_w / 2,
                bottom + plot_h / 2,
                "No samples recorded",
                fontName=SANS,
                fontSize=8,
                fillColor=MUTED,
                textAnchor="middle",
            )
        )
        return drawing
    values = [v for _, pts in present for _, v in pts]
    y_min, y_max, y_step = _nice_axis(min(values), max(values))
    x_min, x_max, x_step = x_axis

    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = left, bottom, plot_w, plot_h
    plot.data = [pts for _, pts in present]
    plot.strokeColor = RULE
    plot.strokeWidth = 0.5
    for n, (index, pts) in enumerate(present):
        plot.lines[n].strokeColor = gpu_colour(index)
        plot.lines[n].strokeWidth = 0.8
        if len(pts) == 1:  # a lone sample has no line to draw; show it as a dot
            plot.lines[n].symbol = makeMarker("FilledCircle", size=2.5, fillColor=gpu_colour(index))
    for axis, (lo, hi, step) in ((plot.xValueAxis, (x_min, x_max, x_step)), (plot.yValueAxis, (y_min, y_max, y_step))):
        axis.valueMin, axis.valueMax, axis.valueStep = lo, hi, step
        axis.labelTextFormat = _tick_format(step)
        axis.labels.fontName = SANS
        axis.labels.fontSize = 7
        axis.labels.fillColor = MUTED
        axis.strokeColor = MUTED
        axis.strokeWidth = 0.5
        axis.visibleGrid = True
        axis.gridStrokeColor = colors.HexColor("#e4e7eb")
        axis.gridStrokeWidth = 0.3
    plot.xValueAxis.tickDown = 2
    plot.yValueAxis.tickLeft = 2
    plot.xValueAxis.labels.dy = -2
    drawing.add(plot)
    drawing.add(
        String(
            left + plot_w / 2,
            3,
            f"time since start ({unit})",
            fontName=SANS,
            fontSize=7,
            fillColor=MUTED,
            textAnchor="middle",
        )
    )
    return drawing
