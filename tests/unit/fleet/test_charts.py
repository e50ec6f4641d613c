"""Dashboard charts: well-formed, titled, accessible SVG, the same bytes every time."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable

import matplotlib as mpl
import pandas as pd
import pytest

from app.core.definitions import load_lifecycle
from app.fleet import charts, reports
from tests.unit.fleet import test_reports as data

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    frames = {
        "events": pd.concat([data.FACTORY_EVENTS, data.SITE_EVENTS]),
        "modules": data.MODULES,
        "sites": data.SITES,
        "burnin": data.BURNIN,
        "legs": data.LEGS,
        "checklists": data.CHECKLISTS,
    }
    return reports.dashboard(frames)


@pytest.fixture(scope="module")
def rendered(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    return charts.render_all(tables)


def _check_svg(svg: str, title: str) -> ET.Element:
    assert svg.startswith("<svg")  # no XML prolog or DOCTYPE: it inlines into HTML
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-label") == title
    first = root[0]
    assert first.tag == f"{SVG}title" and first.text == title
    assert root.get("viewBox")
    return root


def test_every_chart_is_valid_titled_svg(rendered: dict[str, str]) -> None:
    assert list(rendered) == [
        "modules_by_state",
        "modules_by_country",
        "site_utilisation",
        "cycle_times",
        "burnin_first_pass_yield",
        "transit_times",
    ]
    for name, svg in rendered.items():
        _check_svg(svg, reports.TABLES[name])
        assert "dc:date" not in svg  # no timestamp in the metadata


def test_charts_are_deterministic(tables: dict[str, pd.DataFrame], rendered: dict[str, str]) -> None:
    assert charts.render_all(tables) == rendered


def test_charts_never_share_an_id(rendered: dict[str, str]) -> None:
    # inlined side by side on one page, a shared clip-path id would clip one chart with another's box
    seen: dict[str, str] = {}
    for name, svg in rendered.items():
        ids = re.findall(r'\bid="([^"]+)"', svg)
        refs = re.findall(r'(?:url\(#|href="#)([^")]+)', svg)
        assert set(refs) <= set(ids), name  # every reference still resolves
        for element_id in set(ids):
            assert element_id not in seen, (element_id, name, seen.get(element_id))
            seen[element_id] = name


def test_text_stays_text_with_axis_labels(rendered: dict[str, str]) -> None:
    cycle = rendered["cycle_times"]
    for text in ("Factory cycle times", "hours", "stage", "Assembling (n=4)", "median", "90th percentile"):
        assert text in cycle, text
    assert "first-pass yield (%)" in rendered["burnin_first_pass_yield"]
    assert "66.7 % (2/3)" in rendered["burnin_first_pass_yield"]
    assert "sea USLAX → NLRTM (n=1)" in rendered["transit_times"]
    assert "% of capacity" in rendered["site_utilisation"]


def test_state_bars_use_the_lifecycle_colours(rendered: dict[str, str]) -> None:
    svg = rendered["modules_by_state"]
    lifecycle = load_lifecycle()
    for state in ("in_service", "on_hold", "packed"):
        assert f"fill: {lifecycle.state(state).color}" in svg
    assert "Burn-in passed" in svg and "modules" in svg


EMPTY_CHARTS: list[tuple[str, Callable[[pd.DataFrame], str]]] = [
    (name, chart) for name, chart in charts.CHARTS.items() if name != "modules_by_state"
]


@pytest.mark.parametrize(("name", "chart"), EMPTY_CHARTS, ids=[n for n, _ in EMPTY_CHARTS])
def test_empty_tables_draw_a_titled_no_data_chart(name: str, chart: Callable[[pd.DataFrame], str]) -> None:
    table = reports.dashboard(reports.empty_frames())[name]
    svg = chart(table)
    _check_svg(svg, reports.TABLES[name])
    assert charts.NO_DATA in svg


def test_a_site_name_in_another_script_renders_without_warnings() -> None:
    # pytest turns warnings into errors: a glyph DejaVu lacks must not fail the page
    sites = data.SITES.assign(name=["東京データセンター", "Amsterdam DC", "Empty lot"])
    svg = charts.utilisation_chart(reports.site_utilisation(sites))
    assert "東京" in svg


def test_rendering_leaves_rcparams_and_pyplot_alone(tables: dict[str, pd.DataFrame]) -> None:
    before = dict(mpl.rcParams)
    charts.render_all(tables)
    assert dict(mpl.rcParams) == before
    code = (
        "import sys; from app.fleet import charts, reports; "
        "charts.render_all(reports.dashboard(reports.empty_frames())); "
        "print('matplotlib.pyplot' in sys.modules, __import__('matplotlib').get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split()[0] == "False"  # pyplot never imported, so no backend was chosen for anyone


# --- the map --------------------------------------------------------------------------------------


def test_map_classes() -> None:
    assert charts.map_classes(0) == []
    assert charts.map_classes(3) == [(1, 1), (2, 2), (3, 3)]
    assert charts.map_classes(6) == [(1, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
    assert charts.map_classes(100) == [(1, 20), (21, 40), (41, 60), (61, 80), (81, 100)]


def test_country_map_shades_countries_by_modules(rendered: dict[str, str]) -> None:
    root = _check_svg(rendered["modules_by_country"], "Modules by country")
    shaded = {p.get("data-country"): p for p in root.iter(f"{SVG}path") if p.get("data-country")}
    assert set(shaded) == {"NL", "US", "DE", "TW"}  # SG is below the atlas's scale: a dot
    assert shaded["NL"].get("data-value") == "3" and shaded["NL"].get("fill") == charts.MAP_CLASSES[2]
    assert shaded["DE"].get("fill") == charts.MAP_CLASSES[0]
    assert shaded["NL"].find(f"{SVG}title").text == "Netherlands: 3 modules (1 inbound, 2 at site)"
    dot = root.find(f".//{SVG}circle[@data-country='SG']")
    assert dot is not None and dot.get("data-value") == "2"
    assert dot.find(f"{SVG}title").text == "Singapore: 2 modules (1 at site, 1 on hold)"
    assert "1–" not in rendered["modules_by_country"]  # 3 at most: one class per value, legend 1 2 3


def test_choropleth_by_name_and_countries_it_cannot_place() -> None:
    svg = charts.choropleth({"XK": 4, "VA": 1, "us": 12}, title="Test map")
    root = _check_svg(svg, "Test map")
    kosovo = root.find(f".//{SVG}path[@data-country='XK']")  # the atlas has no ISO id for Kosovo
    assert kosovo is not None and kosovo.get("data-value") == "4"
    assert root.find(f".//{SVG}path[@data-country='US']").get("fill") == charts.MAP_CLASSES[4]
    assert "not on the map: Holy See 1" in svg
    assert "1–3" in svg and "11–12" in svg  # equal-width classes for 12: 1–3, 4–5, 6–8, 9–10, 11–12
