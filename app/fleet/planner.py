"""Redeployment planning as a pure function: where movable modules should go as demand shifts.

No I/O: the caller gives the movable modules (already filtered to the ones it lets move), every site's
capacity and demand, the move costs between sites it has routes for, the handling cost of one move
(decommission + commission) and the export decisions as data; the answer is a plan of moves and the
demand left unmet, with the reason it is unmet.

The model is a min-cost flow (networkx network simplex) on a DiGraph:

    group g (supply n) --stay, 0-----------------------------------------------------------> sink
    group g --move, w--> class (site, spec, kW) --class--> demand (site, spec | any) --served, -P-->
        site --slots--> sink

* A *group* is the modules the plan cannot tell apart: same site, country, spec, power, GPU count,
  sovereignty and export class (only the serial differs). One node of supply n instead of n nodes
  keeps the graph small (40 surplus modules of one spec at a site are one node), same optimum.
* Demand is per (site, spec); `spec_code=None` is demand for any spec. GPU demand becomes modules of
  its spec: a site's GPUs of one spec summed, then ceil(gpus / gpu_count), with the smallest gpu_count
  among the movable modules of that spec, so the modules planned are enough whichever of them come
  (a spec with no movable module cannot be converted; its demand is unmet). GPU demand needs a spec.
* Arc weights must be integers for network simplex to be exact, so the criterion's value of a move
  (route + handling) is scaled and rounded: cost to cents, hours to seconds, CO2 kg to grams (SCALE).
  The plan is optimal to within half a cent / second / gram per move.
* Unmet demand is allowed: each served unit earns -P, which is a penalty P on each unit left unmet up
  to a constant (the stay arcs keep the flow feasible whatever is asked). P exceeds the weight of any
  plan, so the plan serves as many demand units as any feasible plan can, and among those it is the
  cheapest under the criterion (lexicographic). "time" minimises the sum of move hours (a makespan is
  not a flow cost); the plan also reports the longest move.
* Slots are unit capacities (a module takes one). Power is not: modules of different power sharing a
  site's budget is a knapsack, which no flow expresses. Each (site, spec, power) class arc takes at
  most floor(free kW / its power) modules and a site at most floor(free kW / the least power that can
  reach it): a relaxation, exact wherever the modules that can reach a site draw the same power. When
  they differ and the flow's answer overdraws a site, the same network is solved as an integer program
  (scipy's HiGHS) with each mixed-power site's budget as a row over its class arcs: an exact optimum
  (solver "milp"). That gets slow on big networks (HiGHS: ~1.5 s at 12k arcs, 3-7 s at 26k), so above
  MILP_MAX_ARCS the flow's answer is repaired instead (solver "repair"): class caps that fit every mixed
  site's budget together, from the relaxed answer, and one more flow solve. Always within power, but
  not proven best: on 10k-module benchmark fleets it served 0.2-0.5% fewer units than the optimum.
* Free capacity is the budget less what is used; a module leaving a site does not free its slot or
  power for modules arriving there (they may arrive first).
* Sovereignty (a sovereign module stays in its country) is checked here; export rules are the
  caller's decisions, one per (export class, destination country): None allows, a string bars and is
  the reason given (the caller decides what a "license required" is). A pair the mapping lacks is
  barred: no decision is never a silent pass. In-country moves are looked up like any other.
* A missing (from site, to site) pair in `costs` means no route: the service gives routes only to
  each surplus site's nearest candidate destinations, so the arcs stay few.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

Criterion = Literal["cost", "time", "co2"]
Solver = Literal["flow", "milp", "repair"]
CRITERIA: tuple[Criterion, ...] = ("cost", "time", "co2")
# Integer units the arc weights are counted in: cents, seconds, grams.
SCALE: dict[str, int] = {"cost": 100, "time": 3600, "co2": 1000}
POWER_EPS_KW = 1e-9  # float slack when comparing drawn power with a budget
# Above this many arcs an overdrawn mixed-power site is repaired rather than solved exactly (see above).
MILP_MAX_ARCS = 15_000
FLOAT_EXACT = 2**52  # integers a float objective holds exactly, with a bit to spare

# (export class, destination country ISO2) -> None (allowed) or the reason it is barred
ExportDecisions = Mapping[tuple[str, str], str | None]


# --- inputs and answers -----------------------------------------------------------------------


class MovableModule(msgspec.Struct, frozen=True):
    serial: str
    spec_code: str
    gpu_count: int
    power_kw: float
    site: str  # the site it is at now
    country: str  # that site's ISO 3166-1 alpha-2
    sovereign: bool = False  # must stay in its country
    export_class: str = ""  # ECCN, the key of the export decisions


class Demand(msgspec.Struct, frozen=True):
    spec_code: str | None  # None: any spec
    modules: int = 0
    gpus: int = 0  # needs a spec: converted to modules of it


class SiteCapacity(msgspec.Struct, frozen=True):
    code: str
    country: str
    power_kw: float  # budget
    slots: int
    used_power_kw: float = 0.0
    used_slots: int = 0
    demand: tuple[Demand, ...] = ()


class MoveCost(msgspec.Struct, frozen=True):
    cost_usd: float
    hours: float
    co2_kg: float
    distance_km: float
    route: str = ""  # in words, e.g. "road-sea-road via suez"


class Move(msgspec.Struct, frozen=True):
    serial: str
    from_site: str
    to_site: str
    cost_usd: float  # route + handling
    hours: float
    co2_kg: float
    distance_km: float
    route: str


class Unmet(msgspec.Struct, frozen=True):
    site: str
    spec_code: str | None
    modules: int  # modules short
    gpus: int  # GPUs short, when the demand was in GPUs
    reason: str


class RedeploymentPlan(msgspec.Struct, frozen=True):
    moves: tuple[Move, ...]
    total_cost_usd: float
    total_hours: float  # the sum over moves
    max_hours: float  # the longest move
    total_co2_kg: float
    unmet: tuple[Unmet, ...]
    criterion: Criterion
    served: int  # demand units (modules) met
    demanded: int  # demand units asked for, GPU demand converted
    solver: Solver  # "flow" or "milp": optimal; "repair": feasible, maybe not optimal (see the module doc)


class PlanError(ValueError):
    """Inputs that cannot be planned as given (unknown criterion, negative cost, GPU demand without spec)."""


# --- planning ---------------------------------------------------------------------------------


def plan_redeployment(
    modules: Iterable[MovableModule],
    sites: Iterable[SiteCapacity],
    costs: Mapping[tuple[str, str], MoveCost],
    handling: MoveCost,
    allowed: ExportDecisions,
    criterion: Criterion = "cost",
) -> RedeploymentPlan:
    """The moves that serve the most demand units, and among those the cheapest under `criterion`,
    with every constraint kept; the demand left unmet, each (site, spec) with its reason."""
    if criterion not in CRITERIA:
        raise PlanError(f"unknown criterion {criterion!r}; criteria: {', '.join(CRITERIA)}")
    ordered = sorted(modules, key=lambda m: m.serial)
    site_list = list(sites)
    _check(ordered, site_list, costs, handling)
    p = _Planner(ordered, site_list, costs, handling, allowed, criterion)
    p.build()
    flow, solver = p.solve()
    moves = p.moves(flow)
    return RedeploymentPlan(
        moves=tuple(moves),
        total_cost_usd=float(sum(mv.cost_usd for mv in moves)),
        total_hours=float(sum(mv.hours for mv in moves)),
        max_hours=float(max((mv.hours for mv in moves), default=0.0)),
        total_co2_kg=float(sum(mv.co2_kg for mv in moves)),
        unmet=tuple(p.unmet(flow, moves)),
        criterion=criterion,
        served=sum(flow[d.served_arc] for d in p.demand if d.served_arc >= 0),
        demanded=sum(d.units for d in p.demand) + sum(u.modules for u in p.unconverted),
        solver=solver,
    )


def _check(
    modules: list[MovableModule],
    sites: list[SiteCapacity],
    costs: Mapping[tuple[str, str], MoveCost],
    handling: MoveCost,
) -> None:
    codes = Counter(s.code for s in sites)
    serials = Counter(m.serial for m in modules)
    twice = sorted(c for c, n in (*codes.items(), *serials.items()) if n > 1)
    if twice:
        raise PlanError(f"sites or modules given twice: {', '.join(twice[:5])}")
    for s in sites:
        for d in s.demand:
            if d.modules < 0 or d.gpus < 0:
                raise PlanError(f"site {s.code}: negative demand {d}")
            if d.gpus and d.spec_code is None:
                raise PlanError(f"site {s.code}: GPU demand needs a spec (specs differ in GPUs per module)")
    for m in modules:
        if not (m.power_kw >= 0 and m.gpu_count >= 0):  # NaN fails too
            raise PlanError(f"module {m.serial}: negative power or GPU count")
    for pair, move in (*costs.items(), (("handling", ""), handling)):
        values = (move.cost_usd, move.hours, move.co2_kg, move.distance_km)
        if not all(v >= 0 and math.isfinite(v) for v in values):  # weights must round to integers
            raise PlanError(f"negative or non-finite move cost for {pair}")


@dataclass
class _Group:
    """Modules the plan cannot tell apart: same site, country, spec, power, GPUs, sovereignty and
    export class. One node of supply n instead of n nodes: a much smaller graph, the same optimum."""

    node: int
    modules: list[MovableModule]  # by serial

    @property
    def head(self) -> MovableModule:
        return self.modules[0]


@dataclass
class _Demand:
    site: SiteCapacity
    spec: str | None
    units: int  # modules asked for
    module_part: int  # of which asked as modules; the rest came from GPUs
    gpus: int
    gpus_per_module: int
    node: int
    served_arc: int = -1
    reach: list[int] = field(default_factory=list)  # move arcs of the groups that can serve it
    barred: Counter[str] = field(default_factory=Counter)  # reason -> modules with a route but barred
    unfit: int = 0  # modules with a route, not barred, too many for the site's free slots or power


@dataclass
class _Site:
    """A site with demand, as the network sees it."""

    site: SiteCapacity
    slots: int  # free
    power: float  # free, kW
    demand: dict[str | None, _Demand] = field(default_factory=dict)
    classes: dict[tuple[str, float], tuple[int, int]] = field(default_factory=dict)  # (spec, kW) -> node, arc


@dataclass
class _Arc:
    group: _Group
    to: _Site
    move: MoveCost


SINK = 0


@dataclass
class _Planner:
    """The network (arcs as parallel lists, nodes as ints, node 0 the sink) and what it stands for.

    Arriving modules pass through a class arc per (site, spec, power) before reaching the demand they
    serve (their spec's, or the site's any-spec demand). A class arc carries how many modules of one
    power a site takes, so a site's power budget is a linear row over its class arcs only."""

    modules: list[MovableModule]
    sites: list[SiteCapacity]
    costs: Mapping[tuple[str, str], MoveCost]
    handling: MoveCost
    allowed: ExportDecisions
    criterion: Criterion
    tails: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)
    caps: list[int] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    supply: list[int] = field(default_factory=lambda: [0])  # by node
    groups: list[_Group] = field(default_factory=list)
    demand: list[_Demand] = field(default_factory=list)
    unconverted: list[Unmet] = field(default_factory=list)  # GPU demand for a spec with no module
    moving: dict[int, _Arc] = field(default_factory=dict)  # move arc -> what it moves where
    targets: dict[str, _Site] = field(default_factory=dict)  # sites with demand, by code
    penalty: int = 0  # P: what a served unit earns

    def node(self, supply: int = 0) -> int:
        self.supply.append(supply)
        return len(self.supply) - 1

    def arc(self, tail: int, head: int, cap: int, weight: int = 0) -> int:
        self.tails.append(tail)
        self.heads.append(head)
        self.caps.append(cap)
        self.weights.append(weight)
        return len(self.tails) - 1

    def mixed(self, to: _Site) -> bool:
        return len({kw for _, kw in to.classes}) > 1

    # -- the network --

    def build(self) -> None:
        found: dict[tuple[object, ...], _Group] = {}
        for m in self.modules:  # sorted by serial, so each group is too
            key = (m.site, m.country, m.spec_code, m.power_kw, m.gpu_count, m.sovereign, m.export_class)
            if key not in found:
                found[key] = _Group(self.node(), [])
                self.groups.append(found[key])
            found[key].modules.append(m)
            self.supply[found[key].node] += 1
        self.supply[SINK] = -len(self.modules)
        self._demand()
        by_origin: dict[str, list[tuple[str, MoveCost]]] = defaultdict(list)
        for (origin, destination), move in sorted(self.costs.items(), key=lambda kv: kv[0]):  # a stable order
            if origin != destination and destination in self.targets:  # never to its own site
                by_origin[origin].append((destination, move))
        scale = SCALE[self.criterion]
        handling = _value(self.handling, self.criterion)
        for group in self.groups:
            m, n = group.head, len(group.modules)
            for destination, move in by_origin.get(m.site, ()):
                to = self.targets[destination]
                served = [d for spec, d in to.demand.items() if spec is None or spec == m.spec_code]
                if not served:
                    continue
                reason = _barred(m, to.site, self.allowed)
                if reason is not None:
                    for d in served:
                        d.barred[reason] += n
                elif min(to.slots, _fits(to.power, m.power_kw)) <= 0:
                    for d in served:
                        d.unfit += n
                else:
                    weight = round((_value(move, self.criterion) + handling) * scale)
                    a = self.arc(group.node, self._class(to, m, served), n, weight)
                    self.moving[a] = _Arc(group, to, move)
                    for d in served:
                        d.reach.append(a)
            self.arc(group.node, SINK, n)  # it stays where it is
        self._serve()

    def _demand(self) -> None:
        """Demand merged per (site, spec), GPU demand converted to modules of the spec, using the
        smallest GPU count among its movable modules (enough whichever of them come)."""
        per: dict[str, int] = {}
        for m in self.modules:
            per[m.spec_code] = min(per.get(m.spec_code, m.gpu_count), m.gpu_count)
        for s in self.sites:
            asked: dict[str | None, list[int]] = {}
            for d in s.demand:
                part = asked.setdefault(d.spec_code, [0, 0])
                part[0] += d.modules
                part[1] += d.gpus
            for spec, (mods, gpus) in asked.items():
                each = per.get(spec, 0) if spec is not None else 0
                if gpus and each <= 0:
                    self.unconverted.append(Unmet(s.code, spec, mods, gpus, f"no movable module of spec {spec}"))
                    continue
                units = mods + (math.ceil(gpus / each) if gpus else 0)
                if units <= 0:
                    continue
                if s.code not in self.targets:
                    self.targets[s.code] = _Site(
                        s, max(0, s.slots - s.used_slots), max(0.0, s.power_kw - s.used_power_kw)
                    )
                d = _Demand(s, spec, units, mods, gpus, each, node=self.node())
                self.targets[s.code].demand[spec] = d
                self.demand.append(d)

    def _class(self, to: _Site, m: MovableModule, served: list[_Demand]) -> int:
        """The entry node of the site's class of (spec, power) `m` is in, made on first use."""
        key = (m.spec_code, m.power_kw)
        if key not in to.classes:
            entry, leave = self.node(), self.node()
            cap = min(to.slots, _fits(to.power, m.power_kw), sum(d.units for d in served))
            to.classes[key] = (entry, self.arc(entry, leave, cap))
            for d in served:
                self.arc(leave, d.node, d.units)
        return to.classes[key][0]

    def _serve(self) -> None:
        """Served arcs (demand -> site, at -P a unit) and each site's arc to the sink."""
        # P above the weight of any plan (a move serves a unit, so there are at most
        # min(modules, units asked) moves): one more unit served beats any saving.
        heaviest = max((self.weights[a] for a in self.moving), default=0)
        self.penalty = heaviest * min(len(self.modules), sum(d.units for d in self.demand)) + 1
        for to in self.targets.values():
            if not to.classes:
                continue
            node = self.node()
            self.arc(node, SINK, min(to.slots, _fits(to.power, min(kw for _, kw in to.classes))))
            for d in to.demand.values():
                d.served_arc = self.arc(d.node, node, min(d.units, to.slots), -self.penalty)

    # -- solving --

    def solve(self) -> tuple[list[int], Solver]:
        flow = self._flow(self.caps)
        if all(kw <= to.power + POWER_EPS_KW for to, kw in self.power_drawn(flow)):
            return flow, "flow"
        if len(self.tails) <= MILP_MAX_ARCS:
            return self._milp(), "milp"
        return self._flow(self._repaired(flow)), "repair"

    def _repaired(self, flow: list[int]) -> list[int]:
        """Class caps that no flow can overdraw: at every mixed-power site, the relaxed plan's class
        counts (cut, highest power first, where they overdraw) plus what the power left over takes,
        lowest power first. Each site's caps then fit its budget together, so one more flow solve
        gives a feasible plan; it keeps the relaxed plan's mix of modules, which need not be the best."""
        caps = list(self.caps)
        for to in self.targets.values():
            if not self.mixed(to):
                continue
            left = to.power + POWER_EPS_KW
            ranked = sorted(to.classes.items(), key=lambda kv: kv[0][1])  # by power
            for (_, kw), (_, arc) in ranked:
                caps[arc] = min(flow[arc], math.floor(left / kw)) if kw > 0 else flow[arc]
                left -= caps[arc] * kw
            for (_, kw), (_, arc) in ranked:
                extra = self.caps[arc] - caps[arc]
                if kw > 0:
                    extra = min(extra, math.floor(left / kw))
                caps[arc] += extra
                left -= extra * kw
        return caps

    def _flow(self, caps: list[int]) -> list[int]:
        graph = nx.DiGraph()
        graph.add_nodes_from((n, {"demand": -s}) for n, s in enumerate(self.supply))
        graph.add_edges_from(
            (t, h, {"capacity": c, "weight": w})
            for t, h, c, w in zip(self.tails, self.heads, caps, self.weights, strict=True)
        )
        _, flow = nx.network_simplex(graph)
        return [flow[t][h] for t, h in zip(self.tails, self.heads, strict=True)]

    def power_drawn(self, flow: list[int]) -> Iterable[tuple[_Site, float]]:
        for to in self.targets.values():
            yield to, sum(flow[arc] * kw for (_, kw), (_, arc) in to.classes.items())

    def _milp(self) -> list[int]:
        """The same network and weights as an integer program (HiGHS), each mixed-power site's power
        budget a row over its class arcs. Only those class arcs need be integers: once they are, the
        rest is a flow with integral capacities, whose optimal vertices are integral (checked; all
        arcs are made integers if HiGHS's answer is not). The weights are integers; while P times the
        units asked stays under 2**52 the objective is exact in floats and one solve does; beyond, two
        solves (most units served, then least weight serving that many)."""
        arcs, nodes = len(self.tails), len(self.supply)
        cols = np.arange(arcs)
        incidence = coo_matrix(
            (np.r_[np.ones(arcs), -np.ones(arcs)], (np.r_[self.tails, self.heads], np.r_[cols, cols])),
            shape=(nodes, arcs),
        )
        supply = np.array(self.supply, dtype=float)
        mixed = [to for to in self.targets.values() if self.mixed(to)]
        r, c, v = [], [], []
        for i, to in enumerate(mixed):
            for (_, kw), (_, arc) in to.classes.items():
                r.append(i)
                c.append(arc)
                v.append(kw)
        power = coo_matrix((v, (r, c)), shape=(len(mixed), arcs))
        constraints = [
            LinearConstraint(incidence, supply, supply),
            LinearConstraint(power, -np.inf, [to.power + POWER_EPS_KW for to in mixed]),
        ]
        bounds = Bounds(np.zeros(arcs), np.array(self.caps, dtype=float))
        integral = np.zeros(arcs)
        integral[c] = 1.0
        weights = np.array(self.weights, dtype=float)
        served = [d.served_arc for d in self.demand if d.served_arc >= 0]
        if self.penalty * sum(d.units for d in self.demand) >= FLOAT_EXACT:
            serving = np.zeros(arcs)
            serving[served] = 1.0
            most = self._integer_program(-serving, constraints, bounds, integral)
            constraints.append(LinearConstraint(serving[np.newaxis, :], sum(most[a] for a in served), np.inf))
            weights[served] = 0.0
        return self._integer_program(weights, constraints, bounds, integral)

    @staticmethod
    def _integer_program(
        objective: np.ndarray, constraints: list[LinearConstraint], bounds: Bounds, integral: np.ndarray
    ) -> list[int]:
        for attempt in (integral, np.ones(len(objective))):  # every arc an integer if the flow came fractional
            found = milp(
                objective, constraints=constraints, bounds=bounds, integrality=attempt, options={"mip_rel_gap": 0.0}
            )
            if not found.success:
                raise RuntimeError(f"redeployment MILP failed: {found.message}")
            if np.abs(found.x - np.round(found.x)).max() < 1e-6:
                break
        return [round(x) for x in found.x]

    # -- the answer --

    def moves(self, flow: list[int]) -> list[Move]:
        taken: Counter[int] = Counter()
        h = self.handling
        moves = []
        for a in sorted(self.moving):  # arcs were made per group in destination order: a stable choice
            arc = self.moving[a]
            start = taken[arc.group.node]
            taken[arc.group.node] += flow[a]
            mv = arc.move
            moves += [
                Move(
                    serial=m.serial,
                    from_site=m.site,
                    to_site=arc.to.site.code,
                    cost_usd=float(mv.cost_usd + h.cost_usd),
                    hours=float(mv.hours + h.hours),
                    co2_kg=float(mv.co2_kg + h.co2_kg),
                    distance_km=float(mv.distance_km + h.distance_km),
                    route=mv.route,
                )
                for m in arc.group.modules[start : start + flow[a]]
            ]
        return sorted(moves, key=lambda mv: mv.serial)

    def unmet(self, flow: list[int], moves: list[Move]) -> list[Unmet]:
        arriving = Counter(mv.to_site for mv in moves)
        drawn = {to.site.code: kw for to, kw in self.power_drawn(flow)}
        staying = {g.node: len(g.modules) for g in self.groups}
        for a, arc in self.moving.items():
            staying[arc.group.node] -= flow[a]
        total = Counter(m.spec_code for m in self.modules)
        here = Counter((m.site, m.spec_code) for m in self.modules)
        out = list(self.unconverted)
        for d in self.demand:
            served = flow[d.served_arc] if d.served_arc >= 0 else 0
            short = d.units - served
            if short <= 0:
                continue
            code = d.site.code
            if d.spec is None:
                elsewhere = len(self.modules) - sum(n for (s, _), n in here.items() if s == code)
            else:
                elsewhere = total[d.spec] - here[(code, d.spec)]
            # GPUs short: units served count against the part asked as modules first
            gpus = max(0, d.gpus - max(0, served - d.module_part) * d.gpus_per_module) if d.gpus else 0
            reason = self._reason(d, elsewhere, staying, arriving[code], drawn.get(code, 0.0))
            out.append(Unmet(code, d.spec, short, gpus, reason))
        return sorted(out, key=lambda u: (u.site, u.spec_code or ""))

    def _reason(self, d: _Demand, elsewhere: int, staying: dict[int, int], arriving: int, drawn: float) -> str:
        what = f"spec {d.spec}" if d.spec is not None else "any spec"
        if elsewhere == 0:
            return f"no movable module of {what}"
        to = self.targets[d.site.code]
        if to.slots == 0:
            return f"site full: no free slot ({d.site.slots} slots, {d.site.used_slots} used)"
        reachable = sum(len(self.moving[a].group.modules) for a in d.reach)
        no_route = elsewhere - reachable - sum(d.barred.values()) - d.unfit
        why = [f"{reason} ({n})" for reason, n in sorted(d.barred.items())]
        if no_route:
            why.append(f"no route ({no_route})")
        if reachable == 0 and d.unfit == 0:
            return f"no movable module of {what} can come: " + "; ".join(why)
        if reachable == 0:
            return f"site full: {to.power:g} kW of power free, too little for any module of {what} that can come"
        if arriving >= to.slots:
            return f"site full: the plan fills all {to.slots} free slots"
        waiting = [self.moving[a].group.head.power_kw for a in d.reach if staying[self.moving[a].group.node] > 0]
        left = to.power - drawn
        if waiting and left + POWER_EPS_KW < min(waiting):
            return f"site full: {left:g} kW of power left, a module of {what} that can come needs {min(waiting):g} kW"
        others = f"; the others: {'; '.join(why)}" if why else ""
        return f"not enough movable modules of {what}: all {reachable} that can come are placed{others}"


def _fits(power_kw: float, module_kw: float) -> int:
    """How many modules of `module_kw` a power budget takes (no bound for one drawing nothing)."""
    if module_kw <= 0:
        return 1 << 40
    return math.floor((power_kw + POWER_EPS_KW) / module_kw)


def _value(move: MoveCost, criterion: Criterion) -> float:
    return move.cost_usd if criterion == "cost" else move.hours if criterion == "time" else move.co2_kg


def _barred(m: MovableModule, site: SiteCapacity, allowed: ExportDecisions) -> str | None:
    if m.sovereign and site.country != m.country:
        return f"sovereign: must stay in {m.country}"
    key = (m.export_class, site.country)
    if key not in allowed:
        return f"export: no decision for {m.export_class or 'unclassified'} to {site.country}"
    reason = allowed[key]
    return None if reason is None else f"export: {reason}"
