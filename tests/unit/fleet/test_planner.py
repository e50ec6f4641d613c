"""The redeployment planner: each constraint on its own, then random small fleets against brute force."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.fleet import planner
from app.fleet.planner import (
    SCALE,
    Demand,
    MovableModule,
    MoveCost,
    PlanError,
    RedeploymentPlan,
    SiteCapacity,
    plan_redeployment,
)

NO_HANDLING = MoveCost(0, 0, 0, 0)
HANDLING = MoveCost(cost_usd=1_000, hours=24, co2_kg=50, distance_km=0)


def module(
    serial: str,
    spec: str = "X",
    site: str = "A",
    country: str = "DE",
    gpus: int = 8,
    kw: float = 40.0,
    sovereign: bool = False,
    eccn: str = "4A090.a",
) -> MovableModule:
    return MovableModule(serial, spec, gpus, kw, site, country, sovereign, eccn)


def site(
    code: str, country: str, *demand: Demand, power: float = 1_000.0, slots: int = 10, used_kw: float = 0, used: int = 0
) -> SiteCapacity:
    return SiteCapacity(code, country, power, slots, used_kw, used, tuple(demand))


def cost(usd: float, hours: float = 10, co2: float = 100, km: float = 100, route: str = "road") -> MoveCost:
    return MoveCost(usd, hours, co2, km, route)


def allow_all(*countries: str, eccns: tuple[str, ...] = ("4A090.a",)) -> dict[tuple[str, str], str | None]:
    return {(e, c): None for e in eccns for c in countries}


ALLOW = allow_all("DE", "FR", "NL", "CN")


def plan(
    modules: list[MovableModule],
    sites: list[SiteCapacity],
    costs: Mapping[tuple[str, str], MoveCost],
    allowed: Mapping[tuple[str, str], str | None] = ALLOW,
    criterion: planner.Criterion = "cost",
    handling: MoveCost = NO_HANDLING,
) -> RedeploymentPlan:
    return plan_redeployment(modules, sites, costs, handling, allowed, criterion)


def where(p: RedeploymentPlan) -> dict[str, str]:
    return {mv.serial: mv.to_site for mv in p.moves}


# --- the basics -------------------------------------------------------------------------------


def test_the_cheapest_module_goes_and_handling_is_added_to_each_move() -> None:
    modules = [module("M1", site="A"), module("M2", site="B")]
    sites = [site("C", "NL", Demand("X", 1))]
    costs = {("A", "C"): cost(900, route="road-sea-road"), ("B", "C"): cost(500, hours=30, co2=80, km=700)}
    p = plan(modules, sites, costs, handling=HANDLING)
    (move,) = p.moves
    assert (move.serial, move.from_site, move.to_site) == ("M2", "B", "C")
    assert (move.cost_usd, move.hours, move.co2_kg, move.distance_km) == (1_500, 54, 130, 700)
    assert move.route == "road"
    assert (p.total_cost_usd, p.total_hours, p.max_hours, p.total_co2_kg) == (1_500, 54, 54, 130)
    assert (p.served, p.demanded, p.unmet, p.solver, p.criterion) == (1, 1, (), "flow", "cost")


def test_serving_more_demand_comes_before_cost() -> None:
    # M1 alone to C is cheap; sending M1 to D and M2 to C serves both sites at a much higher cost
    modules = [module("M1", site="A"), module("M2", site="B")]
    sites = [site("C", "NL", Demand("X", 1)), site("D", "FR", Demand("X", 1))]
    costs = {("A", "C"): cost(1), ("A", "D"): cost(90_000), ("B", "C"): cost(80_000)}
    p = plan(modules, sites, costs)
    assert where(p) == {"M1": "D", "M2": "C"}
    assert p.served == 2


def test_a_module_is_never_moved_to_its_own_site() -> None:
    modules = [module("M1", site="A", country="NL")]
    sites = [site("A", "NL", Demand("X", 1))]
    p = plan(modules, sites, {("A", "A"): cost(0)})
    assert p.moves == ()
    (unmet,) = p.unmet
    assert unmet.reason == "no movable module of spec X"


def test_a_module_serves_its_own_spec_or_any_spec_demand_only() -> None:
    modules = [module("M1", spec="Y", site="A"), module("M2", spec="Y", site="A")]
    sites = [site("C", "NL", Demand("X", 1), Demand(None, 1))]
    p = plan(modules, sites, {("A", "C"): cost(10)})
    assert len(p.moves) == 1 and p.served == 1
    (unmet,) = p.unmet
    assert (unmet.site, unmet.spec_code, unmet.modules, unmet.reason) == ("C", "X", 1, "no movable module of spec X")


# --- sovereignty and export rules --------------------------------------------------------------


def test_a_sovereign_module_stays_in_its_country_even_when_cheaper_abroad() -> None:
    modules = [module("M1", site="A", country="DE", sovereign=True)]
    sites = [site("F", "FR", Demand("X", 1)), site("G", "DE", Demand("X", 1))]
    costs = {("A", "F"): cost(100), ("A", "G"): cost(5_000)}
    p = plan(modules, sites, costs)
    assert where(p) == {"M1": "G"}
    (unmet,) = p.unmet
    assert unmet.site == "F"
    assert unmet.reason == "no movable module of spec X can come: sovereign: must stay in DE (1)"


def test_an_export_barred_destination_is_never_chosen_and_the_rule_is_named() -> None:
    modules = [module("M1", site="A"), module("M2", site="A")]
    sites = [site("K", "CN", Demand("X", 2)), site("N", "NL", Demand("X", 1))]
    rule = "4A090.a to CN (D:5): denied, 15 CFR 744.23"
    allowed = {**ALLOW, ("4A090.a", "CN"): rule}
    p = plan(modules, sites, {("A", "K"): cost(10), ("A", "N"): cost(9_000)}, allowed=allowed)
    assert set(where(p).values()) == {"N"}
    (unmet,) = p.unmet
    assert (unmet.site, unmet.modules) == ("K", 2)
    assert unmet.reason == f"no movable module of spec X can come: export: {rule} (2)"


def test_a_destination_without_an_export_decision_is_barred() -> None:
    modules = [module("M1", site="A", eccn="5A992.c")]
    sites = [site("N", "NL", Demand("X", 1))]
    p = plan(modules, sites, {("A", "N"): cost(10)}, allowed=ALLOW)
    assert p.moves == ()
    assert p.unmet[0].reason == "no movable module of spec X can come: export: no decision for 5A992.c to NL (1)"


def test_no_route_is_a_reason_and_barred_modules_are_counted_beside_it() -> None:
    modules = [module("M1", site="A"), module("M2", site="B", sovereign=True)]
    sites = [site("F", "FR", Demand("X", 1))]
    p = plan(modules, sites, {("B", "F"): cost(10)})
    assert p.moves == ()
    assert p.unmet[0].reason == "no movable module of spec X can come: sovereign: must stay in DE (1); no route (1)"


# --- slots and power --------------------------------------------------------------------------


def test_free_slots_limit_the_modules_a_site_takes() -> None:
    modules = [module(f"M{i}", site="A") for i in range(5)]
    sites = [site("N", "NL", Demand("X", 5), slots=6, used=4)]
    p = plan(modules, sites, {("A", "N"): cost(10)})
    assert len(p.moves) == 2
    (unmet,) = p.unmet
    assert (unmet.modules, unmet.reason) == (3, "site full: the plan fills all 2 free slots")


def test_a_site_without_a_free_slot_takes_nothing() -> None:
    p = plan([module("M1")], [site("N", "NL", Demand("X", 1), slots=3, used=3)], {("A", "N"): cost(10)})
    assert p.moves == ()
    assert p.unmet[0].reason == "site full: no free slot (3 slots, 3 used)"


def test_free_power_limits_the_modules_a_site_takes() -> None:
    modules = [module(f"M{i}", site="A", kw=40.0) for i in range(4)]
    sites = [site("N", "NL", Demand("X", 4), power=150.0, used_kw=20.0)]  # 130 kW free: 3 modules
    p = plan(modules, sites, {("A", "N"): cost(10)})
    assert len(p.moves) == 3
    assert p.unmet[0].reason == "site full: 10 kW of power left, a module of spec X that can come needs 40 kW"


def test_a_module_drawing_more_than_the_free_power_cannot_come() -> None:
    p = plan([module("M1", kw=90.0)], [site("N", "NL", Demand("X", 1), power=80.0)], {("A", "N"): cost(10)})
    assert p.moves == ()
    assert p.unmet[0].reason == "site full: 80 kW of power free, too little for any module of spec X that can come"


def _mixed_power() -> tuple[list[MovableModule], list[SiteCapacity], dict[tuple[str, str], MoveCost]]:
    # 100 kW free at N: one Y (70 kW) and one X (40 kW) would be 110 kW; two X (80 kW) fit
    modules = [module("X1", kw=40.0, site="A"), module("X2", kw=40.0, site="B"), module("Y1", "Y", kw=70.0, site="A")]
    sites = [site("N", "NL", Demand("X", 2), Demand("Y", 1), power=100.0)]
    costs = {("A", "N"): cost(10), ("B", "N"): cost(5_000)}
    return modules, sites, costs


@pytest.mark.parametrize("stages", [1, 2])
def test_modules_of_different_power_never_overdraw_a_site(stages: int) -> None:
    modules, sites, costs = _mixed_power()
    # two stages (most served, then least weight) are what a fleet too big for one exact objective gets
    with mock.patch.object(planner, "FLOAT_EXACT", 2**52 if stages == 1 else 0):
        p = plan(modules, sites, costs)
    # the flow's relaxation takes the cheap X1 and Y1 (110 kW); the exact solve takes both X
    assert p.solver == "milp"
    assert sorted(where(p)) == ["X1", "X2"]
    assert p.served == 2
    (unmet,) = p.unmet
    assert unmet.spec_code == "Y"
    assert unmet.reason == "site full: 20 kW of power left, a module of spec Y that can come needs 70 kW"


def test_the_repair_used_for_large_fleets_keeps_power_too() -> None:
    modules, sites, costs = _mixed_power()
    with mock.patch.object(planner, "MILP_MAX_ARCS", 0):
        p = plan(modules, sites, costs)
    assert p.solver == "repair"
    assert sum(m.power_kw for m in modules if m.serial in where(p)) <= 100.0
    assert p.served >= 1


# --- GPU demand -------------------------------------------------------------------------------


def test_gpu_demand_becomes_modules_of_the_spec_rounded_up() -> None:
    modules = [module(f"M{i}", gpus=8, site="A") for i in range(5)]
    p = plan(modules, [site("N", "NL", Demand("X", gpus=20))], {("A", "N"): cost(10)})
    assert len(p.moves) == 3  # ceil(20 / 8)
    assert (p.served, p.demanded, p.unmet) == (3, 3, ())


def test_gpu_demand_short_is_reported_in_modules_and_gpus() -> None:
    modules = [module("M1", gpus=8, site="A"), module("M2", gpus=8, site="A")]
    p = plan(modules, [site("N", "NL", Demand("X", gpus=20))], {("A", "N"): cost(10)})
    (unmet,) = p.unmet
    assert (unmet.modules, unmet.gpus) == (1, 4)
    assert unmet.reason == "not enough movable modules of spec X: all 2 that can come are placed"


def test_gpu_demand_for_a_spec_without_movable_modules_is_unmet() -> None:
    p = plan([module("M1", spec="Y")], [site("N", "NL", Demand("X", gpus=16))], {("A", "N"): cost(10)})
    assert p.moves == ()
    (unmet,) = p.unmet
    assert (unmet.spec_code, unmet.modules, unmet.gpus, unmet.reason) == ("X", 0, 16, "no movable module of spec X")


def test_gpu_demand_needs_a_spec() -> None:
    with pytest.raises(PlanError, match="GPU demand needs a spec"):
        plan([module("M1")], [site("N", "NL", Demand(None, gpus=8))], {})


# --- criteria and bad input -------------------------------------------------------------------


@pytest.mark.parametrize(("criterion", "chosen"), [("cost", "S"), ("time", "F"), ("co2", "G")])
def test_the_criterion_changes_the_choice(criterion: planner.Criterion, chosen: str) -> None:
    # one module from each of three sites; the cheapest, the fastest and the cleanest differ
    modules = [module("MS", site="S"), module("MF", site="F"), module("MG", site="G")]
    costs = {
        ("S", "N"): cost(1_000, hours=300, co2=900),
        ("F", "N"): cost(9_000, hours=20, co2=3_000),
        ("G", "N"): cost(4_000, hours=200, co2=100),
    }
    p = plan(modules, [site("N", "NL", Demand("X", 1))], costs, criterion=criterion, handling=HANDLING)
    (move,) = p.moves
    assert move.from_site == chosen
    assert p.criterion == criterion


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"criterion": "distance"}, "unknown criterion"),
        ({"costs": {("A", "N"): cost(-1)}}, "negative or non-finite move cost"),
        ({"costs": {("A", "N"): cost(math.nan)}}, "negative or non-finite move cost"),
        ({"sites": [site("N", "NL"), site("N", "NL")]}, "given twice"),
        ({"modules": [module("M1"), module("M1")]}, "given twice"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "modules": [module("M1")],
        "sites": [site("N", "NL", Demand("X", 1))],
        "costs": {("A", "N"): cost(10)},
        "handling": NO_HANDLING,
        "allowed": ALLOW,
        "criterion": "cost",
    }
    with pytest.raises(PlanError, match=message):
        plan_redeployment(**{**args, **kwargs})  # type: ignore[arg-type]


# --- random small fleets against brute force --------------------------------------------------

SPEC_GPUS = {"X": 8, "Y": 4}
COUNTRIES = ("AA", "BB", "CC")
ECCNS = ("E1", "E2")


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[MovableModule], list[SiteCapacity], dict, dict, planner.Criterion]:
    n_sites = draw(st.integers(1, 4))
    sites = []
    for i in range(n_sites):
        demand = [
            draw(
                st.builds(Demand, st.sampled_from(["X", "Y"]), st.integers(0, 3), st.integers(0, 12))
                | st.builds(Demand, st.none(), st.integers(0, 3))
            )
            for _ in range(draw(st.integers(1, 2)))
        ]
        slots = draw(st.integers(1, 4))
        sites.append(
            SiteCapacity(
                f"S{i}",
                draw(st.sampled_from(COUNTRIES)),
                draw(st.sampled_from([30.0, 50.0, 60.0, 80.0, 100.0, 150.0, 1_000.0])),
                slots,
                draw(st.sampled_from([0.0, 10.0])),
                draw(st.integers(0, 1)),  # a site may be full
                tuple(demand),
            )
        )
    # modules sit at the sites, or at a surplus site "SX" with no demand of its own
    homes = {s.code: s.country for s in sites} | {"SX": "AA"}
    modules = []
    for i in range(draw(st.integers(1, 6))):
        home = draw(st.sampled_from(sorted(homes)))
        spec = draw(st.sampled_from(["X", "Y"]))
        modules.append(
            MovableModule(
                f"M{i}",
                spec,
                SPEC_GPUS[spec],
                draw(st.sampled_from([10.0, 20.0, 30.0, 45.0])),
                home,
                homes[home],
                draw(st.integers(0, 3)) == 0,  # sovereign
                draw(st.sampled_from(ECCNS)),
            )
        )
    costs = {}
    for o, d in itertools.permutations(sorted(homes), 2):
        if draw(st.integers(0, 9)) < 8:
            usd, hours, co2 = (draw(st.integers(0, 400)) / 4 for _ in range(3))
            costs[(o, d)] = MoveCost(usd, hours, co2, 100.0)
    allowed = {}
    for e in ECCNS:
        for c in COUNTRIES:
            verdict = draw(st.integers(0, 9))
            if verdict < 8:
                allowed[(e, c)] = None
            elif verdict < 9:
                allowed[(e, c)] = f"{e} to {c}: denied"  # 1 in 10 is missing: barred too
    return modules, sites, costs, allowed, draw(st.sampled_from(planner.CRITERIA))


def _units(sites: list[SiteCapacity], modules: list[MovableModule]) -> dict[str, dict[str | None, int]]:
    """Demand units per site and spec, as the planner defines them: a site's GPUs of one spec summed,
    then ceil(GPUs / the spec's GPUs per module)."""
    per = {s: min(m.gpu_count for m in modules if m.spec_code == s) for s in {m.spec_code for m in modules}}
    units: dict[str, dict[str | None, int]] = {}
    for s in sites:
        asked: dict[str | None, tuple[int, int]] = {}
        for d in s.demand:
            mods, gpus = asked.get(d.spec_code, (0, 0))
            asked[d.spec_code] = (mods + d.modules, gpus + d.gpus)
        for spec, (mods, gpus) in asked.items():
            if gpus and spec not in per:
                continue  # cannot be converted: no module of that spec exists to serve it anyway
            n = mods + (math.ceil(gpus / per[spec]) if gpus and spec is not None else 0)
            if n:
                units.setdefault(s.code, {})[spec] = n
    return units


def _served(arrivals: dict[str, Counter[str]], units: dict[str, dict[str | None, int]]) -> int:
    """The most demand units the modules arriving at each site can serve (own spec first, then any)."""
    total = 0
    for code, specs in arrivals.items():
        asked = units.get(code, {})
        own = sum(min(n, asked.get(spec, 0)) for spec, n in specs.items())
        overflow = sum(max(0, n - asked.get(spec, 0)) for spec, n in specs.items())
        total += own + min(overflow, asked.get(None, 0))
    return total


def _value(move: MoveCost, criterion: str) -> float:
    return {"cost": move.cost_usd, "time": move.hours, "co2": move.co2_kg}[criterion]


def _feasible(
    assignment: dict[str, str],
    modules: list[MovableModule],
    sites: list[SiteCapacity],
    costs: dict,
    allowed: dict,
    units: dict[str, dict[str | None, int]],
) -> bool:
    by_serial = {m.serial: m for m in modules}
    by_code = {s.code: s for s in sites}
    for serial, to in assignment.items():
        m, s = by_serial[serial], by_code.get(to)
        if s is None or to == m.site or (m.site, to) not in costs:
            return False
        if m.sovereign and s.country != m.country:
            return False
        if (m.export_class, s.country) not in allowed or allowed[(m.export_class, s.country)] is not None:
            return False
        if m.spec_code not in units.get(to, {}) and None not in units.get(to, {}):
            return False
    for s in sites:
        arriving = [by_serial[serial] for serial, to in assignment.items() if to == s.code]
        if len(arriving) > max(0, s.slots - s.used_slots):
            return False
        if sum(m.power_kw for m in arriving) > max(0.0, s.power_kw - s.used_power_kw) + 1e-9:
            return False
    return True


def _brute_force(
    modules: list[MovableModule], sites: list[SiteCapacity], costs: dict, allowed: dict, criterion: str
) -> tuple[int, float]:
    """(most units served, least total criterion for that many) over every assignment of modules to
    stay or go to one site, each constraint checked."""
    units = _units(sites, modules)
    options = [
        [None, *(s.code for s in sites if _feasible({m.serial: s.code}, modules, sites, costs, allowed, units))]
        for m in modules
    ]
    best = (0, 0.0)
    for choice in itertools.product(*options):
        assignment = {m.serial: to for m, to in zip(modules, choice, strict=True) if to is not None}
        if not _feasible(assignment, modules, sites, costs, allowed, units):
            continue
        arrivals: dict[str, Counter[str]] = {}
        for m in modules:
            if m.serial in assignment:
                arrivals.setdefault(assignment[m.serial], Counter())[m.spec_code] += 1
        served = _served(arrivals, units)
        total = sum(
            _value(costs[(m.site, assignment[m.serial])], criterion) + _value(HANDLING, criterion)
            for m in modules
            if m.serial in assignment
        )
        if served > best[0] or (served == best[0] and total < best[1]):
            best = (served, total)
    return best


def _check_plan(
    p: RedeploymentPlan, modules: list[MovableModule], sites: list[SiteCapacity], costs: dict, allowed: dict
) -> int:
    """Assert the plan keeps every constraint and adds up; the units it serves."""
    units = _units(sites, modules)
    assignment = {mv.serial: mv.to_site for mv in p.moves}
    assert len(assignment) == len(p.moves)
    assert _feasible(assignment, modules, sites, costs, allowed, units)
    by_serial = {m.serial: m for m in modules}
    arrivals: dict[str, Counter[str]] = {}
    for mv in p.moves:
        m = by_serial[mv.serial]
        assert mv.from_site == m.site
        assert mv.cost_usd == pytest.approx(costs[(m.site, mv.to_site)].cost_usd + HANDLING.cost_usd)
        arrivals.setdefault(mv.to_site, Counter())[m.spec_code] += 1
    served = _served(arrivals, units)
    assert p.served == served == len(p.moves)  # a module is moved only to serve a unit
    assert p.demanded - p.served == sum(u.modules for u in p.unmet)
    assert p.total_cost_usd == pytest.approx(sum(mv.cost_usd for mv in p.moves))
    assert p.max_hours == max((mv.hours for mv in p.moves), default=0.0)
    return served


@settings(max_examples=200, deadline=None)
@given(fleet=fleets())
def test_the_plan_is_feasible_and_never_worse_than_brute_force(fleet: tuple) -> None:
    modules, sites, costs, allowed, criterion = fleet
    p = plan_redeployment(modules, sites, costs, HANDLING, allowed, criterion)
    served = _check_plan(p, modules, sites, costs, allowed)
    best_served, best_total = _brute_force(modules, sites, costs, allowed, criterion)
    assert served == best_served
    total = sum(_value(mv, criterion) for mv in p.moves)
    # arc weights are rounded to cents / seconds / grams: half a unit per move either way
    assert total <= best_total + len(modules) / SCALE[criterion] + 1e-9


@settings(max_examples=100, deadline=None)
@given(fleet=fleets())
def test_the_repair_for_large_fleets_is_feasible(fleet: tuple) -> None:
    modules, sites, costs, allowed, criterion = fleet
    with mock.patch.object(planner, "MILP_MAX_ARCS", 0):
        p = plan_redeployment(modules, sites, costs, HANDLING, allowed, criterion)
    served = _check_plan(p, modules, sites, costs, allowed)
    assert served <= _brute_force(modules, sites, costs, allowed, criterion)[0]
