"""A large, realistic fleet for scale work: `afm demo generate --modules 100000` (about 100 events a module).

Sites, factories, stations and specs are the demo fixtures' (loaded idempotently through app.demo). Each
module gets a spec, a factory and a final state in realistic proportions, and a history that walks the
lifecycle the way the services write it: registration, the assembly scan and part installs, burn-in runs
(some fail and go through rework), packing with its shipment, documents, custody hand-offs and legs,
delivery, the site's checklists answered item by item, validation, entry into service with its
certificate, service scans and the odd hold, decommissioning with sanitisation, redeployment to a second
site or retirement. Times increase along each history and end before `now`.

The chain is the ledger's: each event's hash is SHA-256(prev_hash || canonical parts) through
app.core.ledger.domain.canonical_parts, so `afm audit verify` passes, and each module's projection
(state, version, head hash, site, hold) is what replaying its events gives.

Writes go through bulk paths: COPY (asyncpg copy_records_to_table) on PostgreSQL, from several worker
processes when the fleet is large; executemany in one transaction per batch on SQLite. Events, and the
run numbers they carry, are the only record of burn-in runs, shipments and checklists: their own tables
are not filled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import click
import msgspec

Progress = Callable[[int, int], None]
Row = tuple[Any, ...]

BATCH = 500  # modules per transaction: about 50 000 events, a few tens of MB of rows in memory
PARALLEL_FROM = 5000  # fleets smaller than this are written by one process (worker start-up costs seconds)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
EVENT_COLUMNS = (
    "module_id",
    "seq",
    "type",
    "actor",
    "role",
    "at",
    "place",
    "request_id",
    "payload",
    "prev_hash",
    "hash",
)
MODULE_COLUMNS = (
    "id",
    "serial",
    "spec_id",
    "factory_id",
    "site_id",
    "state",
    "hold_return_state",
    "hold_reason",
    "sovereign",
    "version",
    "head_hash",
    "created_at",
    "updated_at",
)

# Where a fleet that has run for a few years stands: most modules serve, a pipeline at the factory and
# on the way, some retired. Weights in percent.
STATE_MIX: dict[str, float] = {
    "planned": 2.0,
    "assembling": 3.0,
    "assembled": 1.0,
    "burn_in": 1.5,
    "burn_in_failed": 0.4,
    "rework": 0.6,
    "burn_in_passed": 1.0,
    "packed": 1.5,
    "in_transit": 4.0,
    "delivered": 1.0,
    "commissioning": 2.0,
    "validating": 1.0,
    "in_service": 66.5,
    "decommissioning": 1.5,
    "decommissioned": 2.0,
    "retired": 8.0,
    "on_hold": 2.0,
}
# The state a held module was quarantined from.
HOLD_FROM: dict[str, float] = {"in_service": 60, "assembled": 15, "burn_in_passed": 10, "delivered": 10, "packed": 5}
FACTORY_MIX = {"CZPAR1": 35.0, "TWKHH1": 35.0, "MXMTY1": 18.0, "USHOU1": 12.0}
SPEC_MIX = {"GB200-NVL72-40": 33.0, "L4-EDGE-20": 30.0, "HGX-H200-40": 23.0, "GB200-NVL72-20": 14.0}
SITE_STATES = ("packed", "in_transit", "delivered", "commissioning", "validating", "in_service")
LATE_STATES = (*SITE_STATES, "decommissioning", "decommissioned", "retired")
REDEPLOYED = 0.10  # share of modules past packing that serve a second site
BURN_IN_FAILS = 0.07  # first burn-ins that fail; a retest fails at a fifth of that
SERVICE_HOLDS = 0.05  # modules quarantined once while in service, then released
# A real module installs 150-250 parts, each an event; the fixture installs this many per BOM line (spread
# over the line's positions) so that a module has about 100 events, as the scale target asks.
PARTS_PER_LINE = 2
# How long a module has been in its final state, at most (days), when the fleet is generated.
DWELL_DAYS = {"retired": 400.0, "decommissioned": 60.0, "planned": 20.0, "in_service": 5.0}
FAIL_REASONS = (
    "GPU 3 uncorrectable ECC errors (Xid 48) during DCGM level 3",
    "GPU 7 fell off the bus (Xid 79) under stress load",
    "GPU 12 temperature 93 °C above the 87 °C limit",
    "NVLink CRC errors on GPU 5 above threshold",
    "GPU 1 row remapping failure (Xid 64)",
    "PCIe link of GPU 9 trained at x8, expected x16",
)
HOLD_REASONS = (
    "Quarantine pending inspection",
    "Coolant leak alarm on CDU 1; isolating",
    "Customer security review of firmware versions",
    "Suspected seal tampering reported by the site",
)
DECOMMISSION_REASONS = ("Customer contract ended; capacity moves to a new site", "Site power upgrade; module moves")
RETIRE_REASONS = ("End of life: GPUs out of vendor support", "Uneconomic to refurbish after coolant damage")
CARRIERS = {"road": ("DB Schenker", "Kuehne+Nagel Road"), "sea": ("Maersk", "MSC", "CMA CGM"), "air": ("Cargolux",)}


class GenerateReport(msgspec.Struct):
    modules: int
    events: int
    seconds: float
    workers: int
    summary_seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# --- the catalogue: what the fixtures and the database give every history ---------------------------


@dataclass(frozen=True)
class FactoryInfo:
    id: int
    code: str
    unlocode: str
    assembly: tuple[str, ...]
    burn_in: tuple[str, ...]
    inspection: tuple[str, ...]


@dataclass(frozen=True)
class SiteInfo:
    id: int
    code: str
    unlocode: str
    airport: str
    security_level: str
    slots: int


@dataclass(frozen=True)
class BomLine:
    kind: str
    quantity: int
    manufacturer: str
    part_numbers: tuple[str, ...]


@dataclass(frozen=True)
class SpecInfo:
    id: int
    code: str
    gpu_count: int
    battery: bool
    bom: tuple[BomLine, ...]


@dataclass(frozen=True)
class Checklist:
    id: str
    version: str
    witness: bool
    items: tuple[tuple[str, str, Any], ...]  # (item id, kind, a typical answer)


@dataclass(frozen=True)
class Catalog:
    factories: dict[str, FactoryInfo]
    sites: tuple[SiteInfo, ...]
    specs: dict[str, SpecInfo]
    transitions: dict[str, tuple[str, str]]  # name -> (to state, acting user/role)
    hold_state: str
    commissioning: dict[str, tuple[Checklist, ...]]  # security level -> delivery, installation, functional
    decommissioning: Checklist
    suite: tuple[str, str, tuple[str, ...]]  # id, version, step ids


def _answer(kind: str, item: Any) -> Any:
    """A typical, valid answer of an item (see app.commissioning.checklists.check_answer)."""
    low = item.min if item.min is not None else 1.0
    high = item.max if item.max is not None else low + 10.0
    if kind == "yes_no":
        return True if item.ok is None else item.ok
    if kind == "number":
        return round((low + high) / 2, 1)
    if kind == "measurement":
        return {"value": round((low + high) / 2, 2), "instrument": "FLK-1587-44120931"}
    if kind == "choice":
        return item.choices[0]
    if kind == "photo":
        return hashlib.sha256(item.id.encode()).hexdigest()
    if kind == "signature":
        return "Erik Engineer"
    return f"{item.id.upper()[:12]}-REF"


def _checklist(template: Any, level: str) -> Checklist:
    items = tuple(
        (item.id, item.kind, _answer(item.kind, item))
        for section in template.sections
        for item in section.items
        if item.show_if is None and (not item.security_levels or level in item.security_levels)
    )
    return Checklist(template.id, template.version, template.signoff.witness, items)


def build_catalog(factories: Sequence[Any], sites: Sequence[Any], specs: Sequence[Any], fleet: Any) -> Catalog:
    """The catalogue from database rows (ids) and the fixtures (stations, BOMs)."""
    from app.commissioning.checklists import load_templates, required_templates
    from app.commissioning.validation import load_suites
    from app.core.definitions import ANY_STATE, load_lifecycle
    from app.demo import PREFERRED_ACTOR

    lifecycle = load_lifecycle()
    stations = {f.code: f.stations for f in fleet.factories}

    def of_kind(code: str, kind: str) -> tuple[str, ...]:
        return tuple(s.code for s in stations.get(code, ()) if s.kind == kind) or (code,)

    factory_info = {
        f.code: FactoryInfo(
            f.id,
            f.code,
            f.unlocode,
            of_kind(f.code, "assembly"),
            of_kind(f.code, "burn_in"),
            of_kind(f.code, "inspection"),
        )
        for f in factories
    }
    site_info = tuple(
        SiteInfo(s.id, s.code, s.unlocode, s.airport, s.security_level, s.module_slots)
        for s in sorted(sites, key=lambda s: s.code)
    )
    spec_info = {
        s.code: SpecInfo(
            s.id,
            s.code,
            s.gpu_count,
            s.battery_wh > 0,
            tuple(BomLine(b["kind"], b["quantity"], b["manufacturer"], tuple(b["part_numbers"])) for b in s.bom),
        )
        for s in specs
    }
    transitions = {
        t.name: (t.to, next((r for r in PREFERRED_ACTOR if r in t.roles), t.roles[0])) for t in lifecycle.transitions
    }
    hold_state = next(t.to for t in lifecycle.transitions if ANY_STATE in t.from_)
    templates = load_templates()
    levels = sorted({s.security_level for s in site_info})
    commissioning = {
        level: tuple(_checklist(t, level) for t in required_templates(templates, level)) for level in levels
    }
    decommissioning = _checklist(required_templates(templates, "commercial", ("decommissioning",))[0], "commercial")
    suite = next(iter(sorted(load_suites().values(), key=lambda s: s.id)))
    return Catalog(
        factory_info,
        site_info,
        spec_info,
        transitions,
        hold_state,
        commissioning,
        decommissioning,
        (suite.id, suite.version, tuple(step.id for step in suite.steps)),
    )


# --- one module's history -----------------------------------------------------------------------------


@dataclass
class Plan:
    index: int  # the module's position in this run
    spec: SpecInfo
    factory: FactoryInfo
    sites: list[SiteInfo]  # one per deployment
    target: str  # the state it ends in (for a held module, the state it was held from)
    held: bool
    fails: int  # burn-ins that fail before one passes


class Story:
    """The events of one module, oldest first, as (type, actor, role, at µs, place, payload)."""

    def __init__(self, plan: Plan, catalog: Catalog, rng: random.Random, serial: str, number: int) -> None:
        self.plan = plan
        self.catalog = catalog
        self.rng = rng
        self.serial = serial  # scans name the module; its year is fixed once the dates are known
        self.number = number  # the serial's running number: run numbers and references derive from it
        self.events: list[list[Any]] = []
        self.t = 0  # microseconds from the start of the history; shifted to real time at the end
        self.state = "planned"  # the lifecycle's initial state, as module.registered says
        self.chapter = 1
        self.site: SiteInfo | None = None
        self.hold_return: str | None = None
        self.hold_reason = ""
        self.transition_at: list[int] = []  # the index of every lifecycle event
        # events written in the same transaction as the transition after them / before them: a cut keeps
        # them with it
        self.before: set[int] = set()
        self.after: set[int] = set()
        self.runs = 0
        self.stamps: list[tuple[int, str]] = []  # (event index, payload key) of times written in payloads

    def stamp(self, key: str, ahead_us: int = 0) -> int:
        """A time in the next event's payload: history time now, turned into ISO text once the history is
        placed in real time (module_history)."""
        self.stamps.append((len(self.events), key))
        return self.t + ahead_us

    # time

    def wait(self, hours: float, spread: float = 0.35) -> None:
        """Let about `hours` pass (log-normal spread), at least a second: `at` strictly increases."""
        self.t += int(hours * HOUR_US * self.rng.lognormvariate(0.0, spread)) + 1_000_000 + self.rng.randrange(999_999)

    # writing events

    def add(
        self, type_: str, actor: str, place: str, payload: dict[str, Any], *, before: bool = False, after: bool = False
    ) -> None:
        if before:
            self.before.add(len(self.events))
        if after:
            self.after.add(len(self.events))
        if self.events and self.t <= self.events[-1][3]:  # written in the same transaction: milliseconds later
            self.t = self.events[-1][3] + 1000 + self.rng.randrange(40_000)
        self.events.append([type_, actor, actor, self.t, place, payload])

    def here(self) -> str:
        return self.site.code if self.site is not None else self.plan.factory.code

    def transition(self, name: str, place: str = "", **extra: Any) -> Iterator[str]:
        to, actor = self.catalog.transitions[name]
        payload: dict[str, Any] = {"transition": name, "from": self.state, "to": to, **extra}
        if name == "hold":
            payload["hold"] = True
            self.hold_return, self.hold_reason = self.state, str(extra.get("reason", ""))
        elif name == "release":
            payload["to"] = to = self.hold_return or self.state
            payload["release"] = True
            self.hold_return, self.hold_reason = None, ""
        if "site" in extra:
            self.site = next(s for s in self.catalog.sites if s.code == extra["site"])
        self.transition_at.append(len(self.events))
        self.state = to
        self.add(f"lifecycle.{name}", actor, place or self.here(), payload)
        yield to

    def sha(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def run(self) -> int:
        """A run number (burn-in, checklist, validation) unique across the fleet."""
        self.runs += 1
        return self.number * 100 + self.runs

    def scan(self, station: str, site: str = "", action: str | None = None, actor: str = "floor") -> None:
        self.add(
            "scan.recorded",
            actor,
            station or site,
            {
                "identifier": f"(8004)0614141{self.serial}",
                "asset": "module",
                "serial": self.serial,
                "key_id": "K1",
                "via": "api" if station else "batch",
                "station": station or None,
                "site": site or None,
                "action": action,
                "scanned_at": self.stamp("scanned_at"),
                "received_at": self.stamp("received_at"),
            },
            before=action is not None,
        )


def _part_serial(number: int, kind: str, manufacturer: str, position: int, generation: int = 0) -> str:
    """app.demo's part serials, keyed by the module's number (its serial's year is known only at the end)."""
    from app.demo import part_serial

    return part_serial(f"#{number}/{generation}", kind, manufacturer, position)


def _walk(s: Story) -> Iterator[str]:
    """The whole life the plan allows; the driver cuts it where the module is now."""
    p, rng, f = s.plan, s.rng, s.plan.factory
    s.add("module.registered", "planner", f.code, {"spec": p.spec.code, "factory": f.code, "state": "planned"})
    s.wait(24 * rng.uniform(2, 20), 0.1)
    station = rng.choice(f.assembly)
    s.scan(station, action="start_assembly")
    yield from s.transition("start_assembly", station)
    parts = [
        (line, round(i * line.quantity / min(line.quantity, PARTS_PER_LINE)) + 1)
        for line in p.spec.bom
        for i in range(min(line.quantity, PARTS_PER_LINE))
    ]
    installed: dict[str, str] = {}  # GPU position -> part serial, for rework
    for line, position in parts:
        s.wait(12 * 24 / len(parts))
        if line.kind == "gpu":
            installed[f"gpu-{position:03d}"] = _part_serial(s.number, line.kind, line.manufacturer, position - 1)
        s.add(
            "factory.part_installed",
            "floor",
            station,
            {
                "part": _part_serial(s.number, line.kind, line.manufacturer, position - 1),
                "kind": line.kind,
                "part_number": line.part_numbers[(position - 1) % len(line.part_numbers)],
                "position": f"{line.kind}-{position:03d}",
            },
        )
    s.wait(4)
    yield from s.transition("complete_assembly")
    for attempt in range(p.fails + 1):
        s.wait(20)
        burn = rng.choice(f.burn_in)
        s.scan(burn)
        s.wait(1)
        yield from s.transition("start_burn_in")
        run = s.run()
        s.add("burnin.run_started", "floor", burn, {"run": run, "station": burn}, after=True)
        gpus = list(range(p.spec.gpu_count))
        for _ in range(2):
            s.wait(20)
            rows = 3600 * 4 * p.spec.gpu_count
            payload = {"run": run, "sha256": s.sha(), "bytes": rows * 96, "rows": rows, "gpus": gpus}
            s.add("burnin.telemetry_recorded", "floor", burn, payload)
        failing = attempt < p.fails
        s.wait(24)
        failed = ["memory", "pcie"][: rng.randint(1, 2)] if failing else []
        s.add(
            "burnin.dcgm_recorded",
            "floor",
            burn,
            {"run": run, "sha256": s.sha(), "bytes": 48_000, "level": 3, "failed": failed},
        )
        if failing:
            s.add("burnin.xid_recorded", "floor", burn, {"run": run, "sha256": s.sha(), "bytes": 900, "xids": [48, 79]})
            s.wait(6)
            yield from s.transition("fail_burn_in", reason=rng.choice(FAIL_REASONS))
            s.wait(24)
            yield from s.transition("start_rework")
            gpu = next(line for line in p.spec.bom if line.kind == "gpu")
            position = rng.choice(sorted(installed))  # the failing GPU is swapped for a new one
            old = installed[position]
            new = installed[position] = _part_serial(s.number, "gpu", gpu.manufacturer, int(position[4:]), attempt + 1)
            s.wait(8)
            reason = "failed burn-in"
            payload = {"part": old, "kind": "gpu", "position": position, "reason": reason}
            s.add("factory.part_removed", "floor", f.assembly[0], payload)
            s.wait(1)
            payload = {"part": new, "kind": "gpu", "part_number": gpu.part_numbers[0], "position": position}
            s.add("factory.part_installed", "floor", f.assembly[0], {**payload, "replaces": old})
            s.wait(4 * 24)
            yield from s.transition("finish_rework")
            s.wait(12)
            yield from s.transition("complete_assembly")
            continue
        s.wait(6)
        yield from s.transition("pass_burn_in")
    s.wait(20)
    s.scan(rng.choice(f.inspection))
    s.wait(24)
    yield from s.transition("pack", site=p.sites[0].code)
    origin = f"factory:{f.code}"
    origin_port = f.unlocode
    while True:
        site = p.sites[s.chapter - 1]
        yield from _ship(s, origin, origin_port, site)
        yield from _commission(s, site)
        yield from _serve(s, site)
        yield from _decommission(s, site)
        s.wait(24 * rng.uniform(6, 30), 0.1)
        if s.chapter < len(p.sites):
            s.chapter += 1
            origin, origin_port = f"site:{site.code}", site.unlocode
            yield from s.transition("redeploy", site=p.sites[s.chapter - 1].code)
            continue
        yield from s.transition("retire", reason=rng.choice(RETIRE_REASONS))
        return


def _ship(s: Story, origin: str, origin_port: str, site: SiteInfo) -> Iterator[str]:
    rng = s.rng
    ref = f"SHP-{s.number:06d}-{s.chapter}"  # apart from the service's SHP-YYYY-NNNNNN
    air = rng.random() < 0.25
    main = "air" if air else "sea"
    legs = [
        ("road", origin, origin_port),
        (main, origin_port, site.unlocode),
        ("road", site.unlocode, f"site:{site.code}"),
    ]
    s.wait(2)
    arrival = s.stamp("planned_arrival", (6 if air else 30) * DAY_US)
    payload = {"shipment": ref, "destination": f"site:{site.code}", "legs": 3, "planned_arrival": arrival}
    s.add("shipment.planned", "planner", origin, {**payload, "container": ""})
    kinds = ["manifest", "packing-list", "commercial-invoice"] + (["dg-note"] if s.plan.spec.battery else [])
    codes = {"manifest": "MAN", "packing-list": "PKL", "commercial-invoice": "INV", "dg-note": "DGN"}
    for kind in kinds:
        s.wait(0.5)
        payload = {"shipment": ref, "kind": kind, "number": f"{ref}-{codes[kind]}", "version": 1, "sha256": s.sha()}
        s.add("document.issued", "planner", origin, payload)
    seal = f"SL{rng.randrange(10**8):08d}"
    for handoff, (mode, start, end) in enumerate(legs, start=1):
        s.wait(48 if handoff == 1 else 24)
        kind = "pickup" if handoff == 1 else "handover"
        party = {"party": "Driver", "organisation": rng.choice(CARRIERS[mode]), "seals": [seal], "seal_ok": True}
        payload = {"shipment": ref, "handoff": handoff, "kind": kind, **party, "flags": []}
        s.add("custody.handoff", "planner", start, payload, before=handoff == 1)  # a pickup departs the shipment
        if handoff == 1:
            s.t += 1_000_000
            yield from s.transition("depart", start)
        s.t += 1_000_000
        leg = {"shipment": ref, "leg": handoff, "mode": mode, "carrier": party["organisation"]}
        s.add("shipment.leg_departed", "planner", start, leg, after=handoff == 1)
        s.wait({"road": 30, "sea": 24 * 24, "air": 30}[mode])
        s.add("shipment.leg_arrived", "planner", end, leg)
    s.wait(3)
    payload = {"shipment": ref, "handoff": 4, "kind": "delivery", "party": "Site receiving", "organisation": site.code}
    s.add(
        "custody.handoff", "engineer", f"site:{site.code}", {**payload, "seals": [seal], "seal_ok": True, "flags": []}
    )
    s.before.add(len(s.events) - 1)  # the delivery hand-off delivers the module
    s.t += 1_000_000
    yield from s.transition("deliver", f"site:{site.code}")


def _checklist_run(s: Story, checklist: Checklist, site: SiteInfo) -> None:
    rng = s.rng
    run = s.run()
    head = {"run": run, "template": checklist.id}
    s.wait(2)
    s.add("checklist.started", "engineer", site.code, {**head, "version": checklist.version})
    for item, _kind, value in checklist.items:
        s.wait(0.1, 0.8)
        answered = s.stamp("answered_at")
        payload = {**head, "template_version": checklist.version, "item": item, "value": value, "comment": ""}
        payload.update(flagged=False, reason="", version=1, edit=f"{rng.getrandbits(128):032x}", answered_at=answered)
        s.add("checklist.answered", "engineer", site.code, payload)
    sign = {**head, "version": checklist.version}
    if checklist.witness:
        s.wait(0.5)
        s.add("checklist.signature", "engineer", site.code, {**sign, "kind": "engineer", "name": "Erik Engineer"})
        s.wait(0.5)
        s.add("checklist.signed", "auditor", site.code, {**sign, "kind": "witness", "name": "Aiko Auditor"})
    else:
        s.wait(0.5)
        s.add("checklist.signed", "engineer", site.code, {**sign, "kind": "engineer", "name": "Erik Engineer"})


def _commission(s: Story, site: SiteInfo) -> Iterator[str]:
    delivery, installation, functional = s.catalog.commissioning[site.security_level]
    s.wait(4)
    s.scan("", site=site.code, actor="engineer")
    _checklist_run(s, delivery, site)
    s.wait(24 * 2)
    yield from s.transition("start_commissioning")
    _checklist_run(s, installation, site)
    s.wait(24 * 2)
    _checklist_run(s, functional, site)
    s.wait(24)
    yield from s.transition("start_validation")
    suite, version, steps = s.catalog.suite
    run = s.run()
    s.wait(2)
    s.add("validation.started", "engineer", site.code, {"run": run, "suite": suite, "version": version})
    for i, step in enumerate(steps, start=1):
        s.wait(24 * 5 / len(steps))
        verdict = "pass" if i == len(steps) else "pending"
        payload = {"run": run, "step": step, "verdict": "pass", "reasons": [], "sha256": s.sha()}
        s.add("validation.result", "engineer", site.code, {**payload, "suite_verdict": verdict})
    s.wait(24 * 3)
    yield from s.transition("enter_service")
    number = f"CC-{s.number:06d}-{s.chapter}"
    payload = {"number": number, "sha256": s.sha(), "checklists": [delivery.id, installation.id, functional.id]}
    s.add("certificate.issued", "engineer", site.code, {**payload, "suite": suite}, after=True)


def _serve(s: Story, site: SiteInfo) -> Iterator[str]:
    rng = s.rng
    last = s.chapter == len(s.plan.sites)
    days = rng.uniform(200, 1400) if last else rng.uniform(150, 700)
    hold_at = rng.uniform(0, days) if rng.random() < SERVICE_HOLDS else -1.0
    served = 0.0
    while served < days:
        step = rng.uniform(60, 120)
        if served < hold_at <= served + step:
            s.wait(24 * (hold_at - served), 0.05)
            yield from s.transition("hold", reason=rng.choice(HOLD_REASONS))
            s.wait(24 * rng.uniform(1, 5), 0.1)
            yield from s.transition("release")
            served = hold_at
            continue
        s.wait(24 * step, 0.02)
        served += step
        s.scan("", site=site.code, actor="engineer")


def _decommission(s: Story, site: SiteInfo) -> Iterator[str]:
    rng = s.rng
    s.wait(24)
    yield from s.transition("start_decommissioning", reason=rng.choice(DECOMMISSION_REASONS))
    _checklist_run(s, s.catalog.decommissioning, site)
    for drive in range(2):
        s.wait(2)
        payload = {
            "drive": f"NVME{s.number:06d}{drive}",
            "part_number": "MZQL21T9HCJR",
            "standard": "NIST SP 800-88 Rev. 1",
        }
        payload.update(method="purge", technique="cryptographic erase", tool="nvme-cli 2.8", verified=True)
        s.add(
            "sanitisation.recorded",
            "engineer",
            site.code,
            {**payload, "certificate": f"SAN-{s.number:06d}-{s.chapter}"},
        )
    s.wait(24 * 10)
    yield from s.transition("complete_decommissioning")


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def plan_module(index: int, catalog: Catalog, rng: random.Random) -> Plan:
    target = _weighted(rng, STATE_MIX)
    held = target == catalog.hold_state
    if held:
        target = _weighted(rng, HOLD_FROM)
    spec = catalog.specs.get(_weighted(rng, SPEC_MIX)) or next(iter(catalog.specs.values()))
    factory = catalog.factories.get(_weighted(rng, FACTORY_MIX)) or next(iter(catalog.factories.values()))
    weights = [s.slots for s in catalog.sites]
    sites = [rng.choices(catalog.sites, weights=weights)[0]]
    if target in LATE_STATES and rng.random() < REDEPLOYED:
        sites.append(rng.choice([s for s in catalog.sites if s.code != sites[0].code] or sites))
    if target in ("burn_in_failed", "rework"):
        fails = 1
    else:
        fails = 1 if rng.random() < BURN_IN_FAILS else 0
        fails += 1 if fails and rng.random() < BURN_IN_FAILS / 5 else 0
    return Plan(index, spec, factory, sites, target, held, fails)


@dataclass
class ModuleHistory:
    serial: str
    number: int
    plan: Plan
    state: str
    site: SiteInfo | None
    hold_return: str | None
    hold_reason: str
    events: list[list[Any]]  # (type, actor, role, at µs since the epoch, place, payload)


def _cut(story: Story, walk: Iterator[str], target: str, chapter: int) -> int:
    """How many events of the walk to keep: the module entered `target` (in its last chapter) and did some
    of what happens in that state, but not the next transition, nor what is written with it."""
    if target == "planned":  # the initial state: no transition enters it
        entered = 0
        end = story.transition_at[0] if next(walk, None) is not None else len(story.events)
    else:
        for state in walk:
            if state == target and story.chapter == chapter:
                break
        else:
            raise AssertionError(f"the history never reached {target}")
        entered = story.transition_at[-1]
        end = story.transition_at[-1] if next(walk, None) is not None else len(story.events)
    low = entered + 1
    while low < end and low in story.after:
        low += 1
    cut = story.rng.randint(low, end)
    while cut > low and (cut - 1) in story.before:
        cut -= 1
    return cut


def module_history(index: int, number: int, catalog: Catalog, rng: random.Random, now_us: int) -> ModuleHistory:
    """One module's plan and history, cut where the module is now, in real time ending before `now`."""
    plan = plan_module(index, catalog, rng)
    story = Story(plan, catalog, rng, f"AFM-00-{number:06d}", number)
    walk = _walk(story)
    chapter = len(plan.sites) if plan.target in LATE_STATES else 1
    cut = _cut(story, walk, plan.target, chapter)
    walk.close()
    story.events = story.events[:cut]
    story.stamps = [(index, key) for index, key in story.stamps if index < cut]
    state, site, hold_return, hold_reason = _project(story.events, catalog)
    if plan.held:
        story.state, story.site, story.t = state, site, story.events[-1][3]
        story.wait(24 * rng.uniform(0.5, 10))
        list(story.transition("hold", reason=rng.choice(HOLD_REASONS)))
        state, hold_return, hold_reason = story.state, story.hold_return, story.hold_reason
    events = story.events
    dwell = int(rng.uniform(0, DWELL_DAYS.get(state, 3.0)) * DAY_US)
    shift = now_us - dwell - events[-1][3] - rng.randrange(HOUR_US)
    for event in events:
        event[3] += shift
    for index, key in story.stamps:
        payload = events[index][5]
        payload[key] = (EPOCH + dt.timedelta(microseconds=payload[key] + shift)).isoformat()
    year = (EPOCH + dt.timedelta(microseconds=events[0][3])).year % 100
    serial = f"AFM-{year:02d}-{number:06d}"
    for event in events:
        if event[0] == "scan.recorded":
            event[5]["serial"] = serial
            event[5]["identifier"] = f"(8004)0614141{serial}"
    return ModuleHistory(serial, number, plan, state, site, hold_return, hold_reason, events)


def _project(events: Sequence[Sequence[Any]], catalog: Catalog) -> tuple[str, SiteInfo | None, str | None, str]:
    """State, site and hold of a history, as app.core.lifecycle.domain.replay gives them."""
    from app.core.lifecycle.domain import replay

    projection = replay((e[0], e[5]) for e in events)
    assert projection is not None
    site = next((s for s in catalog.sites if s.code == projection.site), None)
    return projection.state, site, projection.hold_return_state, projection.hold_reason


# --- chaining and rows ---------------------------------------------------------------------------------


def chain_rows(module_id: int, history: ModuleHistory, *, sqlite: bool) -> tuple[list[Row], Row]:
    """The module's event rows (EVENT_COLUMNS) with their hash chain, and its modules row (MODULE_COLUMNS).

    Hashes as app.core.ledger.domain.chain_hash does, from the canonical parts directly: the payload is
    encoded once, and its canonical bytes are what the row stores."""
    from app.core.ledger.domain import GENESIS, canonical_parts, canonical_payload

    rows: list[Row] = []
    prev = GENESIS
    serial = history.serial
    sha256 = hashlib.sha256
    for seq, (type_, actor, role, at_us, place, payload) in enumerate(history.events, start=1):
        at = EPOCH + dt.timedelta(microseconds=at_us)
        text = at.isoformat(timespec="microseconds")  # …+00:00
        at_text = f"{text[:-6]}Z"
        body = canonical_payload(payload)
        digest = sha256(
            prev.encode("ascii") + canonical_parts(serial, seq, type_, actor, role, at_text, place, "", body)
        )
        stored = f"{text[:10]} {text[11:26]}" if sqlite else at  # SQLite keeps UTC as naive text
        head = digest.hexdigest()
        rows.append((module_id, seq, type_, actor, role, stored, place, "", body.decode(), prev, head))
        prev = head
    first, last = rows[0][5], rows[-1][5]
    plan = history.plan
    site = history.site
    sovereign = site is not None and site.security_level in ("sovereign", "defence") and history.number % 2 == 0
    module = (
        module_id,
        serial,
        plan.spec.id,
        plan.factory.id,
        site.id if site is not None else None,
        history.state,
        history.hold_return,
        history.hold_reason,
        sovereign,
        len(rows),
        prev,
        first,
        last,
    )
    return rows, module


@dataclass(frozen=True)
class Job:
    """One batch: module numbers [start, start + count) of this run, their ids and serial numbers."""

    seed: int
    batch: int
    start: int
    ids: tuple[int, ...]
    first_number: int
    now_us: int


def job_rows(job: Job, catalog: Catalog, *, sqlite: bool) -> tuple[list[Row], list[Row]]:
    rng = random.Random(f"afm-fleet/{job.seed}/{job.batch}")  # one stream per batch: same fleet however split
    modules: list[Row] = []
    events: list[Row] = []
    for offset, module_id in enumerate(job.ids):
        index = job.start + offset
        history = module_history(index, job.first_number + index, catalog, rng, job.now_us)
        rows, module = chain_rows(module_id, history, sqlite=sqlite)
        modules.append(module)
        events += rows
    return modules, events


async def _copy_job(conn: Any, job: Job, catalog: Catalog) -> int:
    """Write one batch through COPY in its own transaction (conn: a SQLAlchemy AsyncConnection on asyncpg)."""
    modules, events = job_rows(job, catalog, sqlite=False)
    raw = (await conn.get_raw_connection()).driver_connection
    await raw.copy_records_to_table("modules", records=modules, columns=MODULE_COLUMNS)
    await raw.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
    await conn.commit()
    return len(events)


async def _insert_job(conn: Any, job: Job, catalog: Catalog) -> int:
    """Write one batch with executemany in one transaction (SQLite)."""
    modules, events = job_rows(job, catalog, sqlite=True)
    marks = ", ".join("?" for _ in MODULE_COLUMNS)
    await conn.exec_driver_sql(f"INSERT INTO modules ({', '.join(MODULE_COLUMNS)}) VALUES ({marks})", modules)
    marks = ", ".join("?" for _ in EVENT_COLUMNS)
    await conn.exec_driver_sql(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})", events)
    await conn.commit()
    return len(events)


def _worker(url: str, catalog: Catalog, job: Job) -> tuple[int, int]:
    """A worker process's batch: its own engine and connection (nothing crosses the process boundary
    but the job and two counts)."""
    from app.core.db import make_engine

    async def run() -> int:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await _copy_job(conn, job, catalog)
        finally:
            await engine.dispose()

    return len(job.ids), asyncio.run(run())


# --- the whole run -------------------------------------------------------------------------------------


async def _prepare(db: Any, modules: int, append: bool) -> tuple[Catalog, list[int], int]:
    """Refuse a database with modules (unless appending), load the catalogue, reserve ids and numbers."""
    from sqlalchemy import func, select, text

    from app import demo
    from app.core.errors import Conflict
    from app.factory.models import Factory, Module, Spec
    from app.sites.models import Site

    async with db.read() as uow:
        existing = await uow.session.scalar(select(func.count(Module.id)))
    if existing and not append:
        raise Conflict(f"the database holds {existing} modules already; generate into an empty one, or pass --append")
    fleet = demo.read_fleet()
    catalogue_only = demo.DemoFleet(factories=fleet.factories, sites=fleet.sites, specs=fleet.specs, modules=[])
    await demo.load(db, catalogue_only)  # users, factories, stations, sites, specs: what is missing
    async with db.write() as uow:
        session = uow.session
        catalog = build_catalog(
            list(await session.scalars(select(Factory))),
            list(await session.scalars(select(Site))),
            list(await session.scalars(select(Spec))),
            fleet,
        )
        # Serial numbers continue after the highest one taken (AFM-YY-NNNNNN), whatever its year.
        serials = select(func.max(func.substr(Module.serial, 8))).where(Module.serial.like("AFM-__-______"))
        highest = await session.scalar(serials)
        first_number = int(highest) + 1 if highest and highest.isdigit() else 1
        if first_number + modules > 1_000_000:
            raise Conflict(f"serial numbers run out: {first_number - 1} taken, {modules} more asked for")
        if db.dialect == "postgresql":  # ids from the sequence itself: safe beside other writers
            reserve = text("SELECT nextval(pg_get_serial_sequence('modules', 'id')) FROM generate_series(1, :n)")
            ids = [int(i) for i in await session.scalars(reserve, {"n": modules})]
        else:  # SQLite has one writer at a time; ids above the highest are free
            top = await session.scalar(select(func.max(Module.id))) or 0
            ids = list(range(top + 1, top + 1 + modules))
    return catalog, ids, first_number


async def generate(
    url: str,
    modules: int,
    seed: int = 1,
    progress: Progress | None = None,
    *,
    append: bool = False,
    workers: int | None = None,
    now: dt.datetime | None = None,
    batch: int = BATCH,
    summarise: bool = True,
) -> GenerateReport:
    """Generate `modules` modules with their histories into the database at `url` (migrated), then
    rebuild the fleet summaries. Refuses a database that has modules unless `append`."""
    from app.core.db import Database, import_all_models, utcnow

    import_all_models()
    db = Database(url, pool_size=2)
    try:
        catalog, ids, first_number = await _prepare(db, modules, append)
        now_us = ((now or utcnow()) - EPOCH) // dt.timedelta(microseconds=1)
        jobs = [
            Job(seed, n, start, tuple(ids[start : start + batch]), first_number, now_us)
            for n, start in enumerate(range(0, modules, batch))
        ]
        postgres = db.dialect == "postgresql"
        if workers is None:
            workers = min(os.cpu_count() or 1, 8) if postgres and modules >= PARALLEL_FROM else 1
        workers = workers if postgres else 1  # SQLite: one writer
        started = time.perf_counter()
        events = await _write(db, url, catalog, jobs, workers, progress, modules)
        seconds = time.perf_counter() - started
        report = GenerateReport(modules=modules, events=events, seconds=seconds, workers=workers)
        if postgres:
            await _analyze(db)
        if summarise:
            from app.fleet import summary

            started = time.perf_counter()
            async with db.write() as uow:
                await summary.rebuild(uow)
            report.summary_seconds = time.perf_counter() - started
        return report
    finally:
        await db.dispose()


async def _write(
    db: Any, url: str, catalog: Catalog, jobs: list[Job], workers: int, progress: Progress | None, total: int
) -> int:
    done = events = 0
    if workers <= 1:
        for job in jobs:
            async with db.engine.connect() as conn:
                written = await (_copy_job if db.dialect == "postgresql" else _insert_job)(conn, job, catalog)
            done, events = done + len(job.ids), events + written
            if progress:
                progress(done, total)
        return events
    import concurrent.futures
    import multiprocessing

    # spawn, not fork: the parent holds an event loop and pooled connections a fork must not share
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = [asyncio.wrap_future(pool.submit(_worker, url, catalog, job), loop=loop) for job in jobs]
        for next_done in asyncio.as_completed(pending):
            count, written = await next_done
            done, events = done + count, events + written
            if progress:
                progress(done, total)
    return events


async def _analyze(db: Any) -> None:
    """Fresh statistics for the planner after a bulk load, and the modules' visibility map set, so that
    the dashboard's counts are index-only scans (VACUUM runs outside a transaction)."""
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM (ANALYZE) modules")
        await autocommit.exec_driver_sql("ANALYZE events")


# --- the command ---------------------------------------------------------------------------------------


@click.command("generate")
@click.option("--modules", type=click.IntRange(min=1), default=100_000, show_default=True, help="Modules to add.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same fleet.")
@click.option("--append", is_flag=True, help="Add to a database that has modules already.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Writer processes (PostgreSQL).")
def generate_command(modules: int, seed: int, append: bool, workers: int | None) -> None:
    """Generate a large, realistic fleet with full histories into AFM_DATABASE_URL (for scale tests)."""
    from app.core.config import ConfigError, load_settings
    from app.core.errors import DomainError

    try:
        url = load_settings().database_url
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
    with click.progressbar(length=modules, label="modules", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        try:
            report = asyncio.run(generate(url, modules, seed, progress, append=append, workers=workers))
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
    click.echo(
        f"generated {report.modules:,} modules, {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_s:,.0f} events/s, {report.workers} writer(s)); "
        f"summaries rebuilt in {report.summary_seconds:.1f} s"
    )
