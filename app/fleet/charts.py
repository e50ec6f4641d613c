"""Fleet dashboard charts, drawn on the server as SVG strings from the report tables (app.fleet.reports).

matplotlib without pyplot: each chart is a `matplotlib.figure.Figure` saved as SVG, so no global backend
is chosen (pyplot's state machine, and `matplotlib.use`, would be process-wide) and no GUI toolkit is
touched. The modules-per-country map is plain SVG built on app.routes.worldmap's shapes and projection.

Deterministic: the SVG ids are hashed with a fixed salt (`svg.hashsalt`), the date is left out of the
metadata, and text stays text (`svg.fonttype = none`): smaller, searchable, and the browser draws it
with the page's fonts. Every id is then prefixed with the chart's name, so charts inlined side by side
never share one (matplotlib numbers its groups patch_1, text_2... in every figure, and a clash of clip-path
ids would clip one chart with another's box). rcParams are global, so rendering holds a lock: two
threads never see each other's settings.

Each SVG is returned without its XML prolog, ready to inline in a page, with role="img", an aria-label
and a `<title>`; it keeps its viewBox, so CSS `width: 100%; height: auto` scales it. Figures are sized for
a 600 px column (450 pt) with 9 pt text, about 12 px on screen.
"""

from __future__ import annotations

import io
import math
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Final
from xml.sax.saxutils import escape, quoteattr

import iso3166
import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from app.core.definitions import Lifecycle, load_lifecycle
from app.fleet.reports import TABLES
from app.routes import worldmap

WIDTH_IN: Final = 6.25  # 450 pt: 600 CSS px at the SVG's 4/3 px per pt
FONT_PT: Final = 9.0
INK: Final = "#111827"
MUTED: Final = "#6b7280"
BLUE: Final = "#2563eb"
ORANGE: Final = "#ea580c"
NO_DATA: Final = "No data yet"

_RC: Final = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # the metrics used for layout; bundled with matplotlib
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT + 2,
    "axes.titleweight": "bold",
    "axes.labelsize": FONT_PT,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.fontsize": FONT_PT - 0.5,
    "legend.frameon": False,
}
_LOCK = threading.Lock()


# --- plumbing ---------------------------------------------------------------------------------


def _figure(rows: float) -> tuple[Figure, Axes]:
    """A figure 600 px wide, tall enough for `rows` horizontal bars."""
    fig = Figure(figsize=(WIDTH_IN, max(2.4, 1.1 + 0.32 * rows)), layout="constrained")
    return fig, fig.add_subplot()


_ID = re.compile(r'(\bid="|url\(#|href="#)([^"()]+)')


def _accessible(svg: str, title: str, prefix: str) -> str:
    """Drop the XML prolog and DOCTYPE (not allowed inline in HTML), add role and aria-label, and a
    <title> unless matplotlib already wrote one from the Title metadata (recent versions do)."""
    start = svg.index("<svg")
    head_end = svg.index(">", start)
    body = _ID.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg[head_end + 1 :])
    if not body.lstrip().startswith("<title>"):
        body = f"\n<title>{escape(title)}</title>{body}"
    return f'{svg[start:head_end]} role="img" aria-label={quoteattr(title)}>{body}'.strip() + "\n"


def _render(name: str, title: str, draw: Callable[[], Figure]) -> str:
    with _LOCK, mpl.rc_context({**_RC, "svg.hashsalt": f"afm-fleet-{name}"}), warnings.catch_warnings():
        # A site name in a script DejaVu lacks only mis-measures its width; the browser still draws it.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        fig = draw()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Title": title})
    return _accessible(out.getvalue(), title, prefix=name)


def _short(text: object, width: int = 34) -> str:
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def _title(fig: Figure, title: str) -> None:
    """The chart's title at the figure's top left, above the tick labels (an axes title would start
    where the bars do)."""
    fig.suptitle(title, x=0.01, ha="left", fontsize=FONT_PT + 2, fontweight="bold", color=INK)


def _legend(fig: Figure) -> None:
    """The legend under the plot, where it never covers a bar."""
    fig.legend(loc="outside lower center", ncols=2)


def _no_data(fig: Figure, ax: Axes, title: str) -> None:
    _title(fig, title)
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", color=MUTED, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _bars(fig: Figure, ax: Axes, labels: Sequence[str], title: str, xlabel: str, ylabel: str) -> np.ndarray:
    """Set up a horizontal bar chart, first row on top; returns the bar positions."""
    y = np.arange(len(labels), dtype=float)
    ax.set_yticks(y, [_short(label) for label in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)
    _title(fig, title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    return y


# --- charts -----------------------------------------------------------------------------------


def state_chart(table: pd.DataFrame, lifecycle: Lifecycle | None = None, title: str | None = None) -> str:
    """Modules per state (reports.modules_by_state), each bar in its state's colour from the lifecycle."""
    title = title or TABLES["modules_by_state"]
    lc = lifecycle or load_lifecycle()
    colours = {s.id: s.color for s in lc.states}

    def draw() -> Figure:
        fig, ax = _figure(len(table))
        if table.empty:
            _no_data(fig, ax, title)
            return fig
        y = _bars(fig, ax, table["label"].tolist(), title, "modules", "state")
        values = table["modules"].to_numpy(dtype=float)
        bars = ax.barh(
            y, values, color=[colours.get(s, "#9ca3af") for s in table["state"]], edgecolor="#475569", linewidth=0.4
        )
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], padding=3, fontsize=FONT_PT - 1)
        ax.set_xlim(0, max(1.0, values.max()) * 1.12)
        ax.xaxis.get_major_locator().set_params(integer=True)
        return fig

    return _render("modules_by_state", title, draw)


def cycle_time_chart(table: pd.DataFrame, title: str | None = None) -> str:
    """Median stage durations (reports.cycle_times) as bars, with a whisker out to the 90th percentile."""
    title = title or TABLES["cycle_times"]

    def draw() -> Figure:
        fig, ax = _figure(len(table))
        if table.empty:
            _no_data(fig, ax, title)
            return fig
        labels = [f"{label} (n={n})" for label, n in zip(table["label"], table["visits"], strict=True)]
        y = _bars(fig, ax, labels, title, "hours", "stage")
        median = table["median_h"].to_numpy(dtype=float)
        p90 = table["p90_h"].to_numpy(dtype=float)
        ax.barh(y, median, color=BLUE, height=0.6, label="median")
        ax.errorbar(
            median,
            y,
            xerr=[np.zeros_like(median), np.maximum(p90 - median, 0.0)],
            fmt="none",
            ecolor=INK,
            elinewidth=1.0,
            capsize=3,
            label="90th percentile",
        )
        ax.set_xlim(0, max(1.0, float(np.nanmax(p90))) * 1.08)
        _legend(fig)
        return fig

    return _render("cycle_times", title, draw)


def yield_chart(table: pd.DataFrame, title: str | None = None) -> str:
    """First-pass yield per spec and GPU model (reports.burnin_first_pass_yield), 0–100 %."""
    title = title or TABLES["burnin_first_pass_yield"]

    def draw() -> Figure:
        fig, ax = _figure(len(table))
        if table.empty:
            _no_data(fig, ax, title)
            return fig
        labels = [f"{spec} · {gpu}" for spec, gpu in zip(table["spec"], table["gpu_model"], strict=True)]
        y = _bars(fig, ax, labels, title, "first-pass yield (%)", "spec · GPU model")
        values = table["yield_pct"].to_numpy(dtype=float)
        bars = ax.barh(y, values, color="#16a34a", height=0.6)
        ax.bar_label(
            bars,
            labels=[
                f"{v:.1f} % ({p}/{m})" for v, p, m in zip(values, table["first_pass"], table["modules"], strict=True)
            ],
            padding=3,
            fontsize=FONT_PT - 1,
        )
        ax.set_xlim(0, 118)  # room for the labels past 100 %
        ax.set_xticks([0, 25, 50, 75, 100])
        return fig

    return _render("burnin_first_pass_yield", title, draw)


def transit_chart(table: pd.DataFrame, top: int = 12, title: str | None = None) -> str:
    """Planned vs actual median leg time per lane (reports.transit_times), the `top` busiest lanes."""
    title = title or TABLES["transit_times"]
    shown = table.head(top)

    def draw() -> Figure:
        fig, ax = _figure(len(shown) * 1.4)
        if shown.empty:
            _no_data(fig, ax, title)
            return fig
        labels = [
            f"{mode} {origin} → {dest} (n={n})"
            for mode, origin, dest, n in zip(
                shown["mode"], shown["origin"], shown["destination"], shown["legs"], strict=True
            )
        ]
        y = _bars(fig, ax, labels, title, "hours (median)", "lane")
        ax.barh(y - 0.2, shown["planned_median_h"].to_numpy(dtype=float), height=0.38, color="#94a3b8", label="planned")
        ax.barh(y + 0.2, shown["actual_median_h"].to_numpy(dtype=float), height=0.38, color=ORANGE, label="actual")
        _legend(fig)
        return fig

    return _render("transit_times", title, draw)


def utilisation_chart(table: pd.DataFrame, title: str | None = None) -> str:
    """Slots and power used per site in % of capacity (reports.site_utilisation), with the 100 % line."""
    title = title or TABLES["site_utilisation"]

    def draw() -> Figure:
        fig, ax = _figure(len(table) * 1.4)
        if table.empty:
            _no_data(fig, ax, title)
            return fig
        labels = [f"{site} {_short(name, 22)}" for site, name in zip(table["site"], table["name"], strict=True)]
        y = _bars(fig, ax, labels, title, "% of capacity", "site")
        slots = np.nan_to_num(table["slots_pct"].to_numpy(dtype=float))  # no capacity: drawn as 0
        power = np.nan_to_num(table["power_pct"].to_numpy(dtype=float))
        ax.barh(y - 0.2, slots, height=0.38, color=BLUE, label="module slots")
        ax.barh(y + 0.2, power, height=0.38, color="#f59e0b", label="power")
        ax.axvline(100.0, color="#dc2626", linewidth=1.0, linestyle="--")
        ax.set_xlim(0, max(110.0, float(max(slots.max(), power.max())) * 1.05))
        _legend(fig)
        return fig

    return _render("site_utilisation", title, draw)


# --- modules per country: a choropleth on the offline world map ---------------------------------

# Light to dark blue; the lightest still stands out from land without modules, on a near-white sea.
MAP_CLASSES: Final = ("#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
MAP_EMPTY: Final = "#e5e7eb"
MAP_SEA: Final = "#f8fafc"
# Countries below the 1:110m atlas's scale but likely to host a site: drawn as dots (lon, lat).
SMALL_COUNTRIES: Final[dict[str, tuple[float, float]]] = {
    "SG": (103.82, 1.35),
    "HK": (114.17, 22.32),
    "MO": (113.55, 22.19),
    "BH": (50.55, 26.07),
    "MT": (14.45, 35.90),
    "MC": (7.42, 43.74),
    "LI": (9.55, 47.16),
    "AD": (1.52, 42.55),
    "SM": (12.46, 43.94),
    "MU": (57.55, -20.30),
    "MV": (73.51, 4.17),
    "BB": (-59.55, 13.19),
    "BM": (-64.75, 32.30),
    "IM": (-4.55, 54.23),
    "JE": (-2.13, 49.21),
    "GI": (-5.35, 36.14),
}
_PAD_TOP, _PAD_BOTTOM = 44.0, 56.0


def map_classes(maximum: int) -> list[tuple[int, int]]:
    """Up to five (low, high) classes covering 1..maximum: one per value up to 5, else equal-width steps
    rounded up (1–2, 3, 4, 5, 6 for 6). Equal widths keep a legend readable as numbers."""
    if maximum <= 0:
        return []
    if maximum <= len(MAP_CLASSES):
        return [(v, v) for v in range(1, maximum + 1)]
    highs = [math.ceil(maximum * k / len(MAP_CLASSES)) for k in range(1, len(MAP_CLASSES) + 1)]
    return [(1 if i == 0 else highs[i - 1] + 1, high) for i, high in enumerate(highs)]


def _numeric(alpha2: str) -> str | None:
    country = iso3166.countries_by_alpha2.get(str(alpha2).upper())
    return country.numeric if country else None


def choropleth(
    values: Mapping[str, int], *, title: str, details: Mapping[str, str] | None = None, unit: str = "modules"
) -> str:
    """A world map with each country (ISO alpha-2 key) shaded by its value, in MAP_CLASSES; countries too
    small for the atlas are dots when SMALL_COUNTRIES knows where, else listed under the legend. Each
    shape's <title> says name, value and `details[code]`. Pure SVG, no matplotlib: the shapes are
    worldmap's, already projected paths."""
    counts = {str(k).upper(): int(v) for k, v in values.items() if v and int(v) > 0}
    classes = map_classes(max(counts.values(), default=0))

    def fill(v: int) -> str:
        return next(MAP_CLASSES[i] for i, (_, high) in enumerate(classes) if v <= high)

    def label(code: str, name: str) -> str:
        v = counts[code]
        extra = f" ({details[code]})" if details and details.get(code) else ""
        return f"{name}: {v} {unit}{extra}"

    shapes = worldmap.countries()
    # The atlas keys shapes by ISO numeric id; the few without one (Kosovo, N. Cyprus) by name only.
    shape_of: dict[str, str] = {}  # atlas name -> alpha-2
    for code in sorted(counts):
        country = iso3166.countries_by_alpha2.get(code)
        if country is None:
            continue
        for iso, name, _ in shapes:
            if iso == country.numeric or (not iso and name in (country.name, country.apolitical_name)):
                shape_of[name] = code
                break
    height = worldmap.HEIGHT + _PAD_TOP + _PAD_BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {worldmap.WIDTH:.0f} {height:.0f}" role="img"'
        f' aria-label={quoteattr(title)} class="fleet-map" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{worldmap.WIDTH:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="8" y="30" font-size="24" font-weight="bold" fill="{INK}">{escape(title)}</text>',
        f'<g transform="translate(0 {_PAD_TOP:.0f})">',
        f'<rect width="{worldmap.WIDTH:.0f}" height="{worldmap.HEIGHT:.0f}" fill="{MAP_SEA}"/>',
        f'<g class="countries" fill="{MAP_EMPTY}" stroke="#ffffff" stroke-width="0.4">',
    ]
    for iso, name, d in shapes:
        code = shape_of.get(name)
        if code is None:
            out.append(f'<path d="{d}" data-iso="{iso}"><title>{escape(name)}</title></path>')
            continue
        out.append(
            f'<path d="{d}" data-iso="{iso}" data-country="{code}" data-value="{counts[code]}"'
            f' fill="{fill(counts[code])}"><title>{escape(label(code, name))}</title></path>'
        )
    out.append("</g>")
    unplaced: list[str] = []
    for code in sorted(set(counts) - set(shape_of.values())):
        country = iso3166.countries_by_alpha2.get(code)
        name = country.apolitical_name if country else code
        if code in SMALL_COUNTRIES:
            x, y = worldmap.project(*SMALL_COUNTRIES[code])
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill(counts[code])}" stroke="{INK}"'
                f' stroke-width="1" data-country="{code}" data-value="{counts[code]}">'
                f"<title>{escape(label(code, name))}</title></circle>"
            )
        else:
            unplaced.append(f"{name} {counts[code]}")
    out.append("</g>")
    y0 = _PAD_TOP + worldmap.HEIGHT + 12
    out.append(f'<g class="legend" font-size="20" fill="{INK}">')
    if not classes:
        out.append(f'<text x="8" y="{y0 + 18:.0f}" fill="{MUTED}">{NO_DATA}</text>')
    else:
        out.append(f'<text x="8" y="{y0 + 18:.0f}">{escape(unit)}:</text>')
        x = 8 + 12 * len(unit) + 16
        for i, (low, high) in enumerate(classes):
            text = f"{low}" if low == high else f"{low}–{high}"
            out.append(
                f'<rect x="{x:.0f}" y="{y0 + 2:.0f}" width="22" height="20" fill="{MAP_CLASSES[i]}" stroke="{MUTED}"'
                f' stroke-width="0.5"/><text x="{x + 28:.0f}" y="{y0 + 18:.0f}">{text}</text>'
            )
            x += 28 + 12 * len(text) + 22
        if unplaced:
            note = "not on the map: " + ", ".join(unplaced)
            out.append(f'<text x="{x + 10:.0f}" y="{y0 + 18:.0f}" fill="{MUTED}">{escape(_short(note, 60))}</text>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


_PHASE_WORDS: Final = {"at_factory": "at factory", "in_transit": "inbound", "at_site": "at site", "on_hold": "on hold"}


def country_map(table: pd.DataFrame, title: str | None = None) -> str:
    """Modules per country (reports.modules_by_country) as a choropleth; each country's tooltip breaks
    its count down by phase."""
    title = title or TABLES["modules_by_country"]
    values: dict[str, int] = {}
    details: dict[str, str] = {}
    for row in table.to_dict("records"):
        code = str(row["country"])
        values[code] = int(row["modules"])
        details[code] = ", ".join(f"{int(row[c])} {w}" for c, w in _PHASE_WORDS.items() if row.get(c))
    return choropleth(values, title=title, details=details)


# --- all of them ------------------------------------------------------------------------------

CHARTS: Final[dict[str, Callable[[pd.DataFrame], str]]] = {
    "modules_by_state": state_chart,
    "modules_by_country": country_map,
    "site_utilisation": utilisation_chart,
    "cycle_times": cycle_time_chart,
    "burnin_first_pass_yield": yield_chart,
    "transit_times": transit_chart,
}


def render_all(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """The SVG chart of every table that has one (keys as reports.TABLES; failure_reasons, modules_by_site
    and commissioning_durations are tables only)."""
    return {name: chart(tables[name]) for name, chart in CHARTS.items() if name in tables}
