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
    _prepared: dict[int, list[_Ring]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_memo"], state["_prepared"] = {}, {}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_prepared", {})

    def country_at(self, lon: np.ndarray, lat: np.ndarray) -> list[str]:
        """The country of each point ("" at sea or where no shape is)."""
        found = [""] * len(lon)
        b = self.boxes
        x, y = lon[:, None], lat[:, None]
        in_box = (x >= b[:, 0]) & (x <= b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 3])  # points x countries
        for i in np.nonzero(in_box.any(axis=0))[0]:
            idx = np.nonzero(in_box[:, i])[0]
            hit = np.zeros(len(idx), dtype=bool)
            for ring in self._edges(i):
                hit ^= _inside(ring, lon[idx], lat[idx])  # even-odd across rings: holes cut out
            for j in idx[hit]:
                found[j] = self.codes[i]
        return found

    def _edges(self, country: int) -> list[_Ring]:
        edges = self._prepared.get(country)
        if edges is None:
            edges = self._prepared[country] = [_Ring.of(ring) for ring in self.rings[country]]
        return edges

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


@dataclass(frozen=True)
class _Ring:
    """A ring's edges, prepared once for ray casting: start points, and x step per unit of y."""

    xs: np.ndarray
    ys: np.ndarray
    yj: np.ndarray
    slope: np.ndarray
    box: tuple[float, float, float, float]

    @classmethod
    def of(cls, ring: np.ndarray) -> _Ring:
        xs, ys = ring[:, 0], ring[:, 1]
        xj, yj = np.roll(xs, 1), np.roll(ys, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (xj - xs) / (yj - ys)
        return cls(xs, ys, yj, slope, (xs.min(), ys.min(), xs.max(), ys.max()))


def _inside(ring: _Ring, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ray casting for many points against one ring."""
    x0, y0, x1, y1 = ring.box
    near = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    result = np.zeros(len(x), dtype=bool)
    if not near.any():
        return result
    px, py = x[near][:, None], y[near][:, None]
    crosses = (ring.ys[None, :] > py) != (ring.yj[None, :] > py)
    with np.errstate(invalid="ignore"):
        at = ring.slope[None, :] * (py - ring.ys[None, :]) + ring.xs[None, :]
    result[near] = np.logical_xor.reduce(crosses & (px < at), axis=1)
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
