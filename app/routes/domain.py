"""Route planning as a pure function of (network, request): no I/O, no framework.

The network (built by app/routes/network.py) is one networkx MultiDiGraph of places (ports, airports)
and lanes (sea lanes between junctions of the maritime network, berth lanes joining ports to it),
shared read-only by requests. Lanes that depend on the request are made per query and never added
to the shared graph: road lanes from a point (factory, site) to its nearest ports and cargo airports,
a direct road lane, and great-circle air lanes between the origin-side and destination-side airports.

Constraints (avoided countries, passages and modes; a module too heavy or tall for a mode) become a
view of the graph; the sea part of that view is compiled once per constraint set into a CSR matrix so
that a query is a scipy Dijkstra over ~5,000 junctions (degree-2 chains are contracted at build time).
Every sea lane costs the same per km under one criterion, so the distance-shortest sea path is also
the cheapest, fastest and cleanest one; criteria differ only in how legs of different modes and the
transfers between them weigh against each other.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import msgspec
import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from app.routes.borders import Borders
from app.routes.modes import Mode, TransportModes

Criterion = Literal["distance", "time", "cost", "co2"]
PlaceKind = Literal["port", "airport", "point"]
CRITERIA = ("distance", "time", "cost", "co2")
LANE_MODES = ("road", "rail", "sea", "air")
EARTH_RADIUS_KM = 6371.0088  # the mean radius searoute measures with
AIR_PREFIX = "air:"


# --- requests and answers ---------------------------------------------------------------------


class Place(msgspec.Struct, frozen=True):
    code: str  # UN/LOCODE for ports, "air:IATA" for airports, free text for points
    name: str
    kind: PlaceKind
    lat: float
    lon: float
    country: str  # ISO 3166-1 alpha-2


class RouteRequest(msgspec.Struct, frozen=True):
    origin: Place
    destination: Place
    criterion: Criterion = "distance"
    modes: tuple[str, ...] | None = None  # None: every mode with lanes
    avoid_countries: tuple[str, ...] = ()  # not entered at all: no port, airport, land lane or passage
    # no port call, landing or land crossing (export rules' transit bans); passing through their waters
    # (a strait, a canal) is innocent passage and stays open
    no_calls: tuple[str, ...] = ()
    avoid_passages: tuple[str, ...] = ()
    k: int = 3
    weight_kg: float | None = None  # the module's gross weight
    height_mm: float | None = None  # the module's height as loaded


class Leg(msgspec.Struct, frozen=True, rename={"from_": "from"}):
    mode: str
    from_: Place
    to: Place
    distance_km: float
    hours: float  # transit plus dwell at both ends
    cost_usd: float
    co2_kg: float
    countries: tuple[str, ...]
    passages: tuple[str, ...] = ()


class Route(msgspec.Struct, frozen=True):
    legs: tuple[Leg, ...]
    distance_km: float
    hours: float
    cost_usd: float
    co2_kg: float
    passages: tuple[str, ...]
    countries: tuple[str, ...]
    geometry: dict[str, Any]  # GeoJSON LineString (one leg) or MultiLineString (a line per leg)


class RouteAnswer(msgspec.Struct, frozen=True):
    routes: tuple[Route, ...]
    refused_by: str | None = None  # when no route is left: the constraint that cut the last one


class RouteError(ValueError):
    """A request that cannot be planned as asked (unknown place, mode, passage, criterion)."""


class UnknownPlaceError(RouteError):
    pass


# --- the network ------------------------------------------------------------------------------


class SeaLane(msgspec.Struct, frozen=True, array_like=True):
    """A contracted chain of the maritime network between two junctions (one direction)."""

    km: float
    coords: tuple[tuple[float, float], ...]  # (lon, lat), from start to end junction
    passages: tuple[str, ...]


@dataclass(eq=False)
class Network:
    """Everything a query reads. Built once (network.py), then shared read-only; the two caches
    below only memoise pure results."""

    graph: nx.MultiDiGraph  # places and lanes; sea junctions are nodes "sea:<i>"
    modes: TransportModes
    version: str
    places: dict[str, Place]  # by code: "NLRTM", "air:AMS"
    countries: dict[str, str]  # ISO alpha-2 -> name
    junctions: int  # sea junctions are 0..junctions-1
    anchors: dict[str, tuple[int, float]]  # port code -> (junction, berth km)
    lanes: dict[tuple[int, int], SeaLane]  # the shortest lane per junction pair and direction
    port_codes: tuple[str, ...]
    port_latlon: np.ndarray  # radians, shape (n, 2), rows as port_codes
    hub_codes: tuple[str, ...]  # "air:IATA" of cargo hubs
    hub_latlon: np.ndarray
    borders: Borders | None = None  # country shapes: which countries a road or rail lane crosses
    inland: frozenset[str] = frozenset()  # listed ports too far from the sea lanes: reached by land
    rail_codes: tuple[str, ...] = ()  # rail terminals (container terminals, inland ones included)
    rail_latlon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    rail_port_codes: tuple[str, ...] = ()  # rail terminals that are also berthed seaports
    rail_port_latlon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    _sea: dict[frozenset[str], csr_matrix] = field(default_factory=dict, repr=False)
    _trees: OrderedDict[tuple[frozenset[str], int], tuple[np.ndarray, float]] = field(
        default_factory=OrderedDict, repr=False
    )
    # Shortest-path trees of the default constraint set from every junction a port berths at,
    # precomputed (precompute_trees) and attached from a memory-mapped file shared by workers.
    _pred: np.ndarray | None = field(default=None, repr=False)
    _pred_row: dict[int, int] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sea"], state["_trees"] = {}, OrderedDict()  # caches are rebuilt, never stored
        state["_pred"], state["_pred_row"] = None, {}
        state.pop("rail_set", None)
        return state

    @property
    def default_bans(self) -> frozenset[str]:
        """The passages barred when a request bars nothing (e.g. the Northwest Passage)."""
        return frozenset(p.id for p in self.modes.passages if p.avoid_by_default)

    def tree_sources(self) -> list[int]:
        """The junctions whose trees are precomputed: every one a port berths at, in order."""
        return sorted({junction for junction, _ in self.anchors.values()})

    @functools.cached_property
    def rail_set(self) -> frozenset[str]:
        return frozenset(self.rail_codes)

    def attach_trees(self, pred: np.ndarray) -> None:
        sources = self.tree_sources()
        if pred.shape != (len(sources), self.junctions):
            raise ValueError(f"tree table shape {pred.shape} does not fit this network")
        # a plain ndarray view of the (memory-mapped) table: memmap's own indexing is slower
        self._pred, self._pred_row = np.asarray(pred), {junction: row for row, junction in enumerate(sources)}


def junction_node(i: int) -> str:
    return f"sea:{i}"


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _km_to_all(lat: float, lon: float, latlon: np.ndarray) -> np.ndarray:
    p1, l1 = math.radians(lat), math.radians(lon)
    a = (
        np.sin((latlon[:, 0] - p1) / 2) ** 2
        + math.cos(p1) * np.cos(latlon[:, 0]) * np.sin((latlon[:, 1] - l1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


# --- places -----------------------------------------------------------------------------------


def place(network: Network, code: str) -> Place:
    """A port by UN/LOCODE ("NLRTM") or an airport by "air:IATA" (or a bare IATA code)."""
    key = code.strip().upper()
    if key.startswith("AIR:"):
        key = AIR_PREFIX + key[4:]
    found = network.places.get(key) or (network.places.get(AIR_PREFIX + key) if len(key) == 3 else None)
    if found is None:
        raise UnknownPlaceError(f"unknown place {code!r}: not a UN/LOCODE port nor air:IATA airport")
    return found


def point(network: Network, lat: float, lon: float, country: str, name: str = "") -> Place:
    """An arbitrary place (a factory, a site) reached by road."""
    country = country.strip().upper()
    if country not in network.countries:
        raise RouteError(f"unknown country {country!r}: use an ISO 3166-1 alpha-2 code")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RouteError(f"point ({lat}, {lon}) is not a latitude/longitude")
    code = name or f"{lat:.4f},{lon:.4f}"
    return Place(code=code, name=name or code, kind="point", lat=lat, lon=lon, country=country)


def find_places(network: Network, query: str, limit: int = 10) -> list[Place]:
    """Places for a search box: exact codes first, then code prefixes, then names containing the
    query (case-insensitive)."""
    q = query.strip().upper()
    if not q:
        return []
    exact, prefix, named = [], [], []
    for code, p in network.places.items():
        bare = code.removeprefix(AIR_PREFIX).upper()
        if q in (code.upper(), bare):
            exact.append(p)
        elif bare.startswith(q) or code.upper().startswith(q):
            prefix.append(p)
        elif q in p.name.upper():
            named.append(p)
    ranked = exact + sorted(prefix, key=lambda p: p.code) + sorted(named, key=lambda p: (len(p.name), p.name))
    return ranked[:limit]


# --- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stop:
    place: Place
    junction: int = -1  # ports: the sea junction it berths at
    berth_km: float = 0.0


@dataclass(frozen=True)
class _LegPlan:
    mode: str
    start: Place
    end: Place
    km: float
    coords: tuple[tuple[float, float], ...]  # land and air lanes; sea lanes draw from `path`
    passages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # countries under a land lane between its ends, in travel order
    path: tuple[int, ...] = ()  # sea: the junctions passed, drawn only for the routes chosen
    berths: tuple[_Stop, _Stop] | None = None


@dataclass(order=True)
class _Candidate:
    score: float
    legs: tuple[_LegPlan, ...] = field(compare=False)

    @property
    def key(self) -> tuple[object, ...]:
        return tuple((leg.mode, leg.start.code, leg.end.code, leg.passages) for leg in self.legs)

    @property
    def passages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for leg in self.legs for p in leg.passages))


@dataclass(frozen=True)
class _Context:
    network: Network
    request: RouteRequest
    modes: frozenset[str]
    tonnes: float
    # sea legs already walked in this query, by (bans, start port, end port): many candidates
    # share them (a port reached by road and by rail)
    walked: dict[tuple[frozenset[str], str, str], _LegPlan] = field(default_factory=dict)


def plan(network: Network, request: RouteRequest) -> RouteAnswer:
    """Up to k distinct routes, best first under the request's criterion; when none is left,
    `refused_by` names the constraint that cut the last one."""
    ctx = _context(network, request)
    routes = _search(ctx)
    if routes:
        return RouteAnswer(routes=tuple(_route(ctx, c) for c in routes))
    return RouteAnswer(routes=(), refused_by=_diagnose(network, request))


def _context(network: Network, request: RouteRequest) -> _Context:
    if request.criterion not in CRITERIA:
        raise RouteError(f"unknown criterion {request.criterion!r}; criteria: {', '.join(CRITERIA)}")
    if request.k < 1:
        raise RouteError("k must be at least 1")
    modes = set(LANE_MODES if request.modes is None else request.modes)
    unknown = modes - set(LANE_MODES)
    if unknown:
        raise RouteError(f"unknown mode(s) {', '.join(sorted(unknown))}; modes: {', '.join(LANE_MODES)}")
    passage_ids = {p.id for p in network.modes.passages}
    unknown = set(request.avoid_passages) - passage_ids
    if unknown:
        raise RouteError(f"unknown passage(s) {', '.join(sorted(unknown))}; passages: {', '.join(sorted(passage_ids))}")
    unknown = {c.upper() for c in (*request.avoid_countries, *request.no_calls)} - set(network.countries)
    if unknown:
        raise RouteError(f"unknown country code(s) {', '.join(sorted(unknown))}")
    for mode_id in list(modes):
        if not _fits(network.modes.mode(mode_id), request):
            modes.discard(mode_id)
    weight = request.weight_kg if request.weight_kg is not None else network.modes.default_weight_kg
    return _Context(network, request, frozenset(modes), weight / 1000)


def _fits(mode: Mode, request: RouteRequest) -> bool:
    return (request.weight_kg is None or request.weight_kg <= mode.max_weight_kg) and (
        request.height_mm is None or request.height_mm <= mode.max_height_mm
    )


def _resolve(network: Network, p: Place) -> Place:
    """Ports and airports are taken from the network (their coordinates are authoritative)."""
    if p.kind == "point":
        if p.country.upper() not in network.countries:
            raise RouteError(f"unknown country {p.country!r} for point {p.code!r}")
        return p
    found = place(network, p.code if p.kind == "port" or p.code.startswith(AIR_PREFIX) else AIR_PREFIX + p.code)
    if found.kind != p.kind:
        raise UnknownPlaceError(f"{p.code!r} is a {found.kind}, not a {p.kind}")
    return found


def _bans(ctx: _Context) -> frozenset[str]:
    avoid = {c.upper() for c in ctx.request.avoid_countries}
    bans = set(ctx.request.avoid_passages)
    for p in ctx.network.modes.passages:
        if p.avoid_by_default or avoid & set(p.countries):
            bans.add(p.id)
    return frozenset(bans)


def _search(ctx: _Context) -> list[_Candidate]:
    """Best-first over candidates; alternatives come from other port/airport/terminal choices and
    from barring, one at a time, the passages of the routes already chosen (a Yen-like search over
    passages, which is what makes sea routes differ meaningfully). Under time and cost a passage
    has its own delay and toll, so a route through one is taken only after the routes that bar it
    have been weighed against it."""
    net, req = ctx.network, ctx.request
    origin, destination = _resolve(net, req.origin), _resolve(net, req.destination)
    if origin.code == destination.code and origin.kind == destination.kind:
        raise RouteError(f"origin and destination are the same place ({origin.code})")
    avoid = {c.upper() for c in (*req.avoid_countries, *req.no_calls)}
    if origin.country in avoid or destination.country in avoid:
        return []
    base = _bans(ctx)
    starts = _access(ctx, origin)
    ends = _access(ctx, destination)
    heap = _candidates(ctx, origin, destination, starts, ends, base)
    heapq.heapify(heap)
    explored = {base}
    priced = req.criterion in ("time", "cost") and any(p.delay_hours or p.toll_usd for p in net.modes.passages)

    def explore(cand: _Candidate) -> None:
        for passage in cand.passages:
            bans = base | {passage}
            if bans in explored or len(explored) > 4 * req.k:
                continue
            explored.add(bans)
            for alt in _sea_candidates(ctx, starts[1], ends[1], bans):
                heapq.heappush(heap, alt)

    chosen: list[_Candidate] = []
    seen: set[tuple[object, ...]] = set()
    weighed: set[tuple[object, ...]] = set()
    while heap and len(chosen) < req.k:
        cand = heapq.heappop(heap)
        if cand.key in seen:
            continue
        if priced and cand.passages and cand.key not in weighed:
            weighed.add(cand.key)
            explore(cand)
            heapq.heappush(heap, cand)
            continue
        seen.add(cand.key)
        chosen.append(cand)
        if len(chosen) < req.k:
            explore(cand)
    return chosen


_Access = list[tuple["_Stop", tuple["_LegPlan", ...]]]  # a stop and the land legs to reach it


def _access(ctx: _Context, p: Place) -> tuple[_Access, _Access]:
    """(airports, ports) a place reaches: itself, or the nearest few by road, or by truck to a rail
    terminal and train to a rail-served seaport."""
    net, access = ctx.network, ctx.network.modes.access
    road_reach = access.max_road_km if "road" in ctx.modes else 0.0
    airports: _Access = []
    ports: _Access = []
    if "air" in ctx.modes:
        if p.kind == "airport":
            airports = [(_stop(net, p), ())]
        else:
            airports = [
                (_stop(net, other), (leg,))
                for other, leg in _land_lanes(
                    ctx, "road", p, net.hub_codes, net.hub_latlon, access.airports, road_reach
                )
            ]
    if "sea" in ctx.modes:
        if p.kind == "port" and p.code in net.anchors:
            ports = [(_stop(net, p), ())]
        elif p.kind != "airport":
            ports = [
                (_stop(net, other), (leg,))
                for other, leg in _land_lanes(ctx, "road", p, net.port_codes, net.port_latlon, access.ports, road_reach)
            ]
            ports += _by_rail(ctx, p)
    return airports, ports


def _terminals(ctx: _Context, p: Place) -> list[tuple[Place, tuple[_LegPlan, ...]]]:
    """The rail terminals a place loads a train at: itself, or the nearest few by truck."""
    net = ctx.network
    if "rail" not in ctx.modes:
        return []
    if p.code in net.rail_set and p.kind == "port":
        return [(p, ())]
    if "road" not in ctx.modes:
        return []
    access = net.modes.access
    return [
        (other, (leg,))
        for other, leg in _land_lanes(
            ctx, "road", p, net.rail_codes, net.rail_latlon, access.rail_terminals, access.max_drayage_km
        )
    ]


def _by_rail(ctx: _Context, p: Place) -> _Access:
    net, access = ctx.network, ctx.network.modes.access
    out: _Access = []
    for terminal, first in _terminals(ctx, p):
        for port, lane in _land_lanes(
            ctx, "rail", terminal, net.rail_port_codes, net.rail_port_latlon, access.ports, access.max_rail_km
        ):
            out.append((_stop(net, port), (*first, lane)))
    return out


def _land_lanes(
    ctx: _Context, mode_id: str, p: Place, codes: tuple[str, ...], latlon: np.ndarray, count: int, reach_km: float
) -> list[tuple[Place, _LegPlan]]:
    """Lanes of a land mode from `p` to the nearest `count` of `codes` within `reach_km` (great
    circle), leaving out those an avoided country or a national limit bars."""
    if count == 0 or reach_km <= 0 or len(codes) == 0:
        return []
    net = ctx.network
    mode = net.modes.mode(mode_id)
    km = _km_to_all(p.lat, p.lon, latlon)
    out: list[tuple[Place, _LegPlan]] = []
    for i in np.argsort(km):
        if km[i] > reach_km or len(out) >= count:
            break
        other = net.places[codes[i]]
        if other.code == p.code:
            continue
        lane = _land(net, mode_id, p, other, float(km[i]) * mode.circuity)
        if _lane_open(ctx, lane):
            out.append((other, lane))
    return out


def _lane_open(ctx: _Context, lane: _LegPlan) -> bool:
    """False when the lane touches an avoided country or a national limit the module exceeds."""
    touched = {lane.start.country, lane.end.country, *lane.countries}
    if touched & {c.upper() for c in (*ctx.request.avoid_countries, *ctx.request.no_calls)}:
        return False
    req = ctx.request
    for limit in ctx.network.modes.limits:
        if limit.mode != lane.mode or limit.country not in touched:
            continue
        if req.weight_kg is not None and limit.max_weight_kg is not None and req.weight_kg > limit.max_weight_kg:
            return False
        if req.height_mm is not None and limit.max_height_mm is not None and req.height_mm > limit.max_height_mm:
            return False
    return True


def _stop(net: Network, p: Place) -> _Stop:
    if p.kind == "port" and p.code in net.anchors:
        junction, berth = net.anchors[p.code]
        return _Stop(p, junction, berth)
    return _Stop(p)


def _land(net: Network, mode_id: str, a: Place, b: Place, km: float) -> _LegPlan:
    crossed = net.borders.crossed(a.lat, a.lon, b.lat, b.lon, km) if net.borders is not None else ()
    return _LegPlan(mode_id, a, b, km, ((a.lon, a.lat), (b.lon, b.lat)), countries=crossed)


def _rate(ctx: _Context, mode_id: str) -> tuple[float, float]:
    """(score per km, score per transfer) of a mode under the request's criterion."""
    m = ctx.network.modes.mode(mode_id)
    c = ctx.request.criterion
    if c == "distance":
        return 1.0, 0.0
    if c == "time":
        return 1.0 / m.speed_kmh, m.dwell_hours
    if c == "cost":
        return m.usd_per_tkm * ctx.tonnes, m.handling_usd
    return m.co2_g_per_tkm * ctx.tonnes / 1000, m.handling_co2_kg


def _passage_cost(ctx: _Context, passages: Iterable[str]) -> float:
    """What passing the passages adds under the request's criterion (waiting time, tolls)."""
    c = ctx.request.criterion
    if c not in ("time", "cost"):
        return 0.0
    total = 0.0
    for pid in passages:
        p = ctx.network.modes.passage(pid)
        total += p.delay_hours if c == "time" else p.toll_usd
    return total


def _score(ctx: _Context, legs: Iterable[_LegPlan]) -> float:
    total = 0.0
    for leg in legs:
        per_km, per_transfer = _rate(ctx, leg.mode)
        total += leg.km * per_km + (2 * per_transfer if leg.mode != "road" else 0.0)
        total += _passage_cost(ctx, leg.passages)
    return total


def _candidates(
    ctx: _Context,
    origin: Place,
    destination: Place,
    starts: tuple[_Access, _Access],
    ends: tuple[_Access, _Access],
    bans: frozenset[str],
) -> list[_Candidate]:
    out = _sea_candidates(ctx, starts[1], ends[1], bans)
    # air: a great-circle lane between each origin-side and destination-side airport
    air = ctx.network.modes.mode("air")
    for a, a_legs in starts[0]:
        for b, b_legs in ends[0]:
            if a.place.code == b.place.code:
                continue
            pa, pb = a.place, b.place
            km = great_circle_km(pa.lat, pa.lon, pb.lat, pb.lon) * air.circuity
            flight = _LegPlan("air", pa, pb, km, ((pa.lon, pa.lat), (pb.lon, pb.lat)))
            legs = (*a_legs, flight, *_flip_all(b_legs))
            out.append(_Candidate(_score(ctx, legs), legs))
    net, access = ctx.network, ctx.network.modes.access
    # a direct road lane when both ends are within road reach of each other
    if "road" in ctx.modes:
        road = net.modes.mode("road")
        gc = great_circle_km(origin.lat, origin.lon, destination.lat, destination.lon)
        if gc <= access.max_road_km:
            direct = _land(net, "road", origin, destination, gc * road.circuity)
            if _lane_open(ctx, direct):
                out.append(_Candidate(_score(ctx, (direct,)), (direct,)))
    # a train between the rail terminals each end reaches
    rail = net.modes.mode("rail") if "rail" in ctx.modes else None
    for t1, first in _terminals(ctx, origin) if rail else []:
        for t2, last in _terminals(ctx, destination):
            gc = great_circle_km(t1.lat, t1.lon, t2.lat, t2.lon)
            if t1.code == t2.code or gc > access.max_rail_km or rail is None:
                continue
            train = _land(net, "rail", t1, t2, gc * rail.circuity)
            if _lane_open(ctx, train):
                legs = (*first, train, *_flip_all(last))
                out.append(_Candidate(_score(ctx, legs), legs))
    return out


def _flip(leg: _LegPlan) -> _LegPlan:
    return _LegPlan(leg.mode, leg.end, leg.start, leg.km, leg.coords[::-1], leg.passages, leg.countries[::-1])


def _flip_all(legs: tuple[_LegPlan, ...]) -> tuple[_LegPlan, ...]:
    """Land legs that reach a stop, turned round to leave it."""
    return tuple(_flip(leg) for leg in reversed(legs))


def _sea_candidates(
    ctx: _Context,
    starts: _Access,
    ends: _Access,
    bans: frozenset[str],
) -> list[_Candidate]:
    out: list[_Candidate] = []
    if not starts or not ends:
        return out
    net = ctx.network
    for s, s_legs in starts:
        # Most sea routes are under 1.6× the great circle plus a detour; bound the search by that
        # first and search the whole sea only when a target lies beyond it (distances within the
        # bound are exact, so the answer is the same).
        far = max(great_circle_km(s.place.lat, s.place.lon, t.place.lat, t.place.lon) for t, _ in ends)
        pred = _tree(net, bans, s.junction, far * 1.6 + 2500)
        if not all(_reached(pred, s.junction, t.junction) for t, _ in ends):
            pred = _tree(net, bans, s.junction)
        for t, t_legs in ends:
            if s.place.code == t.place.code or not _reached(pred, s.junction, t.junction):
                continue
            key = (bans, s.place.code, t.place.code)
            sea = ctx.walked.get(key)
            if sea is None:
                sea = ctx.walked[key] = _sea_leg(net, s, t, _path(pred, s.junction, t.junction))
            legs = (*s_legs, sea, *_flip_all(t_legs))
            out.append(_Candidate(_score(ctx, legs), legs))
    return out


def _reached(pred: np.ndarray, source: int, target: int) -> bool:
    return target == source or pred[target] >= 0  # scipy marks unreached junctions -9999


def _path(pred: np.ndarray, source: int, target: int) -> list[int]:
    path = [target]
    node = target
    while node != source:
        node = int(pred[node])
        path.append(node)
    path.reverse()
    return path


def _sea_leg(net: Network, s: _Stop, t: _Stop, path: list[int]) -> _LegPlan:
    passages: list[str] = []
    km = s.berth_km + t.berth_km
    lanes = net.lanes
    for u, v in pairwise(path):
        lane = lanes[(u, v)]
        km += lane.km
        for p in lane.passages:
            if p not in passages:
                passages.append(p)
    return _LegPlan("sea", s.place, t.place, km, (), tuple(passages), path=tuple(path), berths=(s, t))


def _sea_coords(net: Network, leg: _LegPlan) -> tuple[tuple[float, float], ...]:
    assert leg.berths is not None
    s, t = leg.berths
    coords: list[tuple[float, float]] = [(s.place.lon, s.place.lat)]
    for i, (u, v) in enumerate(pairwise(leg.path)):
        lane = net.lanes[(u, v)]
        coords.extend(lane.coords[1:] if i else lane.coords)  # each lane starts where the last ended
    if len(leg.path) == 1:
        coords.append(net_junction_coord(net, s))
    coords.append((t.place.lon, t.place.lat))
    return tuple(coords)


def net_junction_coord(net: Network, s: _Stop) -> tuple[float, float]:
    data = net.graph.nodes[junction_node(s.junction)]
    return (data["lon"], data["lat"])


def sea_view(network: Network, bans: frozenset[str]) -> nx.classes.graphviews.SubGraph:  # type: ignore[name-defined]
    """The sea lanes left when `bans` (passage ids) are barred: the constraint as a graph view."""
    g = network.graph

    def keep(u: str, v: str, key: str) -> bool:
        data = g.edges[u, v, key]
        return data["mode"] == "sea" and data["kind"] == "lane" and not bans.intersection(data["passages"])

    return nx.subgraph_view(g, filter_edge=keep)


def _sea_matrix(network: Network, bans: frozenset[str]) -> csr_matrix:
    matrix = network._sea.get(bans)
    if matrix is None:
        rows, cols, km = [], [], []
        for _, _, data in sea_view(network, bans).edges(data=True):
            rows.append(data["u"])
            cols.append(data["v"])
            km.append(data["distance_km"])
        n = network.junctions
        # several lanes may join the same pair: keep the shortest (a CSR would add them up)
        best: dict[tuple[int, int], float] = {}
        for r, c, w in zip(rows, cols, km, strict=True):
            if w < best.get((r, c), math.inf):
                best[(r, c)] = w
        keys = list(best)
        matrix = csr_matrix(
            (np.fromiter(best.values(), float, len(keys)), ([k[0] for k in keys], [k[1] for k in keys])), shape=(n, n)
        )
        network._sea[bans] = matrix
    return matrix


def _tree(network: Network, bans: frozenset[str], source: int, reach: float = math.inf) -> np.ndarray:
    """Shortest-path predecessors from one junction, exact up to `reach` km (a bounded search
    settles far fewer junctions): a precomputed tree when there is one, else searched and memoised
    (LRU). Junctions beyond the bound read as unreached."""
    if network._pred is not None and bans == network.default_bans:
        row = network._pred_row.get(source)
        if row is not None:
            return network._pred[row]
    key = (bans, source)
    hit = network._trees.get(key)
    if hit is not None and hit[1] >= reach:
        network._trees.move_to_end(key)
        return hit[0]
    _, pred = dijkstra(_sea_matrix(network, bans), indices=source, return_predecessors=True, limit=reach)
    network._trees[key] = (pred, reach)
    network._trees.move_to_end(key)
    if len(network._trees) > 256:
        network._trees.popitem(last=False)
    return pred


def precompute_trees(network: Network, chunk: int = 128) -> np.ndarray:
    """Predecessor rows of the default constraint set from every berth junction (tree_sources):
    a port-to-port query then walks a row instead of searching. ~1,900 rows of int16 (27 MB),
    built in about a second and a half."""
    matrix = _sea_matrix(network, network.default_bans)
    sources = network.tree_sources()
    dtype = np.int16 if network.junctions < np.iinfo(np.int16).max else np.int32
    out = np.empty((len(sources), network.junctions), dtype=dtype)
    for i in range(0, len(sources), chunk):
        _, pred = dijkstra(matrix, indices=sources[i : i + chunk], return_predecessors=True)
        out[i : i + chunk] = pred
    return out


# --- answers ----------------------------------------------------------------------------------


def _route(ctx: _Context, cand: _Candidate) -> Route:
    legs = tuple(_leg(ctx, leg) for leg in cand.legs)
    countries = tuple(dict.fromkeys(c for leg in legs for c in leg.countries))
    lines = [_unwrap(leg.coords if leg.mode != "sea" else _sea_coords(ctx.network, leg)) for leg in cand.legs]
    geometry: dict[str, Any] = (
        {"type": "LineString", "coordinates": lines[0]}
        if len(lines) == 1
        else {"type": "MultiLineString", "coordinates": lines}
    )
    return Route(
        legs=legs,
        distance_km=round(sum(leg.distance_km for leg in legs), 1),
        hours=round(sum(leg.hours for leg in legs), 1),
        cost_usd=round(sum(leg.cost_usd for leg in legs), 2),
        co2_kg=round(sum(leg.co2_kg for leg in legs), 1),
        passages=cand.passages,
        countries=countries,
        geometry=geometry,
    )


def _leg(ctx: _Context, leg: _LegPlan) -> Leg:
    m = ctx.network.modes.mode(leg.mode)
    transfers = 0 if leg.mode == "road" else 2
    by_id = {p.id: p for p in ctx.network.modes.passages}
    delay = sum(by_id[p].delay_hours for p in leg.passages)
    toll = sum(by_id[p].toll_usd for p in leg.passages)
    countries = dict.fromkeys(
        [leg.start.country, *leg.countries, *(c for p in leg.passages for c in by_id[p].countries), leg.end.country]
    )
    return Leg(
        mode=leg.mode,
        from_=leg.start,
        to=leg.end,
        distance_km=round(leg.km, 1),
        hours=round(leg.km / m.speed_kmh + transfers * m.dwell_hours + delay, 1),
        cost_usd=round(leg.km * m.usd_per_tkm * ctx.tonnes + transfers * m.handling_usd + toll, 2),
        co2_kg=round(leg.km * m.co2_g_per_tkm * ctx.tonnes / 1000 + transfers * m.handling_co2_kg, 1),
        countries=tuple(countries),
        passages=leg.passages,
    )


def _unwrap(coords: tuple[tuple[float, float], ...]) -> list[list[float]]:
    """Continuous longitudes across the antimeridian (as searoute draws them), 5 decimals."""
    points = np.array(coords, dtype=float)
    step = np.diff(points[:, 0])
    points[1:, 0] += np.cumsum(np.where(step > 180, -360.0, np.where(step < -180, 360.0, 0.0)))
    out: list[list[float]] = np.round(points, 5).tolist()
    return out


def _diagnose(network: Network, request: RouteRequest) -> str:
    """Relax one constraint at a time; the first whose removal brings a route back cut the last."""
    trials: list[tuple[str, RouteRequest]] = []
    for c in request.avoid_countries:
        rest = tuple(x for x in request.avoid_countries if x != c)
        trials.append((f"avoid_countries: {c}", msgspec.structs.replace(request, avoid_countries=rest, k=1)))
    for c in request.no_calls:
        rest = tuple(x for x in request.no_calls if x != c)
        trials.append(
            (
                f"no port call or land transit in {c} (export rules)",
                msgspec.structs.replace(request, no_calls=rest, k=1),
            )
        )
    for p in request.avoid_passages:
        rest = tuple(x for x in request.avoid_passages if x != p)
        trials.append((f"avoid_passages: {p}", msgspec.structs.replace(request, avoid_passages=rest, k=1)))
    if request.modes is not None:
        trials.append((f"modes: {', '.join(request.modes)}", msgspec.structs.replace(request, modes=None, k=1)))
    if request.weight_kg is not None:
        trials.append((f"weight_kg: {request.weight_kg:g}", msgspec.structs.replace(request, weight_kg=None, k=1)))
    if request.height_mm is not None:
        trials.append((f"height_mm: {request.height_mm:g}", msgspec.structs.replace(request, height_mm=None, k=1)))
    for label, relaxed in trials:
        if _search(_context(network, relaxed)):
            return label
    if trials:
        return "the constraints together: " + "; ".join(label for label, _ in trials)
    return "the network: no port, airport or road lane joins these places"
