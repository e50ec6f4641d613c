"""Which countries a road lane crosses: points sampled along it, each placed in a country by
point-in-polygon over Natural Earth 1:110m shapes (vectorised with numpy, bounding boxes first).

A road lane is a straight great-circle stand-in for the real road, so this names the countries that line
passes over — DE→IT names AT or CH, which a planner avoiding them must know. At 1:110m very small states
(Singapore, Luxembourg, Monaco …) have no shape and are not named between a lane's ends; the ends'
countries are always named.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_KM = 15.0  # spacing of the points tested along a lane


@dataclass
class Borders:
    codes: tuple[str, ...]  # ISO alpha-2 per polygon ring set
    boxes: np.ndarray  # (n, 4): lon_min, lat_min, lon_max, lat_max per country
    rings: list[list[np.ndarray]]  # per country: rings as (m, 2) arrays of lon, lat
    _memo: dict[tuple[float, float, float, float], tuple[str, ...]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_memo"] = {}
        return state

    def country_at(self, lon: np.ndarray, lat: np.ndarray) -> list[str]:
        """The country of each point ("" at sea or where no shape is)."""
        found = [""] * len(lon)
        for i, (x0, y0, x1, y1) in enumerate(self.boxes):
            inside_box = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
            if not inside_box.any():
                continue
            idx = np.nonzero(inside_box)[0]
            hit = np.zeros(len(idx), dtype=bool)
            for ring in self.rings[i]:
                hit ^= _inside(ring, lon[idx], lat[idx])  # even-odd across rings: holes cut out
            for j in idx[hit]:
                found[j] = self.codes[i]
        return found

    def crossed(self, lat1: float, lon1: float, lat2: float, lon2: float, km: float) -> tuple[str, ...]:
        """Countries under the line from the first point to the second, in order of travel."""
        key = (round(lat1, 4), round(lon1, 4), round(lat2, 4), round(lon2, 4))
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        n = max(2, min(400, math.ceil(km / SAMPLE_KM) + 1))
        t = np.linspace(0.0, 1.0, n)
        dlon = ((lon2 - lon1 + 180.0) % 360.0) - 180.0  # the short way round
        lon = ((lon1 + t * dlon + 180.0) % 360.0) - 180.0
        lat = lat1 + t * (lat2 - lat1)
        seen = tuple(dict.fromkeys(c for c in self.country_at(lon, lat) if c))
        if len(self._memo) < 50_000:
            self._memo[key] = seen
        return seen


def _inside(ring: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ray casting for many points against one ring."""
    xs, ys = ring[:, 0], ring[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    crosses = (ys[None, :] > y[:, None]) != (yj[None, :] > y[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        at = (xj - xs)[None, :] * (y[:, None] - ys[None, :]) / (yj - ys)[None, :] + xs[None, :]
    result: np.ndarray = np.logical_xor.reduce(crosses & (x[:, None] < at), axis=1)
    return result


def load_borders(atlas: Path, numeric_to_alpha2: dict[str, str]) -> Borders:
    """Country rings from the world-atlas TopoJSON, keyed by ISO alpha-2."""
    topology = json.loads(atlas.read_text(encoding="utf-8"))
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs: list[np.ndarray] = []
    for arc in topology["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=np.float64), axis=0)
        arcs.append(np.column_stack((q[:, 0] * sx + tx, q[:, 1] * sy + ty)))
    codes: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []
    rings: list[list[np.ndarray]] = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        code = numeric_to_alpha2.get(str(geometry.get("id", "")))
        kind = geometry.get("type")
        if code is None or kind not in ("Polygon", "MultiPolygon"):
            continue  # Kosovo, Northern Cyprus and Somaliland have no ISO numeric code in the atlas
        polygons = [geometry["arcs"]] if kind == "Polygon" else geometry["arcs"]
        country: list[np.ndarray] = []
        for polygon in polygons:
            for ring in polygon:
                parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in ring]
                points = np.concatenate([parts[0], *(p[1:] for p in parts[1:])])
                if np.ptp(points[:, 0]) > 180:  # a ring across the antimeridian: skip, too coarse to matter
                    continue
                country.append(points)
        if not country:
            continue
        every = np.concatenate(country)
        codes.append(code)
        boxes.append((every[:, 0].min(), every[:, 1].min(), every[:, 0].max(), every[:, 1].max()))
        rings.append(country)
    return Borders(codes=tuple(codes), boxes=np.asarray(boxes), rings=rings)
