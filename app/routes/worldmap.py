"""A world map drawn offline as SVG: Natural Earth country shapes (1:110m, from the world-atlas package's
TopoJSON, shipped in fixtures/reference/world-atlas) in an equirectangular projection, with routes and
places on top. No tile server: the planner page works on a network that reaches nothing outside.

TopoJSON stores shared borders once as quantised, delta-encoded arcs; decoding them is a few lines, so no
GIS library is needed for a map this coarse.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from app.core.config import PROJECT_ROOT

ATLAS = PROJECT_ROOT / "fixtures" / "reference" / "world-atlas" / "countries-110m.json"
WIDTH = 1000.0
# Latitudes shown: Antarctica and the far north carry no lanes worth the space.
TOP, BOTTOM = 84.0, -60.0
HEIGHT = WIDTH * (TOP - BOTTOM) / 360.0
ANTARCTICA = "010"  # ISO 3166 numeric
ROUTE_COLOURS = ("#1f4e79", "#c2410c", "#15803d", "#7c3aed", "#be123c")

Point = tuple[float, float]  # (lon, lat)


def project(lon: float, lat: float) -> tuple[float, float]:
    """Equirectangular: x from longitude, y from latitude (the far north runs off the top, clipped)."""
    return (lon + 180.0) / 360.0 * WIDTH, (TOP - lat) / (TOP - BOTTOM) * HEIGHT


def _decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        x = y = 0
        points: list[Point] = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def _ring(arcs: list[list[Point]], indexes: Sequence[int]) -> list[Point]:
    ring: list[Point] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]  # a negative index is the arc reversed
        ring.extend(arc[1:] if ring else arc)
    return ring


def _unwrapped(ring: list[Point]) -> list[list[Point]]:
    """A ring that crosses the antimeridian (Russia, Fiji) made continuous, plus its copy shifted by 360°
    so that the part past the map's edge shows at the other edge (the SVG clips both)."""
    out: list[Point] = []
    shift = 0.0
    for i, (lon, lat) in enumerate(ring):
        if i and abs(lon + shift - out[-1][0]) > 180:
            shift += 360.0 if out[-1][0] > lon + shift else -360.0
        out.append((lon + shift, lat))
    if all(-180.0 <= lon <= 180.0 for lon, _ in out):
        return [out]
    offset = -360.0 if max(lon for lon, _ in out) > 180.0 else 360.0
    return [out, [(lon + offset, lat) for lon, lat in out]]


def _path(rings: Iterable[list[Point]]) -> str:
    parts: list[str] = []
    for ring in rings:
        for piece in _unwrapped(ring):
            xy = [(x, y) for x, y in (project(lon, lat) for lon, lat in piece)]
            if len(xy) < 3:
                continue
            parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "Z")
    return "".join(parts)


@functools.cache
def countries(path: Path = ATLAS) -> tuple[tuple[str, str, str], ...]:
    """(ISO 3166 numeric id, name, SVG path data) for every country, decoded once per process."""
    topology = json.loads(path.read_text(encoding="utf-8"))
    arcs = _decode_arcs(topology)
    shapes: list[tuple[str, str, str]] = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        if geometry.get("id") == ANTARCTICA:
            continue  # below the band shown; no lane ends there
        kind = geometry.get("type")
        if kind == "Polygon":
            polygons = [geometry["arcs"]]
        elif kind == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        rings = [_ring(arcs, ring) for polygon in polygons for ring in polygon]
        shapes.append((str(geometry.get("id", "")), geometry["properties"]["name"], _path(rings)))
    return tuple(shapes)


def _line_parts(coordinates: Sequence[Sequence[float]]) -> list[list[tuple[float, float]]]:
    """Split a lon/lat line where it crosses the antimeridian, so it does not streak across the map."""
    parts: list[list[tuple[float, float]]] = [[]]
    previous: float | None = None
    for point in coordinates:
        lon = (point[0] + 180.0) % 360.0 - 180.0  # lines may be unwrapped past ±180 to stay continuous
        if previous is not None and abs(lon - previous) > 180:
            parts.append([])
        parts[-1].append(project(lon, point[1]))
        previous = lon
    return [p for p in parts if len(p) >= 2]


def _lines(geometry: dict[str, Any]) -> list[Sequence[Sequence[float]]]:
    if geometry.get("type") == "LineString":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiLineString":
        return list(geometry["coordinates"])
    if geometry.get("type") == "GeometryCollection":
        return [line for g in geometry["geometries"] for line in _lines(g)]
    if geometry.get("type") == "Feature":
        return _lines(geometry["geometry"])
    if geometry.get("type") == "FeatureCollection":
        return [line for f in geometry["features"] for line in _lines(f)]
    return []


def render(
    routes: Sequence[dict[str, Any]] = (),
    places: Sequence[tuple[str, float, float]] = (),
    *,
    title: str = "Routes",
    highlight: Iterable[str] = (),
) -> str:
    """The map as an SVG document: countries, then each route's GeoJSON geometry in its own colour (the
    first, the best, drawn on top), then labelled places (name, lon, lat). `highlight` names countries
    (by their Natural Earth name) to tint, e.g. the ones a route avoids."""
    tinted = set(highlight)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img"'
        f' aria-label="{escape(title)}" class="worldmap">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH:.0f}" height="{HEIGHT:.0f}" fill="#eaf2f8"/>',
        '<g class="countries" fill="#d9dde3" stroke="#ffffff" stroke-width="0.4">',
    ]
    for iso, name, d in countries():
        fill = ' fill="#fde2e2"' if name in tinted else ""
        out.append(f'<path d="{d}" data-iso="{iso}"{fill}><title>{escape(name)}</title></path>')
    out.append("</g>")
    for i in reversed(range(len(routes))):
        colour = ROUTE_COLOURS[i % len(ROUTE_COLOURS)]
        width = 2.4 if i == 0 else 1.6
        dash = "" if i == 0 else ' stroke-dasharray="6 4"'
        out.append(f'<g class="route" data-route="{i + 1}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}>')
        for line in _lines(routes[i]):
            for part in _line_parts(line):
                out.append('<polyline points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in part) + '"/>')
        out.append("</g>")
    for name, lon, lat in places:
        x, y = project(lon, lat)
        out.append(
            f'<g class="place"><circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#111827"/>'
            f'<text x="{x + 5:.1f}" y="{y - 5:.1f}" font-size="12" font-family="sans-serif">{escape(name)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)
