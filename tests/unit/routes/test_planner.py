"""Route planning against searoute, and the constraints a request can put on it."""

from __future__ import annotations

from typing import Any

import pytest

from app.routes.domain import (
    Network,
    Place,
    RouteError,
    RouteRequest,
    UnknownPlaceError,
    find_places,
    place,
    plan,
    point,
)
from tests.unit.routes.conftest import searoute_km


def _sea(network: Network, o: str, d: str, **kw: Any) -> RouteRequest:
    return RouteRequest(place(network, o), place(network, d), modes=("sea",), **kw)


def _berths(network: Network, *codes: str) -> float:
    return sum(network.anchors[c][1] for c in codes)


@pytest.mark.parametrize(
    ("origin", "destination", "avoid", "expected_km", "via"),
    [
        ("NLRTM", "SGSIN", (), 15_498, {"suez", "malacca"}),
        ("CNSHA", "USSAV", (), 19_022, {"panama"}),
        ("NLRTM", "SGSIN", ("suez",), 21_958, {"cape-of-good-hope"}),
    ],
)
def test_known_routes_agree_with_searoute(
    network: Network,
    searoute_graphs: Any,
    origin: str,
    destination: str,
    avoid: tuple[str, ...],
    expected_km: float,
    via: set[str],
) -> None:
    answer = plan(network, _sea(network, origin, destination, avoid_passages=avoid, k=1))
    (route,) = answer.routes
    assert via <= set(route.passages)
    assert not set(avoid) & set(route.passages)
    assert route.distance_km == pytest.approx(expected_km, rel=0.005)
    tags = {"suez": "suez"}
    theirs = searoute_km(
        searoute_graphs,
        place(network, origin),
        place(network, destination),
        ["northwest", *(tags[a] for a in avoid)],
    )
    ours = route.distance_km - _berths(network, origin, destination)  # searoute leaves berths out
    assert ours == pytest.approx(theirs, rel=0.005)


def test_a_route_has_legs_totals_and_geometry(network: Network) -> None:
    route = plan(network, _sea(network, "NLRTM", "SGSIN", k=1)).routes[0]
    (leg,) = route.legs
    assert (leg.mode, leg.from_.code, leg.to.code) == ("sea", "NLRTM", "SGSIN")
    assert leg.hours > leg.distance_km / 40 and leg.cost_usd > 0 and leg.co2_kg > 0
    assert route.countries[0] == "NL" and {"SG", "EG"} <= set(route.countries)
    assert route.geometry["type"] == "LineString"
    coords = route.geometry["coordinates"]
    assert coords[0] == pytest.approx([4.44245, 51.90438], abs=1e-3)
    assert len(coords) > 20


def test_avoiding_a_country_removes_every_lane_through_it(network: Network) -> None:
    route = plan(network, _sea(network, "NLRTM", "SGSIN", avoid_countries=("EG",), k=2)).routes[0]
    assert "suez" not in route.passages
    assert all("EG" not in leg.countries for r in [route] for leg in r.legs)
    assert "EG" not in route.countries
    factory = point(network, 50.94, 6.96, "DE", "Cologne factory")
    site = point(network, 1.35, 103.82, "SG", "Singapore site")
    for r in plan(network, RouteRequest(factory, site, avoid_countries=("NL", "EG"), k=3)).routes:
        assert all(leg.from_.country not in {"NL", "EG"} and leg.to.country not in {"NL", "EG"} for leg in r.legs)
        assert not {"NL", "EG"} & set(r.countries)


def test_k_alternatives_are_distinct_and_ordered(network: Network) -> None:
    routes = plan(network, _sea(network, "NLRTM", "SGSIN", k=3)).routes
    assert len(routes) == 3
    keys = {tuple((leg.from_.code, leg.to.code, leg.passages) for leg in r.legs) for r in routes}
    assert len(keys) == 3
    assert [r.distance_km for r in routes] == sorted(r.distance_km for r in routes)


def test_criterion_changes_the_choice(network: Network) -> None:
    factory = point(network, 50.94, 6.96, "DE", "Cologne factory")
    site = point(network, 1.35, 103.82, "SG", "Singapore site")
    fast = plan(network, RouteRequest(factory, site, criterion="time", k=1)).routes[0]
    clean = plan(network, RouteRequest(factory, site, criterion="co2", k=1)).routes[0]
    assert "air" in {leg.mode for leg in fast.legs}
    assert "air" not in {leg.mode for leg in clean.legs} and "sea" in {leg.mode for leg in clean.legs}
    assert fast.hours < clean.hours and clean.co2_kg < fast.co2_kg
    assert fast.geometry["type"] == "MultiLineString"


def test_a_module_too_tall_for_air_is_routed_around_it(network: Network) -> None:
    factory = point(network, 50.94, 6.96, "DE", "Cologne factory")
    site = point(network, 1.35, 103.82, "SG", "Singapore site")
    tall = plan(network, RouteRequest(factory, site, criterion="time", k=3, weight_kg=30_000, height_mm=2_900))
    assert tall.routes
    assert all(leg.mode != "air" for r in tall.routes for leg in r.legs)


def test_a_module_too_heavy_for_road_is_routed_around_it(network: Network) -> None:
    # Rotterdam to Hamburg: a light module goes by truck, a 60 t one by train, a 120 t one by ship
    def modes(weight: float | None) -> list[str]:
        request = RouteRequest(
            place(network, "NLRTM"), place(network, "DEHAM"), criterion="time", k=1, weight_kg=weight
        )
        return [leg.mode for leg in plan(network, request).routes[0].legs]

    assert modes(None) == ["road"]
    assert "road" not in modes(60_000) and "rail" in modes(60_000)
    assert modes(120_000) == ["sea"]


def test_a_national_limit_routes_a_heavy_module_around_that_country(network: Network) -> None:
    # Munich to Milan: the straight road crosses Switzerland (40 t gross, 26 t load); a 28 t module
    # stays out of Swiss lanes while a 20 t one may use them
    munich = point(network, 48.14, 11.58, "DE", "Munich")
    milan = point(network, 45.46, 9.19, "IT", "Milan")
    light = plan(network, RouteRequest(munich, milan, criterion="distance", k=1, weight_kg=20_000)).routes[0]
    assert "CH" in light.countries
    heavy = plan(network, RouteRequest(munich, milan, criterion="distance", k=3, weight_kg=28_000)).routes
    assert heavy
    for route in heavy:
        assert all("CH" not in leg.countries for leg in route.legs if leg.mode in ("road", "rail"))
        assert route.distance_km > light.distance_km


def test_passage_delays_send_a_time_route_round_the_cape(network: Network) -> None:
    # Shanghai to Rotterdam without Suez: Panama is shorter by distance, but its canal waiting time
    # makes the Cape of Good Hope the faster way
    def best(criterion: str) -> Any:
        request = _sea(network, "CNSHA", "NLRTM", avoid_passages=("suez",), criterion=criterion, k=1)
        return plan(network, request).routes[0]

    by_distance, by_time = best("distance"), best("time")
    assert "panama" in by_distance.passages
    assert "cape-of-good-hope" in by_time.passages and "panama" not in by_time.passages
    assert by_time.distance_km > by_distance.distance_km
    panama = network.modes.passage("panama")
    sailing = sum(leg.distance_km / network.modes.mode(leg.mode).speed_kmh for leg in by_distance.legs)
    assert by_distance.hours == pytest.approx(sailing + 2 * 48.0 + panama.delay_hours, abs=0.2)


def test_inland_terminals_are_reached_by_land_not_by_a_made_up_sea_lane(network: Network) -> None:
    assert "CNCKG" in network.inland and "CNCKG" not in network.anchors  # Chongqing, 900 km from the sea
    request = RouteRequest(place(network, "CNCKG"), place(network, "NLRTM"), criterion="cost", k=1)
    route = plan(network, request).routes[0]
    assert route.legs[0].mode in ("road", "rail") and route.legs[0].from_.code == "CNCKG"
    assert any(leg.mode == "sea" for leg in route.legs)


def test_precomputed_trees_give_the_searched_answer(network: Network) -> None:
    import copy

    bare = copy.copy(network)
    bare._pred, bare._pred_row, bare._trees = None, {}, type(network._trees)()
    for o, d in (("NLRTM", "SGSIN"), ("CNSHA", "USSAV"), ("BRSSZ", "JPTYO"), ("AUMEL", "ZADUR")):
        request = _sea(network, o, d, k=1)
        assert plan(network, request) == plan(bare, request)


def test_unknown_place_is_a_clear_error(network: Network) -> None:
    with pytest.raises(UnknownPlaceError, match="XXNOPE"):
        place(network, "XXNOPE")
    bogus = Place(code="ZZZZZ", name="?", kind="port", lat=0, lon=0, country="ZZ")
    with pytest.raises(UnknownPlaceError, match="ZZZZZ"):
        plan(network, RouteRequest(bogus, place(network, "SGSIN")))


def test_bad_constraints_are_clear_errors(network: Network) -> None:
    with pytest.raises(RouteError, match="unknown passage"):
        plan(network, _sea(network, "NLRTM", "SGSIN", avoid_passages=("atlantis",)))
    with pytest.raises(RouteError, match="unknown mode"):
        plan(network, RouteRequest(place(network, "NLRTM"), place(network, "SGSIN"), modes=("teleport",)))
    with pytest.raises(RouteError, match="unknown country"):
        point(network, 1, 2, "QQ")


def test_nothing_left_names_the_constraint(network: Network) -> None:
    answer = plan(network, _sea(network, "NLRTM", "SGSIN", weight_kg=400_000))
    assert answer.routes == ()
    assert answer.refused_by == "weight_kg: 400000"
    answer = plan(network, _sea(network, "NLRTM", "SGSIN", avoid_countries=("SG",)))
    assert answer.routes == () and answer.refused_by == "avoid_countries: SG"
    answer = plan(network, RouteRequest(place(network, "NLRTM"), place(network, "SGSIN"), modes=("road",)))
    assert answer.routes == () and answer.refused_by == "modes: road"


def test_airport_to_airport(network: Network) -> None:
    route = plan(network, RouteRequest(place(network, "air:FRA"), place(network, "HKG"), criterion="time", k=1)).routes[
        0
    ]
    assert [leg.mode for leg in route.legs] == ["air"]
    assert 9_000 < route.distance_km < 10_000


def test_find_places(network: Network) -> None:
    assert find_places(network, "nlrtm", 5)[0].code == "NLRTM"
    assert find_places(network, "AMS", 5)[0].code == "air:AMS"
    names = [p.name for p in find_places(network, "rotterdam", 10)]
    assert "Rotterdam" in names
    assert find_places(network, "  ", 5) == []


def test_road_lanes_name_the_countries_they_cross(network: Network) -> None:
    munich = point(network, 48.14, 11.58, "DE", "Munich")
    milan = point(network, 45.46, 9.19, "IT", "Milan")
    by_road = plan(network, RouteRequest(origin=munich, destination=milan, modes=("road",), k=1))
    assert by_road.routes[0].legs[0].countries == ("DE", "AT", "CH", "IT")
    around = plan(network, RouteRequest(origin=munich, destination=milan, modes=("road",), avoid_countries=("AT",)))
    assert not around.routes and around.refused_by  # no road lane from Munich to Milan misses Austria
    for route in plan(network, RouteRequest(origin=munich, destination=milan, avoid_countries=("AT", "CH"))).routes:
        assert not {"AT", "CH"} & set(route.countries)
