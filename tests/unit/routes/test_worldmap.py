"""The offline world map: Natural Earth shapes decoded from TopoJSON, routes drawn without streaks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.routes import worldmap

SVG = "{http://www.w3.org/2000/svg}"


def test_countries_decode_with_names_and_iso_ids() -> None:
    shapes = worldmap.countries()
    assert len(shapes) == 176  # the 1:110m set without Antarctica
    names = {name for _, name, _ in shapes}
    assert {"Egypt", "Panama", "Netherlands", "China", "Russia", "Fiji"} <= names  # (Singapore is below 1:110m)
    assert all(d.startswith("M") and d.endswith("Z") for _, _, d in shapes)
    iso = {name: code for code, name, _ in shapes}
    assert iso["Egypt"] == "818" and iso["Netherlands"] == "528"


def test_rings_across_the_antimeridian_stay_on_the_map() -> None:
    russia = next(d for _, name, d in worldmap.countries() if name == "Russia")
    for ring in russia.split("M")[1:]:
        xs = [float(p.split(",")[0]) for p in ring.rstrip("Z").split("L")]
        assert max(xs) - min(xs) < worldmap.WIDTH  # no ring spans the whole width (a streak)


def test_render_routes_places_and_highlights() -> None:
    line = {"type": "LineString", "coordinates": [[140.0, 35.0], [179.0, 40.0], [-170.0, 45.0], [-125.0, 37.0]]}
    best = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[4.1, 51.9], [103.8, 1.3]]}}
    svg = worldmap.render([best, line], [("Rotterdam", 4.1, 51.9)], title="NLRTM → SGSIN", highlight=["Egypt"])
    root = ET.fromstring(svg)  # well-formed
    assert root.find(f"{SVG}title").text == "NLRTM → SGSIN"
    routes = root.findall(f".//{SVG}g[@class='route']")
    assert [r.get("data-route") for r in routes] == ["2", "1"]  # the best drawn last, on top
    assert len(routes[0].findall(f"{SVG}polyline")) == 2  # split where it crosses 180°
    assert root.find(f".//{SVG}path[@fill='#fde2e2']/{SVG}title").text == "Egypt"
    assert "Rotterdam" in svg
