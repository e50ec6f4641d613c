"""Port-to-port route queries: afm's planner against searoute on the same 200 seeded random pairs.

Both run warm in the same process: searoute with its graphs built once (`M=M, P=P`), afm with the
network loaded and the sea matrix compiled for the default constraints; afm's per-source shortest
path trees are cleared first, so every pair pays for its own search. Lengths are compared on
searoute's terms (its length leaves out the berth segment from a port to the network).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from app.routes.domain import Network, RouteRequest, place, plan, point
from app.routes.network import load_network
from tests.benchmarks.common import Result, timed_result

PAIRS = 200


def run(pairs: int = PAIRS, seed: int = 20240611) -> list[Result]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import searoute

        m, p = searoute.setup_M(), searoute.setup_P()
    with tempfile.TemporaryDirectory(prefix="afm-routes-") as tmp:
        start = time.perf_counter()
        load_network(Path(tmp))
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        network = load_network(Path(tmp))
        load_s = time.perf_counter() - start
    rng = random.Random(seed)
    chosen = [tuple(rng.sample(network.port_codes, 2)) for _ in range(pairs)]
    requests = [RouteRequest(place(network, o), place(network, d), modes=("sea",), k=1) for o, d in chosen]
    plan(network, requests[0])  # compiles the sea matrix for these constraints
    network._trees.clear()

    ours: list[float] = []
    lengths: list[float] = []
    for request in requests:
        t0 = time.perf_counter()
        answer = plan(network, request)
        ours.append(time.perf_counter() - t0)
        berths = network.anchors[request.origin.code][1] + network.anchors[request.destination.code][1]
        lengths.append(answer.routes[0].distance_km - berths if answer.routes else 0.0)

    theirs: list[float] = []
    deviation = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for request, length in zip(requests, lengths, strict=True):
            o, d = request.origin, request.destination
            t0 = time.perf_counter()
            feature = searoute.searoute((o.lon, o.lat), (d.lon, d.lat), M=m, P=p, units="km")
            theirs.append(time.perf_counter() - t0)
            km = float(feature.properties["length"])
            if km > 1.0:  # both ports at the same network node: nothing to compare
                deviation = max(deviation, abs(length - km) / km)

    def result(name: str, stat: object) -> Result:
        mine, base = stat(ours), stat(theirs)  # type: ignore[operator]
        return Result(
            name=name,
            measured="queries per second (1 / per-query time)",
            value=1.0 / mine,
            baseline_name="searoute",
            baseline=1.0 / base,
            unit="q/s",
            goal=10.0,
            value_text=f"{mine * 1000:.3f} ms",
            baseline_text=f"{base * 1000:.3f} ms",
        )

    door = _door_to_door(network, pairs, seed)
    return [
        *door,
        result(
            f"route query median, {pairs} port pairs (max length dev {deviation:.3%}; "
            f"network build {build_s:.1f} s, cached load {load_s:.2f} s)",
            statistics.median,
        ),
        result(f"route query mean, {pairs} port pairs", statistics.mean),
    ]


DOOR_BUDGET_S = 0.030  # the goal for a door-to-door road+sea query


def _door_to_door(network: Network, pairs: int, seed: int) -> list[Result]:
    """Factory/site-like points (random cargo airports' coordinates, as plain points reached by
    road or rail) to each other, by time: every mode, k=1 and k=3, against the 30 ms budget."""
    rng = random.Random(seed + 1)
    hubs = [network.places[c] for c in network.hub_codes]
    points = [
        (point(network, a.lat + 0.3, a.lon + 0.3, a.country), point(network, b.lat - 0.3, b.lon - 0.3, b.country))
        for a, b in (rng.sample(hubs, 2) for _ in range(pairs))
    ]
    out = []
    for k in (1, 3):
        times = []
        for o, d in points:
            t0 = time.perf_counter()
            plan(network, RouteRequest(o, d, criterion="time", k=k))
            times.append(time.perf_counter() - t0)
        med, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
        name = f"door-to-door query median, {pairs} point pairs, k={k} (p95 {p95 * 1000:.1f} ms)"
        out.append(timed_result(name, med, "budget", DOOR_BUDGET_S, "q/s"))
    return out


if __name__ == "__main__":
    from tests.benchmarks.common import table

    print(table(run()))
