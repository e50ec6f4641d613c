"""Building the route network from reference data installed with the packages (the I/O edge).

Sources (see fixtures/reference/SOURCES.md): searoute's maritime network and UN/LOCODE ports,
airportsdata's airports, iso3166's countries, and workflows/transport-modes.toml. The build takes a
few seconds, so the result is pickled under the cache directory, keyed by the package versions, the
modes file's hash and the build format; start-up then only unpickles it.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import networkx as nx
import numpy as np

from app.routes.borders import Borders, load_borders
from app.routes.domain import AIR_PREFIX, Network, Place, SeaLane, junction_node, precompute_trees
from app.routes.modes import MODES_FILE, TransportModes, decode_modes

FORMAT = 3  # bump when the build changes shape (2: country borders for road lanes; 3: rail, inland)
PACKAGES = ("searoute", "airportsdata", "iso3166", "networkx", "scipy", "numpy", "msgspec")
_R_KM = 6371.0088


def cache_key(modes_file: Path = MODES_FILE) -> str:
    parts = [f"format={FORMAT}", hashlib.sha256(modes_file.read_bytes()).hexdigest()]
    parts += [f"{name}={metadata.version(name)}" for name in PACKAGES]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def load_network(cache_dir: Path, modes_file: Path = MODES_FILE) -> Network:
    """The network from the cache when it matches the data version, else built and cached; with
    the precomputed shortest-path trees attached from their own memory-mapped file, so that the
    workers of one machine share those pages."""
    key = cache_key(modes_file)
    path = cache_dir / f"routes-network-{key}.pickle"
    network = _read_network(path)
    if network is None:
        network = build_network(decode_modes(modes_file.read_bytes(), modes_file.name))
        _write_atomic(path, lambda f: pickle.dump(network, f, protocol=pickle.HIGHEST_PROTOCOL))
    trees = cache_dir / f"routes-trees-{key}.npy"
    pred = _read_trees(trees, network)
    if pred is None:
        table = precompute_trees(network)
        _write_atomic(trees, lambda f: np.save(f, table, allow_pickle=False))
        pred = _read_trees(trees, network)
    network.attach_trees(pred if pred is not None else precompute_trees(network))
    return network


def _read_network(path: Path) -> Network | None:
    if not path.exists():
        return None
    try:
        with path.open("rb") as f:
            network = pickle.load(f)
        return network if isinstance(network, Network) else None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None  # a torn or stale file: rebuild it


def _read_trees(path: Path, network: Network) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        pred = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if pred.shape != (len(network.tree_sources()), network.junctions) or pred.dtype.kind != "i":
        return None
    return pred


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write-then-rename, so that a concurrent start never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".routes-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine over (lon, lat) with the radius searoute uses, so lengths agree with it."""
    dlat, dlon = math.radians(b[1] - a[1]), math.radians(b[0] - a[0])
    h = math.sin(dlat / 2) ** 2 + math.cos(math.radians(a[1])) * math.cos(math.radians(b[1])) * math.sin(dlon / 2) ** 2
    return 2 * _R_KM * math.atan2(math.sqrt(h), math.sqrt(1 - h))


def _searoute() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # searoute's imports and data may warn; they are not ours to fix
        import searoute

        return searoute.setup_M(), searoute.setup_P()


def build_network(modes: TransportModes) -> Network:
    import airportsdata
    import iso3166

    marnet, ports_graph = _searoute()
    by_tag = modes.by_tag
    sea = modes.mode("sea")
    graph = nx.MultiDiGraph(name="afm routes", version=modes.version)

    countries = {c.alpha2: c.name for c in iso3166.countries}

    # ports: UN/LOCODE, the country is its first two letters; each berths at its nearest network node
    ports: dict[str, tuple[Place, tuple[float, float]]] = {}
    inland: dict[str, Place] = {}  # listed ports too far from the sea lanes to berth: land only
    rail: set[str] = set()  # container terminals (the list's "t" flag): a train can load there
    for (lon, lat), data in ports_graph.nodes(data=True):
        code = data.get("port")
        if not code or code in ports or code in inland:
            continue
        country = code[:2]
        countries.setdefault(country, data.get("cty") or country)
        p = Place(code=code, name=data.get("name") or code, kind="port", lat=lat, lon=lon, country=country)
        node = marnet.kdtree.query((lon, lat))
        if data.get("t") == 1.0:
            rail.add(code)
        if _km((lon, lat), node) > modes.access.max_berth_km:
            inland[code] = p
        else:
            ports[code] = (p, node)

    # contract degree-2 chains: junctions are nodes of another degree, berths and passage ends
    passage_of = {}
    for u, v, data in marnet.edges(data=True):
        tag = data.get("passage")
        if tag in by_tag:
            passage_of[frozenset((u, v))] = by_tag[tag].id
    junction_nodes = {n for n in marnet.nodes if marnet.degree(n) != 2}
    junction_nodes.update(node for _, node in ports.values())
    for pair in passage_of:
        junction_nodes.update(pair)
    order = sorted(junction_nodes)
    index = {n: i for i, n in enumerate(order)}
    for i, (lon, lat) in enumerate(order):
        graph.add_node(junction_node(i), kind="junction", lon=lon, lat=lat)

    lanes: dict[tuple[int, int], SeaLane] = {}
    for start in order:
        for first in marnet.neighbors(start):
            coords = [start, first]
            km = _km(start, first)
            passages = [passage_of[key]] if (key := frozenset((start, first))) in passage_of else []
            prev, node = start, first
            while node not in junction_nodes:
                nxt = next((n for n in marnet.neighbors(node) if n != prev), None)
                if nxt is None:
                    break
                km += _km(node, nxt)
                if (key := frozenset((node, nxt))) in passage_of and passage_of[key] not in passages:
                    passages.append(passage_of[key])
                coords.append(nxt)
                prev, node = node, nxt
            if node not in junction_nodes or node == start:
                continue  # a loop with no junction on it, or back to where it began
            u, v = index[start], index[node]
            lane = SeaLane(km=km, coords=tuple(coords), passages=tuple(passages))
            if (u, v) not in lanes or km < lanes[(u, v)].km:
                lanes[(u, v)] = lane
    for (u, v), lane in lanes.items():
        graph.add_edge(junction_node(u), junction_node(v), key="sea", **_lane_attrs(modes, lane, u, v, sea))

    anchors: dict[str, tuple[int, float]] = {}
    for code, (p, node) in ports.items():
        graph.add_node(code, kind="port", place=p)
        junction = index[node]
        berth = _km((p.lon, p.lat), node)
        anchors[code] = (junction, berth)
        berth_lane = SeaLane(km=berth, coords=((p.lon, p.lat), node), passages=())
        graph.add_edge(code, junction_node(junction), key="berth", **_lane_attrs(modes, berth_lane, -1, junction, sea))
        back = SeaLane(km=berth, coords=(node, (p.lon, p.lat)), passages=())
        graph.add_edge(junction_node(junction), code, key="berth", **_lane_attrs(modes, back, junction, -1, sea))

    places: dict[str, Place] = {code: p for code, (p, _) in ports.items()}
    for code, p in inland.items():
        graph.add_node(code, kind="port", place=p, inland=True)
        places[code] = p
    for iata, a in airportsdata.load("IATA").items():
        code = AIR_PREFIX + iata
        country = a["country"]
        countries.setdefault(country, country)
        p = Place(code=code, name=a["name"], kind="airport", lat=a["lat"], lon=a["lon"], country=country)
        places[code] = p
        graph.add_node(code, kind="airport", place=p)

    hubs = tuple(AIR_PREFIX + h for h in modes.air.hubs if AIR_PREFIX + h in places)
    port_codes = tuple(sorted(ports))
    rail_codes = tuple(sorted(rail))
    rail_ports = tuple(c for c in rail_codes if c in ports)
    return Network(
        graph=graph,
        modes=modes,
        version=cache_key(),
        places=places,
        countries=countries,
        junctions=len(order),
        anchors=anchors,
        lanes=lanes,
        port_codes=port_codes,
        port_latlon=_radians([places[c] for c in port_codes]),
        hub_codes=hubs,
        hub_latlon=_radians([places[c] for c in hubs]),
        borders=_borders(),
        inland=frozenset(inland),
        rail_codes=rail_codes,
        rail_latlon=_radians([places[c] for c in rail_codes]),
        rail_port_codes=rail_ports,
        rail_port_latlon=_radians([places[c] for c in rail_ports]),
    )


def _borders() -> Borders:
    from iso3166 import countries_by_numeric

    from app.routes.worldmap import ATLAS

    return load_borders(ATLAS, {numeric: c.alpha2 for numeric, c in countries_by_numeric.items()})


def _lane_attrs(modes: TransportModes, lane: SeaLane, u: int, v: int, mode: Any) -> dict[str, Any]:
    by_id = {p.id: p for p in modes.passages}
    return {
        "mode": "sea",
        "kind": "lane" if u >= 0 and v >= 0 else "berth",
        "u": u,
        "v": v,
        "distance_km": lane.km,
        "hours": lane.km / mode.speed_kmh,
        "usd_per_t": lane.km * mode.usd_per_tkm,
        "co2_kg_per_t": lane.km * mode.co2_g_per_tkm / 1000,
        "countries": tuple(dict.fromkeys(c for p in lane.passages for c in by_id[p].countries)),
        "passages": lane.passages,
        "max_weight_kg": mode.max_weight_kg,
        "max_height_mm": mode.max_height_mm,
        "coords": lane.coords,
    }


def _radians(places: list[Place]) -> np.ndarray:
    if not places:
        return np.zeros((0, 2))
    return np.radians(np.array([(p.lat, p.lon) for p in places], dtype=float))
